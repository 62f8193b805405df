//! Endpoints/EndpointSlices of a ClusterIP Service with a named target port.

use crate::common;

use common::{PodWatch, pod_ip, set_pod_status};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::await_condition;
use serde_json::json;

fn api_pod(name: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "labels": {"app": "api"}},
        "spec": {"containers": [{"name": "c", "image": "nginx",
                                 "ports": [{"name": "http", "containerPort": 8080}]}]},
    })
}

/// Waits until the Endpoints `api` hold exactly these (ready, not ready) IPs.
async fn wait_for_endpoints(
    client: &kube::Client,
    ns: &str,
    ready: Vec<String>,
    not_ready: Vec<String>,
) -> Endpoints {
    let api = Api::<Endpoints>::namespaced(client.clone(), ns);
    let ips =
        |addresses: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| -> Vec<String> {
            addresses.iter().flatten().map(|a| a.ip.clone()).collect()
        };
    let condition = move |ep: Option<&Endpoints>| {
        let subsets = ep.and_then(|ep| ep.subsets.clone()).unwrap_or_default();
        let got_ready: Vec<String> = subsets.iter().flat_map(|s| ips(&s.addresses)).collect();
        let got_not_ready: Vec<String> = subsets
            .iter()
            .flat_map(|s| ips(&s.not_ready_addresses))
            .collect();
        got_ready == ready && got_not_ready == not_ready
    };
    tokio::time::timeout(common::HANG_GUARD, await_condition(api, "api", condition))
        .await
        .expect("Endpoints never reached the expected addresses")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn endpoints_follow_readiness_labels_and_named_ports() {
    let cluster = common::start().await;
    let ns = "endpoints";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);
    let _: Service = cluster
        .create(
            ns,
            json!({"metadata": {"name": "api"},
                           "spec": {"selector": {"app": "api"},
                                    "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}}),
        )
        .await;
    let _: Pod = cluster.create(ns, api_pod("api-1")).await;
    let _: Pod = cluster.create(ns, api_pod("api-2")).await;

    // No IP yet: empty Endpoints.
    wait_for_endpoints(&cluster.client, ns, vec![], vec![]).await;
    set_pod_status(&cluster.client, ns, "api-1", "Running", true).await;
    set_pod_status(&cluster.client, ns, "api-2", "Running", false).await;
    let endpoints = wait_for_endpoints(
        &cluster.client,
        ns,
        vec![pod_ip("api-1")],
        vec![pod_ip("api-2")],
    )
    .await;
    let port = &endpoints.subsets.unwrap()[0].ports.clone().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some("web"), 8080, Some("TCP"))
    );

    // The controller writes the Endpoints, then the slices: the slice follows.
    let slices = common::wait_for_slices(&cluster.client, ns, "api", |slices| {
        slices.len() == 1 && slices[0].ports.is_some()
    })
    .await;
    assert_eq!(slices.len(), 1);
    assert_eq!(slices[0].ports.as_ref().unwrap()[0].port, Some(8080));

    // Both ready; then a relabeled pod leaves the Service.
    set_pod_status(&cluster.client, ns, "api-2", "Running", true).await;
    wait_for_endpoints(
        &cluster.client,
        ns,
        vec![pod_ip("api-1"), pod_ip("api-2")],
        vec![],
    )
    .await;
    Api::<Pod>::namespaced(cluster.client.clone(), ns)
        .patch(
            "api-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await
        .unwrap();
    wait_for_endpoints(&cluster.client, ns, vec![pod_ip("api-2")], vec![]).await;
    pods.until("both pods seen", |p| p.len() == 2).await;
    cluster.stop().await;
}
