//! The objects kube-apiserver creates itself at start: the four system namespaces, the
//! `kubernetes` Service on the first IP of the service range, and that Service's Endpoints and
//! EndpointSlice naming the address the API server really serves on (kube-apiserver's
//! endpoint reconciler writes its advertise address and secure port there; ours is the host's
//! loopback, which is why the service proxy does not proxy this Service).

use serde_json::json;

use crate::context::{Shared, Target};
use crate::handlers::create_object;
use crate::registry;

fn target(plural: &str, namespace: Option<&str>) -> anyhow::Result<Target> {
    resource_target("", "v1", plural, namespace)
}

fn resource_target(
    group: &str,
    version: &str,
    plural: &str,
    namespace: Option<&str>,
) -> anyhow::Result<Target> {
    let resource = registry::find(group, version, plural)
        .ok_or_else(|| anyhow::anyhow!("{plural} not registered"))?;
    Ok(Target {
        resource,
        namespace: namespace.map(String::from),
        name: None,
        subresource: None,
        watch_path: false,
    })
}

pub fn create_builtin_objects(state: &Shared) -> anyhow::Result<()> {
    let namespaces = target("namespaces", None)?;
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        create_object(
            state,
            &namespaces,
            json!({ "metadata": { "name": name } }),
            false,
        )
        .map_err(|e| anyhow::anyhow!("creating namespace {name}: {}", e.message))?;
    }
    let address = state.address.ip().to_string();
    let port = state.address.port();
    let service = json!({
        "metadata": {
            "name": "kubernetes",
            "labels": { "component": "apiserver", "provider": "kubernetes" },
        },
        "spec": {
            "clusterIP": state.ips.first().to_string(),
            "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": port }],
            "sessionAffinity": "None",
        },
    });
    let endpoints = json!({
        "metadata": {
            "name": "kubernetes",
            "labels": { "endpointslice.kubernetes.io/skip-mirror": "true" },
        },
        "subsets": [{
            "addresses": [{ "ip": address }],
            "ports": [{ "name": "https", "port": port, "protocol": "TCP" }],
        }],
    });
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "labels": { "kubernetes.io/service-name": "kubernetes" },
        },
        "addressType": "IPv4",
        "endpoints": [{ "addresses": [address], "conditions": { "ready": true } }],
        "ports": [{ "name": "https", "port": port, "protocol": "TCP" }],
    });
    for (what, target, object) in [
        ("Service", target("services", Some("default"))?, service),
        (
            "Endpoints",
            target("endpoints", Some("default"))?,
            endpoints,
        ),
        (
            "EndpointSlice",
            resource_target("discovery.k8s.io", "v1", "endpointslices", Some("default"))?,
            slice,
        ),
    ] {
        create_object(state, &target, object, false)
            .map_err(|e| anyhow::anyhow!("creating the kubernetes {what}: {}", e.message))?;
    }
    Ok(())
}
