//! Namespace deletion and garbage collection against the embedded API server.

use crate::common;

use common::{PodWatch, is_running_ready};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Pod, Service};
use kube::api::DeleteParams;
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, ResourceExt as _};
use serde_json::json;

fn parallel_set(name: &str, replicas: i32) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    })
}

fn orphan_pod() -> serde_json::Value {
    json!({
        "metadata": {"name": "orphan", "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "ghost",
            "uid": "00000000-0000-0000-0000-000000000000", "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    })
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_contents_and_then_itself() {
    let cluster = common::start().await;
    let ns = "doomed";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);
    pods.auto_ready = true;
    let _: Service = cluster
        .create(ns, json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "selector": {"app": "db"}}}))
        .await;
    // Bound to a node, so the API server terminates the pods gracefully.
    let mut set = parallel_set("db", 2);
    set["spec"]["template"]["spec"]["nodeName"] = json!("node-1");
    let _: StatefulSet = cluster.create(ns, set).await;
    let _: ConfigMap = cluster
        .create(
            ns,
            json!({"metadata": {"name": "settings"}, "data": {"a": "b"}}),
        )
        .await;
    pods.until("two ready pods", |p| {
        p.values().filter(|p| is_running_ready(p)).count() == 2
    })
    .await;

    let namespaces = Api::<Namespace>::all(cluster.client.clone());
    let uid = namespaces.get(ns).await.unwrap().uid().unwrap();
    namespaces
        .delete(ns, &DeleteParams::default())
        .await
        .unwrap();
    let namespace_gone = tokio::time::timeout(
        common::HANG_GUARD,
        await_condition(namespaces.clone(), ns, conditions::is_deleted(&uid)),
    );
    // The test kubelet finishes the pods' graceful termination meanwhile.
    let ((), gone) = tokio::join!(
        pods.until("all pods gone", |p| p.is_empty()),
        namespace_gone
    );
    gone.expect("the namespace was never removed").unwrap();
    assert!(
        pods.seen
            .contains(&common::Seen::Terminating("db-0".into()))
    );

    assert!(cluster.list::<Pod>(ns).await.is_empty());
    assert!(cluster.list::<Service>(ns).await.is_empty());
    assert!(cluster.list::<Endpoints>(ns).await.is_empty());
    assert!(cluster.list::<ConfigMap>(ns).await.is_empty());
    assert!(cluster.list::<StatefulSet>(ns).await.is_empty());
    cluster.stop().await;
}

#[tokio::test]
async fn objects_whose_owner_is_gone_are_garbage_collected() {
    let cluster = common::start().await;
    let ns = "gc";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);
    pods.auto_ready = true;

    // An owner that never existed.
    let _: Pod = cluster.create(ns, orphan_pod()).await;
    // A real owner that is deleted afterwards.
    let _: StatefulSet = cluster.create(ns, parallel_set("cache", 2)).await;
    pods.until("two ready cache pods", |p| {
        ["cache-0", "cache-1"]
            .iter()
            .all(|n| p.get(*n).is_some_and(is_running_ready))
    })
    .await;
    pods.until("orphan collected", |p| !p.contains_key("orphan"))
        .await;

    Api::<StatefulSet>::namespaced(cluster.client.clone(), ns)
        .delete("cache", &DeleteParams::default())
        .await
        .unwrap();
    pods.until("owned pods collected", |p| p.is_empty()).await;
    assert!(pods.seen.contains(&common::Seen::Gone("cache-1".into())));
    cluster.stop().await;
}

#[tokio::test]
async fn a_deleted_service_takes_its_endpoints_along() {
    let cluster = common::start().await;
    let ns = "svc";
    cluster.namespace(ns).await;
    let _: Service = cluster
        .create(ns, json!({"metadata": {"name": "api"}, "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]}}))
        .await;
    let endpoints = Api::<Endpoints>::namespaced(cluster.client.clone(), ns);
    tokio::time::timeout(
        common::HANG_GUARD,
        await_condition(endpoints.clone(), "api", |ep: Option<&Endpoints>| {
            ep.is_some()
        }),
    )
    .await
    .expect("Endpoints never created")
    .unwrap();
    let uid = endpoints.get("api").await.unwrap().uid().unwrap();
    Api::<Service>::namespaced(cluster.client.clone(), ns)
        .delete("api", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        common::HANG_GUARD,
        await_condition(endpoints, "api", conditions::is_deleted(&uid)),
    )
    .await
    .expect("Endpoints outlived their Service")
    .unwrap();
    cluster.stop().await;
}
