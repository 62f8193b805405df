//! Deletion propagation end to end: the API server's deletion finalizers, the garbage
//! collector honouring them, and the workload controllers adopting orphans and standing still
//! while their owner is deleted. The test plays the kubelet.

use crate::common;

use common::{PodWatch, is_running_ready};
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Resource, ResourceExt as _};
use serde_json::json;

const HOLD: &str = "example.com/hold";

fn set(name: &str, replicas: i32) -> serde_json::Value {
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

/// A ReplicaSet whose pods carry a finalizer of the test's, so that they stay Terminating
/// until the test lets them go.
fn held_replicaset(name: &str, replicas: i32) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}, "finalizers": [HOLD]},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    })
}

async fn wait_gone<K>(api: &Api<K>, name: &str, uid: &str)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    tokio::time::timeout(
        common::HANG_GUARD,
        await_condition(api.clone(), name, conditions::is_deleted(uid)),
    )
    .await
    .unwrap_or_else(|_| panic!("{name} was never removed"))
    .unwrap();
}

fn controller_uid(pod: &Pod) -> Option<String> {
    pod.owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
}

#[tokio::test]
async fn orphaned_pods_stay_and_the_set_created_again_adopts_them() {
    let cluster = common::start().await;
    let ns = "orphan";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);
    pods.auto_ready = true;
    let sets = Api::<StatefulSet>::namespaced(cluster.client.clone(), ns);
    let first: StatefulSet = cluster.create(ns, set("web", 2)).await;
    pods.until("two ready pods", |p| {
        p.len() == 2 && p.values().all(is_running_ready)
    })
    .await;
    let uids: Vec<String> = pods.pods.values().filter_map(|p| p.uid()).collect();

    let marked = sets.delete("web", &DeleteParams::orphan()).await.unwrap();
    let marked = marked.left().expect("the set is only marked");
    assert_eq!(marked.finalizers(), ["orphan"]);
    assert!(marked.metadata.deletion_timestamp.is_some());
    wait_gone(&sets, "web", &first.uid().unwrap()).await;
    pods.until("pods orphaned", |p| {
        p.values().all(|pod| pod.owner_references().is_empty())
    })
    .await;
    assert_eq!(pods.pods.len(), 2, "orphaned pods stay");
    assert!(pods.pods.values().all(is_running_ready));

    let second: StatefulSet = cluster.create(ns, set("web", 2)).await;
    let new_uid = second.uid().unwrap();
    pods.until("pods adopted", |p| {
        p.values()
            .all(|pod| controller_uid(pod).as_deref() == Some(new_uid.as_str()))
    })
    .await;
    let after: Vec<String> = pods.pods.values().filter_map(|p| p.uid()).collect();
    assert_eq!(after, uids, "the same pods, not new ones");
    let adopted = &pods.pods["web-0"].owner_references()[0];
    assert_eq!(
        (adopted.kind.as_str(), adopted.block_owner_deletion),
        ("StatefulSet", Some(true))
    );
    // Background deletion of the new set takes the adopted pods along.
    sets.delete("web", &DeleteParams::background())
        .await
        .unwrap();
    pods.until("pods collected", |p| p.is_empty()).await;
    cluster.stop().await;
}

#[tokio::test]
async fn foreground_deletion_keeps_the_owner_until_its_pods_are_gone() {
    let cluster = common::start().await;
    let ns = "foreground";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);
    pods.auto_ready = true;
    let sets = Api::<ReplicaSet>::namespaced(cluster.client.clone(), ns);
    let set: ReplicaSet = cluster.create(ns, held_replicaset("front", 2)).await;
    pods.until("two ready pods", |p| {
        p.len() == 2 && p.values().all(is_running_ready)
    })
    .await;

    sets.delete("front", &DeleteParams::foreground())
        .await
        .unwrap();
    pods.until("both pods terminating", |p| {
        p.values()
            .all(|pod| pod.metadata.deletion_timestamp.is_some())
    })
    .await;
    let deleting = sets.get("front").await.unwrap();
    assert_eq!(deleting.finalizers(), ["foregroundDeletion"]);
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(pods.pods.len(), 2, "a set being deleted replaces no pod");

    let pods_api = Api::<Pod>::namespaced(cluster.client.clone(), ns);
    let release = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    let names: Vec<String> = pods.pods.keys().cloned().collect();
    pods_api
        .patch(&names[0], &PatchParams::default(), &release)
        .await
        .unwrap();
    pods.until("one pod gone", |p| p.len() == 1).await;
    assert!(
        sets.get_opt("front").await.unwrap().is_some(),
        "one blocking pod is left"
    );
    pods_api
        .patch(&names[1], &PatchParams::default(), &release)
        .await
        .unwrap();
    wait_gone(&sets, "front", &set.uid().unwrap()).await;
    assert!(cluster.list::<Pod>(ns).await.is_empty());
    cluster.stop().await;
}

#[tokio::test]
async fn a_foreground_statefulset_creates_nothing_while_it_waits() {
    let cluster = common::start().await;
    let ns = "fg-sts";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);
    pods.auto_ready = true;
    let sets = Api::<StatefulSet>::namespaced(cluster.client.clone(), ns);
    let mut held = set("db", 2);
    held["spec"]["template"]["metadata"]["finalizers"] = json!([HOLD]);
    let created: StatefulSet = cluster.create(ns, held).await;
    pods.until("two ready pods", |p| {
        p.len() == 2 && p.values().all(is_running_ready)
    })
    .await;
    sets.delete("db", &DeleteParams::foreground())
        .await
        .unwrap();
    pods.until("both pods terminating", |p| {
        p.values()
            .all(|pod| pod.metadata.deletion_timestamp.is_some())
    })
    .await;
    // A terminating StatefulSet pod is normally replaced once gone; not while the set goes.
    let pods_api = Api::<Pod>::namespaced(cluster.client.clone(), ns);
    let release = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    for name in ["db-0", "db-1"] {
        pods_api
            .patch(name, &PatchParams::default(), &release)
            .await
            .unwrap();
    }
    wait_gone(&sets, "db", &created.uid().unwrap()).await;
    pods.until("pods gone", |p| p.is_empty()).await;
    let recreated = pods
        .seen
        .iter()
        .filter(|s| matches!(s, common::Seen::Created(_)));
    assert_eq!(
        recreated.count(),
        2,
        "no pod was made after the deletion began"
    );
    assert!(cluster.list::<Pod>(ns).await.is_empty());
    cluster.stop().await;
}

/// A blocking owner reference to `owner`.
fn blocking_reference(owner: &ConfigMap) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "name": owner.name_any(),
           "uid": owner.uid(), "blockOwnerDeletion": true})
}

#[tokio::test]
async fn a_cycle_of_blocking_owners_deleted_in_the_foreground_still_goes() {
    let cluster = common::start().await;
    let ns = "cycle";
    cluster.namespace(ns).await;
    let maps = Api::<ConfigMap>::namespaced(cluster.client.clone(), ns);
    let a: ConfigMap = cluster.create(ns, json!({"metadata": {"name": "a"}})).await;
    let b: ConfigMap = cluster
        .create(
            ns,
            json!({"metadata": {"name": "b", "ownerReferences": [blocking_reference(&a)]}}),
        )
        .await;
    let owned_by_b =
        Patch::Merge(json!({"metadata": {"ownerReferences": [blocking_reference(&b)]}}));
    maps.patch("a", &PatchParams::default(), &owned_by_b)
        .await
        .unwrap();

    // a waits for b, b (deleted in the foreground for a) waits for a: upstream's collector
    // unblocks b's reference to a, and both go.
    maps.delete("a", &DeleteParams::foreground()).await.unwrap();
    wait_gone(&maps, "a", &a.uid().unwrap()).await;
    wait_gone(&maps, "b", &b.uid().unwrap()).await;
    cluster.stop().await;
}
