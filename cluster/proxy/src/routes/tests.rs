use serde_json::json;

use super::*;

fn service(namespace: &str, name: &str, spec: serde_json::Value) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"namespace": namespace, "name": name},
            "spec": spec,
        }))
        .unwrap(),
    )
}

fn slice(
    namespace: &str,
    service: &str,
    ports: serde_json::Value,
    endpoints: serde_json::Value,
) -> Arc<EndpointSlice> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"namespace": namespace, "name": format!("{service}-x"),
                         "labels": {SERVICE_NAME_LABEL: service}},
            "addressType": "IPv4",
            "ports": ports,
            "endpoints": endpoints,
        }))
        .unwrap(),
    )
}

fn addr(text: &str) -> SocketAddrV4 {
    text.parse().unwrap()
}

#[test]
fn a_service_port_routes_to_ready_endpoints_at_the_resolved_target_port() {
    let services = [service(
        "default",
        "web",
        json!({"clusterIP": "10.96.0.20", "ports": [
            {"name": "http", "port": 80, "targetPort": "web"},
            {"name": "dns", "port": 53, "protocol": "UDP"},
        ]}),
    )];
    let slices = [
        slice(
            "default",
            "web",
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
            json!([
                {"addresses": ["10.244.0.3"], "conditions": {"ready": true}},
                {"addresses": ["10.244.0.2"]},
                {"addresses": ["10.244.0.4"], "conditions": {"ready": false}},
                {"addresses": ["127.0.0.1"]},
            ]),
        ),
        // Same name in another namespace: not this Service's.
        slice(
            "other",
            "web",
            json!([{"name": "http", "port": 9}]),
            json!([{"addresses": ["10.244.0.9"]}]),
        ),
    ];
    let table = route_table(&services, &slices, &[]);
    assert_eq!(table.len(), 1, "the UDP port is not proxied: {table:?}");
    let route = &table[&addr("10.96.0.20:80")];
    assert_eq!(route.port_name, "http");
    assert_eq!(
        route.endpoints,
        vec![addr("10.244.0.2:8080"), addr("10.244.0.3:8080")]
    );
}

#[test]
fn a_slice_without_the_port_name_gives_no_endpoint() {
    let services = [service(
        "default",
        "web",
        json!({"clusterIP": "10.96.0.20", "ports": [{"port": 80}]}),
    )];
    let slices = [slice(
        "default",
        "web",
        json!([{"name": "http", "port": 8080}]),
        json!([{"addresses": ["10.244.0.2"]}]),
    )];
    let table = route_table(&services, &slices, &[]);
    assert_eq!(table[&addr("10.96.0.20:80")].endpoints, vec![]);
}

#[test]
fn headless_external_name_kubernetes_and_skipped_services_are_not_proxied() {
    let services = [
        service(
            "default",
            "headless",
            json!({"clusterIP": "None", "ports": [{"port": 80}]}),
        ),
        service(
            "default",
            "external",
            json!({"type": "ExternalName", "externalName": "example.com", "ports": [{"port": 80}]}),
        ),
        service(
            "default",
            "kubernetes",
            json!({"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443}]}),
        ),
        service(
            "kube-system",
            "kube-dns",
            json!({"clusterIP": "10.96.0.10", "ports": [{"name": "dns-tcp", "port": 53}]}),
        ),
        service(
            "default",
            "web",
            json!({"type": "NodePort", "clusterIP": "10.96.0.30", "ports": [{"port": 80}]}),
        ),
    ];
    let skip = [("kube-system".to_string(), "kube-dns".to_string())];
    let table = route_table(&services, &[], &skip);
    let proxied: Vec<SocketAddrV4> = table.keys().copied().collect();
    assert_eq!(proxied, vec![addr("10.96.0.30:80")]);
}
