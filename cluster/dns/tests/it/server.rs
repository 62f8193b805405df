//! The DNS server on loopback sockets against the embedded API server, queried by hickory's
//! client and by the real `dig` and `nslookup` (bind9-dnsutils).

use std::net::SocketAddr;
use std::str::FromStr;

use hickory_server::net::client::{Client, ClientHandle};
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::net::tcp::TcpClientStream;
use hickory_server::net::udp::UdpClientStream;
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{DNSClass, Name, RData, RecordType};
use k8s_labs_apiserver::testing::TestApiServer;
use k8s_labs_dns::{DnsConfig, DnsServer};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

/// Binds UDP and TCP on the same free loopback port, as the cluster binds port 53.
fn loopback_sockets() -> (std::net::UdpSocket, std::net::TcpListener, SocketAddr) {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = tcp.local_addr().unwrap();
        if let Ok(udp) = std::net::UdpSocket::bind(address) {
            return (udp, tcp, address);
        }
    }
}

fn slice(endpoints: serde_json::Value) -> serde_json::Value {
    json!({
        "metadata": {"name": "nginx-abcde", "labels": {"kubernetes.io/service-name": "nginx"}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "web", "port": 80, "protocol": "TCP"}],
    })
}

fn endpoint(ip: &str, hostname: &str, ready: bool) -> serde_json::Value {
    json!({"addresses": [ip], "hostname": hostname, "conditions": {"ready": ready}})
}

struct Answer {
    code: ResponseCode,
    authoritative: bool,
    answers: Vec<RData>,
    authority_types: Vec<RecordType>,
}

async fn ask(
    client: &mut Client<TokioRuntimeProvider>,
    name: &str,
    record_type: RecordType,
) -> Answer {
    let response = client
        .query(Name::from_str(name).unwrap(), DNSClass::IN, record_type)
        .await
        .unwrap_or_else(|error| panic!("query {name} {record_type}: {error}"));
    Answer {
        code: response.metadata.response_code,
        authoritative: response.metadata.authoritative,
        answers: response.answers.iter().map(|r| r.data.clone()).collect(),
        authority_types: response
            .authorities
            .iter()
            .map(|r| r.record_type())
            .collect(),
    }
}

fn a(ip: &str) -> RData {
    RData::A(hickory_server::proto::rr::rdata::A(ip.parse().unwrap()))
}

/// Runs the real `dig` (asynchronously: the server answers on this test's runtime).
async fn dig(address: SocketAddr, args: &[&str]) -> String {
    let output = tokio::process::Command::new("dig")
        .arg(format!("@{}", address.ip()))
        .arg("-p")
        .arg(address.port().to_string())
        .args(["+time=5", "+tries=1"])
        .args(args)
        .output()
        .await
        .expect("dig (bind9-dnsutils) must be installed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn answers_like_coredns_and_follows_changes() {
    let TestApiServer {
        server: api_server,
        client: kube,
        ..
    } = TestApiServer::start().await.unwrap();
    let services = Api::<Service>::namespaced(kube.clone(), "default");
    let slices = Api::<EndpointSlice>::namespaced(kube.clone(), "default");
    let headless: Service = serde_json::from_value(json!({
        "metadata": {"name": "nginx"},
        "spec": {"clusterIP": "None", "selector": {"app": "nginx"}, "ports": [{"name": "web", "port": 80}]},
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &headless)
        .await
        .unwrap();
    let initial: EndpointSlice = serde_json::from_value(slice(json!([
        endpoint("10.244.0.2", "web-0", true),
        endpoint("10.244.0.3", "web-1", true),
        endpoint("10.244.0.4", "web-2", false),
    ])))
    .unwrap();
    slices
        .create(&PostParams::default(), &initial)
        .await
        .unwrap();

    let (udp, tcp, address) = loopback_sockets();
    let dns = DnsServer::start(kube.clone(), udp, tcp, DnsConfig::default())
        .await
        .unwrap();

    let udp_stream = UdpClientStream::builder(address, TokioRuntimeProvider::default()).build();
    let (mut udp_client, background) = Client::<TokioRuntimeProvider>::from_sender(udp_stream);
    tokio::spawn(background);
    let (connect, sender) = TcpClientStream::new(address, None, None, TokioRuntimeProvider::new());
    let (mut tcp_client, background) =
        Client::<TokioRuntimeProvider>::new(connect.await.unwrap(), sender);
    tokio::spawn(background);

    // A: an endpoint by hostname, over UDP and TCP; case does not matter.
    for client in [&mut udp_client, &mut tcp_client] {
        let answer = ask(
            client,
            "web-1.nginx.default.svc.cluster.local.",
            RecordType::A,
        )
        .await;
        assert_eq!(answer.code, ResponseCode::NoError);
        assert!(answer.authoritative);
        assert_eq!(answer.answers, vec![a("10.244.0.3")]);
    }
    let answer = ask(
        &mut udp_client,
        "WEB-0.Nginx.Default.SVC.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(answer.answers, vec![a("10.244.0.2")]);

    // Headless Service: the ready endpoints only.
    let answer = ask(
        &mut udp_client,
        "nginx.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(answer.answers, vec![a("10.244.0.2"), a("10.244.0.3")]);

    // The kubernetes Service (ClusterIP) answers its cluster IP.
    let kubernetes = services.get("kubernetes").await.unwrap();
    let cluster_ip = kubernetes.spec.unwrap().cluster_ip.unwrap();
    let answer = ask(
        &mut udp_client,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(answer.answers, vec![a(&cluster_ip)]);

    // NODATA and NXDOMAIN carry the SOA; names outside the zone get a plain NXDOMAIN.
    let answer = ask(
        &mut udp_client,
        "web-1.nginx.default.svc.cluster.local.",
        RecordType::AAAA,
    )
    .await;
    assert_eq!(
        (answer.code, answer.answers.len()),
        (ResponseCode::NoError, 0)
    );
    assert_eq!(answer.authority_types, vec![RecordType::SOA]);
    let answer = ask(
        &mut udp_client,
        "web-2.nginx.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(
        answer.code,
        ResponseCode::NXDomain,
        "not-ready endpoints have no name"
    );
    assert_eq!(answer.authority_types, vec![RecordType::SOA]);
    assert!(answer.authoritative);
    let answer = ask(&mut udp_client, "web-0.nginx.", RecordType::A).await;
    assert_eq!(
        answer.code,
        ResponseCode::NXDomain,
        "bare names never resolve"
    );
    assert!(!answer.authoritative);

    // SRV and PTR.
    let answer = ask(
        &mut udp_client,
        "_web._tcp.nginx.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    let targets: Vec<String> = answer
        .answers
        .iter()
        .map(|r| match r {
            RData::SRV(srv) => format!("{} {}", srv.port, srv.target),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        targets,
        vec![
            "80 web-0.nginx.default.svc.cluster.local.",
            "80 web-1.nginx.default.svc.cluster.local."
        ]
    );
    let answer = ask(&mut udp_client, "3.0.244.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(
        answer.answers,
        vec![RData::PTR(hickory_server::proto::rr::rdata::PTR(
            Name::from_str("web-1.nginx.default.svc.cluster.local.").unwrap()
        ))]
    );

    // The real dig, over UDP and TCP.
    let short = dig(
        address,
        &["+short", "web-1.nginx.default.svc.cluster.local"],
    )
    .await;
    assert_eq!(short.trim(), "10.244.0.3");
    let short = dig(
        address,
        &["+tcp", "+short", "web-0.nginx.default.svc.cluster.local"],
    )
    .await;
    assert_eq!(short.trim(), "10.244.0.2");
    let full = dig(address, &["nope.nginx.default.svc.cluster.local"]).await;
    assert!(full.contains("status: NXDOMAIN"), "{full}");
    assert!(full.contains("flags: qr aa rd ra"), "{full}");
    assert!(
        full.contains("ns.dns.cluster.local. hostmaster.cluster.local."),
        "{full}"
    );
    let srv = dig(
        address,
        &["+short", "SRV", "_web._tcp.nginx.default.svc.cluster.local"],
    )
    .await;
    assert!(
        srv.contains("0 50 80 web-1.nginx.default.svc.cluster.local."),
        "{srv}"
    );
    let ptr = dig(address, &["+short", "-x", "10.244.0.2"]).await;
    assert_eq!(ptr.trim(), "web-0.nginx.default.svc.cluster.local.");

    // bind9's nslookup walks a search list the way pods' resolvers do: the bare name
    // fails cleanly, the search domain makes it resolve.
    let output = tokio::process::Command::new("nslookup")
        .args([
            &format!("-port={}", address.port()),
            "-domain=default.svc.cluster.local",
            "-ndots=5",
            "web-1.nginx",
            &address.ip().to_string(),
        ])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("Name:\tweb-1.nginx.default.svc.cluster.local"),
        "{text}"
    );
    assert!(text.contains("Address: 10.244.0.3"), "{text}");
    let output = tokio::process::Command::new("nslookup")
        .args([
            &format!("-port={}", address.port()),
            "web-1.nginx",
            &address.ip().to_string(),
        ])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success() && text.contains("NXDOMAIN"),
        "{text}"
    );

    // An update of the EndpointSlice is reflected: web-2 becomes ready, web-0 goes.
    slices
        .patch(
            "nginx-abcde",
            &PatchParams::default(),
            &Patch::Merge(json!({"endpoints": [
                endpoint("10.244.0.3", "web-1", true),
                endpoint("10.244.0.4", "web-2", true),
            ]})),
        )
        .await
        .unwrap();
    // The reflector applies the watch event asynchronously: ask until the answer changes
    // (bounded only as a guard against a hang; no sleeping between queries).
    let expected = vec![a("10.244.0.3"), a("10.244.0.4")];
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while ask(
            &mut udp_client,
            "nginx.default.svc.cluster.local.",
            RecordType::A,
        )
        .await
        .answers
            != expected
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the EndpointSlice update never showed up in DNS");
    let answer = ask(
        &mut udp_client,
        "web-0.nginx.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(answer.code, ResponseCode::NXDomain);
    let answer = ask(
        &mut udp_client,
        "web-2.nginx.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(answer.answers, vec![a("10.244.0.4")]);

    dns.shutdown().await;
    api_server.shutdown().await;
}
