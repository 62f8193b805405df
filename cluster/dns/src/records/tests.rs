//! Name → records, on in-memory Services and EndpointSlices.

use std::sync::Arc;

use hickory_proto::rr::{Name, RData, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::*;

fn zone() -> Zone {
    Zone {
        origin: Name::from_ascii("cluster.local.").unwrap(),
        ttl: 5,
        serial: 42,
    }
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn service(namespace: &str, svc: &str, cluster_ip: &str, ports: serde_json::Value) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": svc, "namespace": namespace},
            "spec": {"clusterIP": cluster_ip, "ports": ports, "selector": {"app": svc}},
        }))
        .unwrap(),
    )
}

/// `endpoints`: (address, hostname, ready).
fn slice(
    namespace: &str,
    svc: &str,
    endpoints: &[(&str, Option<&str>, bool)],
) -> Arc<EndpointSlice> {
    let endpoints: Vec<serde_json::Value> = endpoints
        .iter()
        .map(|(address, hostname, ready)| {
            let mut endpoint = json!({"addresses": [address], "conditions": {"ready": ready}});
            if let Some(hostname) = hostname {
                endpoint["hostname"] = json!(hostname);
            }
            endpoint
        })
        .collect();
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("{svc}-abcde"), "namespace": namespace,
                          "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "web", "port": 80, "protocol": "TCP"}],
        }))
        .unwrap(),
    )
}

/// The tutorial's headless `nginx` with web-0 and web-1 ready and web-2 not ready, plus a
/// ClusterIP Service `api` with a named port.
fn view() -> ClusterView {
    ClusterView {
        services: vec![
            service(
                "default",
                "nginx",
                "None",
                json!([{"name": "web", "port": 80}]),
            ),
            service(
                "default",
                "api",
                "10.96.0.20",
                json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
            ),
        ],
        endpoint_slices: vec![slice(
            "default",
            "nginx",
            &[
                ("10.244.0.2", Some("web-0"), true),
                ("10.244.0.3", Some("web-1"), true),
                ("10.244.0.4", Some("web-2"), false),
                ("10.244.0.5", None, true),
            ],
        )],
    }
}

fn found(resolution: Resolution) -> (Vec<RData>, Vec<RData>) {
    match resolution {
        Resolution::Found {
            answers,
            additionals,
        } => (
            answers.into_iter().map(|r| r.data).collect(),
            additionals.into_iter().map(|r| r.data).collect(),
        ),
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn a(address: &str) -> RData {
    RData::A(A(address.parse().unwrap()))
}

#[test]
fn endpoint_hostname_resolves_to_its_address() {
    let (answers, _) = found(resolve(
        &name("web-1.nginx.default.svc.cluster.local."),
        RecordType::A,
        &view(),
        &zone(),
    ));
    assert_eq!(answers, vec![a("10.244.0.3")]);
}

#[test]
fn names_are_case_insensitive() {
    let (answers, _) = found(resolve(
        &name("WEB-0.Nginx.DEFAULT.svc.cluster.LOCAL."),
        RecordType::A,
        &view(),
        &zone(),
    ));
    assert_eq!(answers, vec![a("10.244.0.2")]);
}

#[test]
fn not_ready_endpoint_does_not_exist() {
    assert_eq!(
        resolve(
            &name("web-2.nginx.default.svc.cluster.local."),
            RecordType::A,
            &view(),
            &zone()
        ),
        Resolution::NxDomain
    );
}

#[test]
fn endpoint_without_hostname_is_named_by_dashed_address() {
    let (answers, _) = found(resolve(
        &name("10-244-0-5.nginx.default.svc.cluster.local."),
        RecordType::A,
        &view(),
        &zone(),
    ));
    assert_eq!(answers, vec![a("10.244.0.5")]);
}

#[test]
fn headless_service_answers_ready_endpoint_addresses() {
    let (answers, _) = found(resolve(
        &name("nginx.default.svc.cluster.local."),
        RecordType::A,
        &view(),
        &zone(),
    ));
    assert_eq!(
        answers,
        vec![a("10.244.0.2"), a("10.244.0.3"), a("10.244.0.5")]
    );
}

#[test]
fn cluster_ip_service_answers_its_cluster_ip() {
    let (answers, _) = found(resolve(
        &name("api.default.svc.cluster.local."),
        RecordType::A,
        &view(),
        &zone(),
    ));
    assert_eq!(answers, vec![a("10.96.0.20")]);
}

#[test]
fn aaaa_of_an_existing_name_is_nodata() {
    let (answers, additionals) = found(resolve(
        &name("web-1.nginx.default.svc.cluster.local."),
        RecordType::AAAA,
        &view(),
        &zone(),
    ));
    assert!(answers.is_empty() && additionals.is_empty());
}

#[test]
fn unknown_names_in_the_zone_are_nxdomain() {
    for missing in [
        "nope.default.svc.cluster.local.",
        "web-9.nginx.default.svc.cluster.local.",
        "nginx.other.svc.cluster.local.",
        "a.b.c.d.e.f.svc.cluster.local.",
        "foo.cluster.local.",
    ] {
        assert_eq!(
            resolve(&name(missing), RecordType::A, &view(), &zone()),
            Resolution::NxDomain,
            "{missing}"
        );
    }
}

#[test]
fn bare_names_are_not_ours() {
    assert_eq!(
        resolve(&name("web-0.nginx."), RecordType::A, &view(), &zone()),
        Resolution::NotOurs
    );
}

#[test]
fn srv_of_cluster_ip_service_targets_the_service() {
    let (answers, additionals) = found(resolve(
        &name("_http._tcp.api.default.svc.cluster.local."),
        RecordType::SRV,
        &view(),
        &zone(),
    ));
    assert_eq!(
        answers,
        vec![RData::SRV(SRV::new(
            0,
            100,
            8080,
            name("api.default.svc.cluster.local.")
        ))]
    );
    assert_eq!(additionals, vec![a("10.96.0.20")]);
}

#[test]
fn srv_of_headless_service_targets_each_endpoint() {
    let (answers, additionals) = found(resolve(
        &name("_web._tcp.nginx.default.svc.cluster.local."),
        RecordType::SRV,
        &view(),
        &zone(),
    ));
    let targets: Vec<String> = answers
        .iter()
        .map(|rdata| match rdata {
            RData::SRV(srv) => format!("{} {}", srv.port, srv.target),
            other => panic!("not SRV: {other:?}"),
        })
        .collect();
    assert_eq!(
        targets,
        vec![
            "80 web-0.nginx.default.svc.cluster.local.",
            "80 web-1.nginx.default.svc.cluster.local.",
            "80 10-244-0-5.nginx.default.svc.cluster.local.",
        ]
    );
    assert_eq!(additionals.len(), 3);
}

#[test]
fn srv_of_unknown_port_is_nxdomain() {
    assert_eq!(
        resolve(
            &name("_ftp._tcp.api.default.svc.cluster.local."),
            RecordType::SRV,
            &view(),
            &zone()
        ),
        Resolution::NxDomain
    );
}

#[test]
fn ptr_of_cluster_ip_and_endpoint() {
    let (answers, _) = found(resolve(
        &name("20.0.96.10.in-addr.arpa."),
        RecordType::PTR,
        &view(),
        &zone(),
    ));
    assert_eq!(
        answers,
        vec![RData::PTR(PTR(name("api.default.svc.cluster.local.")))]
    );
    let (answers, _) = found(resolve(
        &name("3.0.244.10.in-addr.arpa."),
        RecordType::PTR,
        &view(),
        &zone(),
    ));
    assert_eq!(
        answers,
        vec![RData::PTR(PTR(name(
            "web-1.nginx.default.svc.cluster.local."
        )))]
    );
    assert_eq!(
        resolve(
            &name("9.9.9.10.in-addr.arpa."),
            RecordType::PTR,
            &view(),
            &zone()
        ),
        Resolution::NotOurs
    );
}

#[test]
fn external_name_service_is_a_cname() {
    let mut view = view();
    view.services.push(Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.com"},
        }))
        .unwrap(),
    ));
    let (answers, _) = found(resolve(
        &name("ext.default.svc.cluster.local."),
        RecordType::A,
        &view,
        &zone(),
    ));
    assert_eq!(answers, vec![RData::CNAME(CNAME(name("example.com.")))]);
}

#[test]
fn namespace_and_structure_names_exist_without_records() {
    for existing in ["default.svc.cluster.local.", "svc.cluster.local."] {
        let (answers, _) = found(resolve(&name(existing), RecordType::A, &view(), &zone()));
        assert!(answers.is_empty(), "{existing}");
    }
}

#[test]
fn apex_has_coredns_soa() {
    let (answers, _) = found(resolve(
        &name("cluster.local."),
        RecordType::SOA,
        &view(),
        &zone(),
    ));
    assert_eq!(
        answers,
        vec![RData::SOA(SOA::new(
            name("ns.dns.cluster.local."),
            name("hostmaster.cluster.local."),
            42,
            7200,
            1800,
            86400,
            5
        ))]
    );
}

#[test]
fn pod_records_answer_the_dashed_address() {
    let (answers, _) = found(resolve(
        &name("10-244-0-9.default.pod.cluster.local."),
        RecordType::A,
        &view(),
        &zone(),
    ));
    assert_eq!(answers, vec![a("10.244.0.9")]);
}
