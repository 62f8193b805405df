//! StorageClass, provisioner and PV/PVC binder against the embedded API server.

use crate::common;

use std::path::PathBuf;

use futures::StreamExt as _;
use k8s_labs_controllers::ControllerConfig;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt as _};
use serde_json::json;

const VOLUME_DIR: &str = "/srv/k8s-labs-test/volumes";

/// The embedded API server with the controllers started on a configured volume directory.
async fn start() -> common::Cluster {
    common::start_with(ControllerConfig {
        volume_dir: Some(PathBuf::from(VOLUME_DIR)),
        ..ControllerConfig::default()
    })
    .await
}

fn claim(name: &str, class: Option<&str>, size: &str) -> serde_json::Value {
    let mut claim = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    });
    if let Some(class) = class {
        claim["spec"]["storageClassName"] = json!(class);
    }
    claim
}

async fn create_cluster_scoped<K>(cluster: &common::Cluster, object: serde_json::Value) -> K
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
{
    Api::<K>::all(cluster.client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(object).unwrap(),
        )
        .await
        .unwrap()
}

async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, condition: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    tokio::time::timeout(
        common::HANG_GUARD,
        await_condition(api.clone(), name, move |object: Option<&K>| {
            object.is_some_and(&condition)
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("{name} never reached: {what}"))
    .unwrap()
    .unwrap()
}

fn claim_phase(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim.status.as_ref().and_then(|s| s.phase.as_deref())
}

fn volume_phase(volume: &PersistentVolume) -> Option<&str> {
    volume.status.as_ref().and_then(|s| s.phase.as_deref())
}

#[tokio::test]
async fn default_class_provisions_binds_and_deletes_with_the_claim() {
    let cluster = start().await;
    let ns = "storage";
    cluster.namespace(ns).await;

    // The default class exists from the start.
    let class = Api::<StorageClass>::all(cluster.client.clone())
        .get("standard")
        .await
        .unwrap();
    assert_eq!(
        class.annotations()["storageclass.kubernetes.io/is-default-class"],
        "true"
    );
    assert_eq!(class.provisioner, "k8s-labs.io/local-path");
    assert_eq!(class.reclaim_policy.as_deref(), Some("Delete"));
    assert_eq!(class.volume_binding_mode.as_deref(), Some("Immediate"));

    // A claim without a class (the alpha annotation means nothing) gets the default, a
    // provisioned volume, and is bound to it.
    let mut www = claim("www-web-0", None, "1Gi");
    www["metadata"]["annotations"] =
        json!({"volume.alpha.kubernetes.io/storage-class": "anything"});
    let created: PersistentVolumeClaim = cluster.create(ns, www).await;
    let uid = created.uid().unwrap();
    let claims = Api::<PersistentVolumeClaim>::namespaced(cluster.client.clone(), ns);
    let bound = wait_for(&claims, "www-web-0", "Bound", |c| {
        claim_phase(c) == Some("Bound")
    })
    .await;
    let spec = bound.spec.clone().unwrap();
    assert_eq!(spec.storage_class_name.as_deref(), Some("standard"));
    assert_eq!(spec.volume_name, Some(format!("pvc-{uid}")));
    let annotations = bound.annotations();
    assert_eq!(annotations["pv.kubernetes.io/bind-completed"], "yes");
    assert_eq!(annotations["pv.kubernetes.io/bound-by-controller"], "yes");
    assert_eq!(
        annotations["volume.kubernetes.io/storage-provisioner"],
        "k8s-labs.io/local-path"
    );
    let status = bound.status.clone().unwrap();
    assert_eq!(status.capacity.unwrap()["storage"].0, "1Gi");
    assert_eq!(status.access_modes.unwrap(), ["ReadWriteOnce"]);

    let volumes = Api::<PersistentVolume>::all(cluster.client.clone());
    let volume_name = format!("pvc-{uid}");
    let volume = wait_for(&volumes, &volume_name, "Bound", |v| {
        volume_phase(v) == Some("Bound")
    })
    .await;
    assert_eq!(
        volume.annotations()["pv.kubernetes.io/provisioned-by"],
        "k8s-labs.io/local-path"
    );
    let volume_spec = volume.spec.clone().unwrap();
    assert_eq!(volume_spec.capacity.unwrap()["storage"].0, "1Gi");
    assert_eq!(volume_spec.access_modes.unwrap(), ["ReadWriteOnce"]);
    assert_eq!(
        volume_spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Delete")
    );
    assert_eq!(volume_spec.storage_class_name.as_deref(), Some("standard"));
    let claim_ref = volume_spec.claim_ref.unwrap();
    assert_eq!(
        (
            claim_ref.namespace.as_deref(),
            claim_ref.name.as_deref(),
            claim_ref.uid.as_deref()
        ),
        (Some(ns), Some("www-web-0"), Some(uid.as_str()))
    );
    let host_path = volume_spec.host_path.unwrap();
    assert_eq!(host_path.path, format!("{VOLUME_DIR}/pvc-{uid}"));
    assert_eq!(host_path.type_.as_deref(), Some("DirectoryOrCreate"));

    // Deleting the claim releases the volume, which (reclaim policy Delete) is then deleted.
    let mut volume_events = watcher(
        volumes.clone(),
        watcher::Config::default().fields(&format!("metadata.name={volume_name}")),
    )
    .boxed();
    claims
        .delete("www-web-0", &DeleteParams::default())
        .await
        .unwrap();
    let mut phases = Vec::new();
    loop {
        let event = tokio::time::timeout(common::HANG_GUARD, volume_events.next())
            .await
            .unwrap_or_else(|_| panic!("volume not deleted; phases seen {phases:?}"))
            .unwrap()
            .unwrap();
        match event {
            watcher::Event::Apply(v) | watcher::Event::InitApply(v) => {
                phases.push(volume_phase(&v).unwrap_or_default().to_string());
            }
            watcher::Event::Delete(_) => break,
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
    assert!(
        phases.iter().any(|p| p == "Released"),
        "Released before deletion: {phases:?}"
    );

    cluster.stop().await;
}

#[tokio::test]
async fn static_volumes_bind_smallest_fit_once_and_retain() {
    let cluster = start().await;
    let ns = "static";
    cluster.namespace(ns).await;
    let volume = |name: &str, size: &str| {
        json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": "manual", "hostPath": {"path": format!("/srv/{name}")}},
        })
    };
    let _: PersistentVolume = create_cluster_scoped(&cluster, volume("big", "5Gi")).await;
    let _: PersistentVolume = create_cluster_scoped(&cluster, volume("small", "2Gi")).await;
    let volumes = Api::<PersistentVolume>::all(cluster.client.clone());
    wait_for(&volumes, "big", "Available", |v| {
        volume_phase(v) == Some("Available")
    })
    .await;

    // The smallest volume that fits; the controller set the claimRef, so says so on the PV.
    let _: PersistentVolumeClaim = cluster
        .create(ns, claim("first", Some("manual"), "1Gi"))
        .await;
    let claims = Api::<PersistentVolumeClaim>::namespaced(cluster.client.clone(), ns);
    let first = wait_for(&claims, "first", "Bound", |c| {
        claim_phase(c) == Some("Bound")
    })
    .await;
    assert_eq!(first.spec.unwrap().volume_name.as_deref(), Some("small"));
    assert_eq!(first.status.unwrap().capacity.unwrap()["storage"].0, "2Gi");
    let small = wait_for(&volumes, "small", "Bound", |v| {
        volume_phase(v) == Some("Bound")
    })
    .await;
    assert_eq!(
        small.annotations()["pv.kubernetes.io/bound-by-controller"],
        "yes"
    );

    // Two claims, one volume left: exactly one of them gets it.
    let _: PersistentVolumeClaim = cluster
        .create(ns, claim("second", Some("manual"), "1Gi"))
        .await;
    let _: PersistentVolumeClaim = cluster
        .create(ns, claim("third", Some("manual"), "1Gi"))
        .await;
    let big = wait_for(&volumes, "big", "Bound", |v| {
        volume_phase(v) == Some("Bound")
    })
    .await;
    let winner = big.spec.unwrap().claim_ref.unwrap().name.unwrap();
    let loser = if winner == "second" {
        "third"
    } else {
        "second"
    };
    wait_for(&claims, &winner, "Bound", |c| {
        claim_phase(c) == Some("Bound")
    })
    .await;
    let pending = claims.get(loser).await.unwrap();
    assert_eq!(claim_phase(&pending), Some("Pending"));
    assert_eq!(pending.spec.unwrap().volume_name, None);

    // A statically created volume defaults to Retain: Released, and kept.
    claims
        .delete("first", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&volumes, "small", "Released", |v| {
        volume_phase(v) == Some("Released")
    })
    .await;
    volumes.get("small").await.unwrap();

    cluster.stop().await;
}
