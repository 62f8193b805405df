//! The proxy against the embedded API server and a real node network (needs root, as the
//! cluster does): curl in one pod reaches a server in another pod through a Service's cluster
//! IP, follows EndpointSlice changes, and fails at once where kube-proxy would reject.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use k8s_labs_apiserver::testing::TestApiServer;
use k8s_labs_net::{NodeNetwork, NodeNetworkConfig, PodNetwork, netns};
use k8s_labs_proxy::{RouteTable, ServiceProxy};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::watch;

fn node_network() -> Arc<NodeNetwork> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let instance = format!(
        "tp{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Arc::new(
        NodeNetwork::create(NodeNetworkConfig {
            instance,
            pod_cidr: "10.244.0.0/16".to_string(),
            local_addresses: vec![],
        })
        .unwrap(),
    )
}

/// A minimal HTTP server listening on port 8080 inside the pod's namespace, answering every
/// request with `hello from <name>`.
fn serve_http_in(pod: &PodNetwork, name: &'static str) -> tokio::task::JoinHandle<()> {
    let listener = netns::run_in(&pod.netns_path, || {
        let listener = std::net::TcpListener::bind("0.0.0.0:8080")?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    })
    .unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let body = format!("hello from {name}");
                let response = format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    })
}

struct Curl {
    exit_code: Option<i32>,
    body: String,
}

/// The real curl, run inside the client pod's namespace.
async fn curl(pod: &PodNetwork, addr: SocketAddrV4) -> Curl {
    let output = tokio::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &pod.netns_name,
            "curl",
            "-s",
            "--max-time",
            "5",
        ])
        .arg(format!("http://{addr}/"))
        .output()
        .await
        .unwrap();
    Curl {
        exit_code: output.status.code(),
        body: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

/// curl's exit codes for a connection refused (7), an empty reply (52) or a reset (56): the
/// immediate failures; a timeout (28) would mean the proxy left the client hanging.
/// curl's exits for a connection the proxy reset: refused (7), empty reply (52), reset while
/// sending the request (55) or while receiving (56), whichever moment the reset meets.
fn failed_at_once(result: &Curl) -> bool {
    matches!(result.exit_code, Some(7 | 52 | 55 | 56))
}

fn bridge_addresses(network: &NodeNetwork) -> String {
    let output = std::process::Command::new("ip")
        .args([
            "-n",
            network.netns_name(),
            "-4",
            "-o",
            "addr",
            "show",
            "dev",
            "cni0",
        ])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

async fn create_service(services: &Api<Service>, name: &str, target_port: u16) -> Ipv4Addr {
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"app": name},
                 "ports": [{"name": "http", "port": 80, "targetPort": target_port}]},
    }))
    .unwrap();
    let created = services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    created.spec.unwrap().cluster_ip.unwrap().parse().unwrap()
}

fn slice(service: &str, port: u16, ips: &[Ipv4Addr]) -> serde_json::Value {
    let endpoints: Vec<serde_json::Value> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip.to_string()], "conditions": {"ready": true}}))
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-abcde"),
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
    })
}

async fn set_slice(slices: &Api<EndpointSlice>, service: &str, port: u16, ips: &[Ipv4Addr]) {
    slices
        .patch(
            &format!("{service}-abcde"),
            &PatchParams::apply("proxy-test").force(),
            &Patch::Apply(slice(service, port, ips)),
        )
        .await
        .unwrap();
}

/// Waits (on the proxy's own route table) until `addr` routes to exactly `endpoints`.
async fn wait_for_endpoints(
    routes: &mut watch::Receiver<RouteTable>,
    addr: SocketAddrV4,
    endpoints: &[SocketAddrV4],
) {
    let waited = routes.wait_for(|table| {
        table
            .get(&addr)
            .is_some_and(|route| route.endpoints == endpoints)
    });
    // A guard against hanging forever when the proxy never gets there, not a timing check.
    tokio::time::timeout(WATCH_GUARD, waited)
        .await
        .unwrap_or_else(|_| panic!("{addr} never routed to {endpoints:?}"))
        .unwrap();
}

const WATCH_GUARD: std::time::Duration = std::time::Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_a_cluster_ip_to_ready_endpoints_and_rejects_where_nothing_answers() {
    let api = TestApiServer::start().await.unwrap();
    let network = node_network();
    let pod_a = network.create_pod_network("server-a").unwrap();
    let pod_b = network.create_pod_network("server-b").unwrap();
    let client = network.create_pod_network("client").unwrap();
    let server_a = serve_http_in(&pod_a, "a");
    let server_b = serve_http_in(&pod_b, "b");

    let proxy = ServiceProxy::start(
        api.client.clone(),
        network.clone(),
        vec![("kube-system".into(), "kube-dns".into())],
    )
    .await
    .unwrap();
    let mut routes = proxy.routes();
    assert!(
        routes
            .borrow()
            .keys()
            .all(|addr| *addr.ip() != Ipv4Addr::new(10, 96, 0, 1)),
        "default/kubernetes (the API server on the host) is never proxied"
    );

    let services = Api::<Service>::namespaced(api.client.clone(), "default");
    let slices = Api::<EndpointSlice>::namespaced(api.client.clone(), "default");
    let web_ip = create_service(&services, "web", 8080).await;
    // The tutorial's erratum: the Service sends to 8080 where the pod's server is not.
    let wrong_ip = create_service(&services, "wrong-port", 8081).await;
    let web = SocketAddrV4::new(web_ip, 80);
    let wrong = SocketAddrV4::new(wrong_ip, 80);

    // A Service without endpoints is listened on and rejects at once.
    wait_for_endpoints(&mut routes, web, &[]).await;
    assert!(bridge_addresses(&network).contains(&format!("{web_ip}/32")));
    let rejected = curl(&client, web).await;
    assert!(failed_at_once(&rejected), "exit {:?}", rejected.exit_code);

    set_slice(&slices, "web", 8080, &[pod_a.ip]).await;
    set_slice(&slices, "wrong-port", 8081, &[pod_a.ip]).await;
    wait_for_endpoints(&mut routes, web, &[SocketAddrV4::new(pod_a.ip, 8080)]).await;
    wait_for_endpoints(&mut routes, wrong, &[SocketAddrV4::new(pod_a.ip, 8081)]).await;

    let answer = curl(&client, web).await;
    assert_eq!(answer.exit_code, Some(0));
    assert_eq!(answer.body, "hello from a");

    let refused = curl(&client, wrong).await;
    eprintln!("the erratum's port: curl exit code {:?}", refused.exit_code);
    assert!(failed_at_once(&refused), "exit {:?}", refused.exit_code);
    assert_eq!(refused.body, "");

    // The endpoint moves to pod B: followed.
    set_slice(&slices, "web", 8080, &[pod_b.ip]).await;
    wait_for_endpoints(&mut routes, web, &[SocketAddrV4::new(pod_b.ip, 8080)]).await;
    assert_eq!(curl(&client, web).await.body, "hello from b");

    // Both ready: consecutive connections go round robin over both.
    set_slice(&slices, "web", 8080, &[pod_a.ip, pod_b.ip]).await;
    let mut both = vec![
        SocketAddrV4::new(pod_a.ip, 8080),
        SocketAddrV4::new(pod_b.ip, 8080),
    ];
    both.sort();
    wait_for_endpoints(&mut routes, web, &both).await;
    let mut answers = BTreeSet::new();
    for _ in 0..2 {
        answers.insert(curl(&client, web).await.body);
    }
    let expected: BTreeSet<String> = ["hello from a".into(), "hello from b".into()].into();
    assert_eq!(answers, expected);

    // Deleting the Service closes its listener and takes its address off the bridge.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        WATCH_GUARD,
        routes.wait_for(|table| !table.contains_key(&web)),
    )
    .await
    .expect("the deleted Service's listener is closed")
    .unwrap();
    assert!(!bridge_addresses(&network).contains(&format!("{web_ip}/32")));
    assert_ne!(curl(&client, web).await.exit_code, Some(0));

    proxy.shutdown().await;
    let addresses = bridge_addresses(&network);
    assert!(
        !addresses.contains(&format!("{wrong_ip}/32")),
        "{addresses}"
    );
    assert!(addresses.contains("10.244.0.1/16"), "{addresses}");

    server_a.abort();
    server_b.abort();
    network.destroy().unwrap();
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_that_exist_before_start_are_served_when_start_returns() {
    let api = TestApiServer::start().await.unwrap();
    let network = node_network();
    let server_pod = network.create_pod_network("server").unwrap();
    let client = network.create_pod_network("client").unwrap();
    let server = serve_http_in(&server_pod, "early");
    let services = Api::<Service>::namespaced(api.client.clone(), "default");
    let slices = Api::<EndpointSlice>::namespaced(api.client.clone(), "default");
    let ip = create_service(&services, "early", 8080).await;
    set_slice(&slices, "early", 8080, &[server_pod.ip]).await;

    let proxy = ServiceProxy::start(api.client.clone(), network.clone(), vec![])
        .await
        .unwrap();
    let addr = SocketAddrV4::new(ip, 80);
    let served = proxy.routes().borrow().get(&addr).cloned().unwrap();
    assert_eq!(
        (served.namespace.as_str(), served.name.as_str()),
        ("default", "early")
    );
    assert_eq!(
        served.endpoints,
        vec![SocketAddrV4::new(server_pod.ip, 8080)]
    );
    let answer = curl(&client, addr).await;
    assert_eq!(answer.body, "hello from early");

    proxy.shutdown().await;
    assert!(!bridge_addresses(&network).contains(&format!("{ip}/32")));
    server.abort();
    network.destroy().unwrap();
    api.shutdown().await;
}
