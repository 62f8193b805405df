//! Endpoints/EndpointSlice content from Services and pods.

use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::json;

use super::*;

fn nginx_service(cluster_ip: &str, target_port: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "nginx", "namespace": "default"},
        "spec": {"clusterIP": cluster_ip, "selector": {"app": "nginx"},
                 "ports": [{"name": "web", "port": 80, "targetPort": target_port, "protocol": "TCP"}]},
    }))
    .unwrap()
}

fn pod(name: &str, ip: Option<&str>, ready: bool, subdomain: &str) -> Pod {
    let mut status = json!({
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
    });
    if let Some(ip) = ip {
        status["podIP"] = json!(ip);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                     "labels": {"app": "nginx"}},
        "spec": {"hostname": name, "subdomain": subdomain, "nodeName": "node-1",
                 "containers": [{"name": "nginx", "image": "nginx",
                                 "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": status,
    }))
    .unwrap()
}

fn ips(addresses: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
    addresses
        .iter()
        .flatten()
        .map(|address| address.ip.as_str())
        .collect()
}

#[test]
fn ready_and_not_ready_pods_are_split() {
    let service = nginx_service("None", json!(80));
    let pods = [
        pod("web-0", Some("10.244.0.2"), true, "nginx"),
        pod("web-1", Some("10.244.0.3"), false, "nginx"),
        pod("web-2", None, false, "nginx"),
    ];
    let subsets = endpoints_subsets(&service, &pods);
    assert_eq!(subsets.len(), 1);
    assert_eq!(ips(&subsets[0].addresses), vec!["10.244.0.2"]);
    assert_eq!(ips(&subsets[0].not_ready_addresses), vec!["10.244.0.3"]);
    let address = &subsets[0].addresses.as_ref().unwrap()[0];
    assert_eq!(address.hostname.as_deref(), Some("web-0"));
    assert_eq!(address.node_name.as_deref(), Some("node-1"));
    let target = address.target_ref.as_ref().unwrap();
    assert_eq!(
        (
            target.kind.as_deref(),
            target.name.as_deref(),
            target.uid.as_deref()
        ),
        (Some("Pod"), Some("web-0"), Some("uid-web-0"))
    );
    let port = &subsets[0].ports.as_ref().unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("web"), 80));
}

#[test]
fn hostname_only_when_subdomain_is_the_service() {
    let service = nginx_service("None", json!(80));
    let pods = [pod("web-0", Some("10.244.0.2"), true, "other")];
    let subsets = endpoints_subsets(&service, &pods);
    assert_eq!(subsets[0].addresses.as_ref().unwrap()[0].hostname, None);
}

#[test]
fn named_target_port_is_resolved_from_the_pod() {
    let service = nginx_service("10.96.0.20", json!("http"));
    let pods = [pod("web-0", Some("10.244.0.2"), true, "nginx")];
    let subsets = endpoints_subsets(&service, &pods);
    assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 8080);
    let slices = slice_contents(&service, &pods);
    assert_eq!(slices[0].ports[0].port, Some(8080));
    assert_eq!(slices[0].ports[0].name.as_deref(), Some("web"));
}

#[test]
fn unresolvable_named_port_leaves_the_pod_out_of_endpoints() {
    let service = nginx_service("10.96.0.20", json!("missing"));
    let pods = [pod("web-0", Some("10.244.0.2"), true, "nginx")];
    assert!(endpoints_subsets(&service, &pods).is_empty());
}

#[test]
fn terminating_pods_are_dropped_from_endpoints_and_not_ready_in_slices() {
    let service = nginx_service("None", json!(80));
    let mut leaving = pod("web-0", Some("10.244.0.2"), true, "nginx");
    leaving.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
    );
    assert!(endpoints_subsets(&service, std::slice::from_ref(&leaving)).is_empty());
    let slices = slice_contents(&service, &[leaving]);
    let conditions = slices[0].endpoints[0].conditions.as_ref().unwrap();
    assert_eq!(
        (conditions.ready, conditions.serving, conditions.terminating),
        (Some(false), Some(true), Some(true))
    );
}

#[test]
fn no_matching_pod_gives_empty_subsets_and_a_placeholder_slice() {
    let service = nginx_service("None", json!(80));
    let mut stranger = pod("x", Some("10.244.0.9"), true, "nginx");
    stranger.metadata.labels = None;
    assert!(endpoints_subsets(&service, std::slice::from_ref(&stranger)).is_empty());
    assert_eq!(
        slice_contents(&service, &[stranger]),
        vec![SliceContent {
            ports: vec![],
            endpoints: vec![]
        }]
    );
}

#[test]
fn slices_carry_conditions_and_hostnames() {
    let service = nginx_service("None", json!(80));
    let pods = [
        pod("web-1", Some("10.244.0.3"), false, "nginx"),
        pod("web-0", Some("10.244.0.2"), true, "nginx"),
    ];
    let slices = slice_contents(&service, &pods);
    assert_eq!(slices.len(), 1);
    let summary: Vec<(String, Option<String>, Option<bool>)> = slices[0]
        .endpoints
        .iter()
        .map(|endpoint| {
            (
                endpoint.addresses[0].clone(),
                endpoint.hostname.clone(),
                endpoint.conditions.as_ref().unwrap().ready,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("10.244.0.2".into(), Some("web-0".into()), Some(true)),
            ("10.244.0.3".into(), Some("web-1".into()), Some(false)),
        ]
    );
}

#[test]
fn services_without_selector_select_nothing() {
    let mut service = nginx_service("None", json!(80));
    service.spec.as_mut().unwrap().selector = None;
    assert!(!selects(
        &service,
        &pod("web-0", Some("10.244.0.2"), true, "nginx")
    ));
}
