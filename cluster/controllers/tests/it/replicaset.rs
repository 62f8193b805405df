//! The ReplicaSet controller against the embedded API server; the test plays the kubelet.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::{PodWatch, set_pod_status};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Api, ResourceExt as _};
use serde_json::json;

fn frontend(replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "frontend", "labels": {"app": "guestbook"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"tier": "frontend"}},
            "template": {
                "metadata": {"labels": {"tier": "frontend", "app": "guestbook"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
            },
        },
    })
}

/// Pods not being deleted: what the set counts.
fn active(pods: &BTreeMap<String, Pod>) -> BTreeSet<String> {
    pods.values()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .map(|pod| pod.name_any())
        .collect()
}

async fn wait_for_set(
    api: &Api<ReplicaSet>,
    what: &str,
    condition: impl Fn(&ReplicaSet) -> bool,
) -> ReplicaSet {
    tokio::time::timeout(
        common::HANG_GUARD,
        await_condition(api.clone(), "frontend", move |set: Option<&ReplicaSet>| {
            set.is_some_and(&condition)
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("ReplicaSet never reached: {what}"))
    .unwrap()
    .unwrap()
}

fn ready_replicas(set: &ReplicaSet) -> Option<i32> {
    set.status.as_ref().and_then(|s| s.ready_replicas)
}

async fn scale(sets: &Api<ReplicaSet>, replicas: i32) {
    sets.patch_scale(
        "frontend",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn creates_scales_heals_and_reports_readiness() {
    let cluster = common::start().await;
    let ns = "rs";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);
    let sets = Api::<ReplicaSet>::namespaced(cluster.client.clone(), ns);
    let set: ReplicaSet = cluster.create(ns, frontend(3)).await;

    // Three pods from the template, with generated names and the set as controller.
    pods.until("3 pods", |p| active(p).len() == 3).await;
    for pod in pods.pods.values() {
        let name = pod.name_any();
        let suffix = name.strip_prefix("frontend-").unwrap();
        assert_eq!(suffix.len(), 5, "generated name {name}");
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("frontend-"));
        assert_eq!(pod.labels()["tier"], "frontend");
        assert_eq!(pod.labels()["app"], "guestbook");
        let owners = pod.owner_references();
        assert_eq!(owners.len(), 1);
        let owner = &owners[0];
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.name.as_str()
            ),
            ("apps/v1", "ReplicaSet", "frontend")
        );
        assert_eq!(owner.uid, set.uid().unwrap());
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
    }
    let status = wait_for_set(&sets, "3 replicas observed", |set| {
        set.status.as_ref().is_some_and(|s| s.replicas == 3)
    })
    .await
    .status
    .unwrap();
    assert_eq!(status.ready_replicas, Some(0));
    assert_eq!(status.fully_labeled_replicas, Some(3));
    assert_eq!(status.observed_generation, Some(1));

    // Readiness reported by the "kubelet" shows up in the set's status.
    let first_three = active(&pods.pods);
    for name in &first_three {
        set_pod_status(&cluster.client, ns, name, "Running", true).await;
    }
    let status = wait_for_set(&sets, "3 ready", |set| ready_replicas(set) == Some(3))
        .await
        .status
        .unwrap();
    assert_eq!(status.available_replicas, Some(3));

    // Scale to 5 through the scale subresource (kubectl scale).
    scale(&sets, 5).await;
    pods.until("5 pods", |p| active(p).len() == 5).await;
    let set = wait_for_set(&sets, "5 replicas", |set| {
        set.status.as_ref().is_some_and(|s| s.replicas == 5)
    })
    .await;
    assert_eq!(set.status.as_ref().unwrap().observed_generation, Some(2));
    assert_eq!(ready_replicas(&set), Some(3));

    // Scale to 2: the two pods that are not Ready go first, then one Ready pod.
    scale(&sets, 2).await;
    pods.until("2 pods", |p| active(p).len() == 2 && p.len() == 2)
        .await;
    let remaining = active(&pods.pods);
    assert!(
        remaining.is_subset(&first_three),
        "the not-Ready pods were not deleted first: {remaining:?} of {first_three:?}"
    );
    wait_for_set(&sets, "2 ready", |set| {
        set.status
            .as_ref()
            .is_some_and(|s| s.replicas == 2 && s.ready_replicas == Some(2))
    })
    .await;

    // Self-healing: a deleted pod is replaced by a new one with a new name.
    let victim = remaining.first().unwrap().clone();
    Api::<Pod>::namespaced(cluster.client.clone(), ns)
        .delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    pods.until("a replacement", |p| {
        let now = active(p);
        now.len() == 2 && !now.contains(&victim)
    })
    .await;
    let replacement = active(&pods.pods)
        .difference(&remaining)
        .next()
        .unwrap()
        .clone();
    assert!(replacement.starts_with("frontend-") && replacement != victim);
    wait_for_set(&sets, "1 ready after the replacement", |set| {
        set.status
            .as_ref()
            .is_some_and(|s| s.replicas == 2 && s.ready_replicas == Some(1))
    })
    .await;
    set_pod_status(&cluster.client, ns, &replacement, "Running", true).await;
    wait_for_set(&sets, "2 ready again", |set| ready_replicas(set) == Some(2)).await;

    // Deleting the set deletes its pods (garbage collector, background propagation).
    sets.delete("frontend", &DeleteParams::default())
        .await
        .unwrap();
    pods.until("pods gone with the set", |p| p.is_empty()).await;

    cluster.stop().await;
}

#[tokio::test]
async fn adopts_orphans_releases_relabelled_and_ignores_terminating() {
    let cluster = common::start().await;
    let ns = "adopt";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);

    // A bare pod with the selector's labels exists before the set: it is adopted.
    let _: Pod = cluster
        .create(
            ns,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "orphan", "labels": {"tier": "frontend"},
                             "finalizers": ["example.com/hold"]},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
            }),
        )
        .await;
    let _: ReplicaSet = cluster.create(ns, frontend(2)).await;
    pods.until("orphan adopted and one more pod", |p| {
        active(p).len() == 2
            && p["orphan"]
                .owner_references()
                .iter()
                .any(|o| o.name == "frontend" && o.controller == Some(true))
    })
    .await;
    assert!(active(&pods.pods).contains("orphan"));

    // A relabelled pod is released (owner reference removed) and replaced.
    let api = Api::<Pod>::namespaced(cluster.client.clone(), ns);
    let other = active(&pods.pods)
        .into_iter()
        .find(|n| n != "orphan")
        .unwrap();
    api.patch(
        &other,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "debug"}}})),
    )
    .await
    .unwrap();
    pods.until("released and replaced", |p| {
        p[&other].owner_references().is_empty() && active(p).len() == 3
    })
    .await;

    // A terminating pod (held by a finalizer) no longer counts: it is replaced at once.
    api.delete("orphan", &DeleteParams::default())
        .await
        .unwrap();
    pods.until("terminating orphan replaced", |p| {
        p.get("orphan")
            .is_some_and(|orphan| orphan.metadata.deletion_timestamp.is_some())
            && active(p).len() == 3
    })
    .await;
    let sets = Api::<ReplicaSet>::namespaced(cluster.client.clone(), ns);
    wait_for_set(&sets, "2 replicas besides the terminating one", |set| {
        set.status.as_ref().is_some_and(|s| s.replicas == 2)
    })
    .await;
    api.patch(
        "orphan",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    pods.until("orphan gone", |p| !p.contains_key("orphan"))
        .await;

    cluster.stop().await;
}

/// The race behind a replicaset-scale step that hung on ImagePullBackOff: after `kubectl apply`
/// of a fixed image and `kubectl delete pod -l …`, a reconcile that had taken the set from its
/// cache before the apply listed the pods after the deletions and replaced them from the old
/// template. With pods read from the shared informer's cache the same race needs the set's
/// cache to be behind the pod cache; the test holds the controller's watch of ReplicaSets to
/// make it so (no timing involved); every pod created after the change must come from the new
/// template.
#[tokio::test]
async fn pods_deleted_after_a_template_change_come_back_from_the_new_template() {
    let gate = common::gate::WatchGate::default();
    let mut cluster = common::start_gated(&gate).await;
    let ns = "rs-template-race";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);
    let _: ReplicaSet = cluster.create(ns, frontend(3)).await;
    pods.until("3 pods", |p| active(p).len() == 3).await;

    let created = common::change_template_and_delete_pods_behind_a_stale_cache::<ReplicaSet>(
        &mut cluster,
        &gate,
        &mut pods,
        ns,
        "frontend",
        "nginx:fixed",
        3,
    )
    .await;
    let images: Vec<&str> = created.iter().map(common::image).collect();
    assert_eq!(images, ["nginx:fixed"; 3], "images of the replacements");
    cluster.stop().await;
}

/// Pods come from the shared informer's cache, which lags behind the controller's own
/// creations. Expectations keep a pass from acting on a cache that has not seen the previous
/// pass's pods: here the cache never sees them while the test holds the informer's watch, the
/// set is scaled 0 -> 5, and then passes are triggered on purpose (a pass reads the set, so
/// the test counts GETs of it; passes of one set never overlap, so once the second pass
/// after the scale-up has read the set, the first has finished). Every one of those passes
/// sees no pods at all; exactly 5 pods must exist, before and after the watch goes on.
#[tokio::test]
async fn a_scale_up_creates_each_pod_once_while_the_pod_cache_lags() {
    const REPLICAS: usize = 5;
    let gate = common::gate::WatchGate::default();
    let mut cluster = common::start_gated(&gate).await;
    let ns = "rs-lagging-cache";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);
    let sets = Api::<ReplicaSet>::namespaced(cluster.client.clone(), ns);

    cluster.stop_controllers().await;
    let mut hold = gate.arm(
        "/api/v1/pods",
        &format!("/apis/apps/v1/namespaces/{ns}/replicasets/frontend"),
    );
    cluster.start_controllers().await;
    let _: ReplicaSet = cluster.create(ns, frontend(0)).await;
    let mut gets = hold.wait_for_gets(1).await;
    scale(&sets, i32::try_from(REPLICAS).unwrap()).await;
    pods.until("5 pods", |p| p.len() == REPLICAS).await;
    // Two more passes, each started by a change to the set; the first of them runs on a
    // cache without any pod, after the scale-up's pass (and its status write's pass).
    for round in 1..=2 {
        let touch = json!({"metadata": {"annotations": {"touch": round.to_string()}}});
        sets.patch("frontend", &PatchParams::default(), &Patch::Merge(&touch))
            .await
            .unwrap();
        gets = hold.wait_for_gets(gets + 1).await;
    }
    assert_eq!(
        cluster.list::<Pod>(ns).await.len(),
        REPLICAS,
        "pods while the cache showed none"
    );

    let _ = hold.release.send(true);
    let set = wait_for_set(&sets, "5 replicas reported", |set| {
        set.status.as_ref().map(|s| s.replicas) == Some(5)
    })
    .await;
    assert_eq!(set.status.unwrap().replicas, 5);
    // Two passes more, after the cache caught up: still the same pods.
    for round in 3..=4 {
        let touch = json!({"metadata": {"annotations": {"touch": round.to_string()}}});
        sets.patch("frontend", &PatchParams::default(), &Patch::Merge(&touch))
            .await
            .unwrap();
        gets = hold.wait_for_gets(gets + 1).await;
    }
    assert_eq!(cluster.list::<Pod>(ns).await.len(), REPLICAS);
    assert_eq!(pods.created.len(), REPLICAS, "pods ever created");
    cluster.stop().await;
}
