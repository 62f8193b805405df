//! The informers against the embedded API server: the initial list is there when `start`
//! returns, and a change to either kind wakes a waiter.

use std::time::Duration;

use k8s_labs_apiserver::testing::TestApiServer;
use k8s_labs_informers::ServiceInformers;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

fn service(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"clusterIP": "None", "ports": [{"port": 80}]},
    }))
    .unwrap()
}

fn names<K: kube::ResourceExt>(objects: Vec<std::sync::Arc<K>>) -> Vec<String> {
    let mut names: Vec<String> = objects.iter().map(|object| object.name_any()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_initial_list_is_there_at_start_and_each_change_wakes_a_waiter() {
    let api_server = TestApiServer::start().await.unwrap();
    let services = Api::<Service>::namespaced(api_server.client.clone(), "default");
    services
        .create(&PostParams::default(), &service("before"))
        .await
        .unwrap();

    let informers = ServiceInformers::start(api_server.client.clone(), "the test")
        .await
        .unwrap();
    assert!(names(informers.services.state()).contains(&"before".to_string()));

    services
        .create(&PostParams::default(), &service("after"))
        .await
        .unwrap();
    woken_until(&informers, "a created Service", |informers| {
        names(informers.services.state()).contains(&"after".to_string())
    })
    .await;

    let slices = Api::<EndpointSlice>::namespaced(api_server.client.clone(), "default");
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "after-x", "labels": {"kubernetes.io/service-name": "after"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.0.7"]}],
    }))
    .unwrap();
    slices.create(&PostParams::default(), &slice).await.unwrap();
    woken_until(&informers, "a created EndpointSlice", |informers| {
        names(informers.endpoint_slices.state()).contains(&"after-x".to_string())
    })
    .await;

    slices
        .delete("after-x", &DeleteParams::default())
        .await
        .unwrap();
    woken_until(&informers, "a deleted EndpointSlice", |informers| {
        !names(informers.endpoint_slices.state()).contains(&"after-x".to_string())
    })
    .await;

    drop(informers);
    api_server.shutdown().await;
}

/// Waits until `holds`, checking again only when the change signal wakes it (no polling).
async fn woken_until(
    informers: &ServiceInformers,
    change: &str,
    holds: impl Fn(&ServiceInformers) -> bool,
) {
    let changed = informers.changed();
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !holds(informers) {
            changed.notified().await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{change} did not show within 10 s");
}
