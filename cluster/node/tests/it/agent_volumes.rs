//! `persistentVolumeClaim` volumes through the real API server, the test playing the
//! PersistentVolume controller (it binds claims to volumes by hand): data written through a
//! claim outlives the pod, and a pod whose claim is missing or unbound waits in
//! ContainerCreating with a FailedMount event until the claim binds. Needs root.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Cluster, delete_and_wait, wait_for_event};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;

/// A volume like the cluster's provisioner makes: a `DirectoryOrCreate` hostPath.
/// A PersistentVolume `name` bound to `claim`, its data at the node path
/// `/var/local-path-provisioner/<name>` (see [`volume_dir`] for where that is on the machine).
async fn create_volume(cluster: &Cluster, name: &str, claim: &str) {
    let path = format!("/var/local-path-provisioner/{name}");
    let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
    let volume: PersistentVolume = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": path, "type": "DirectoryOrCreate"},
            "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "default", "name": claim},
        },
    }))
    .unwrap();
    volumes
        .create(&PostParams::default(), &volume)
        .await
        .unwrap();
}

async fn create_claim(cluster: &Cluster, name: &str) {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), "default");
    let claim: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "",
        },
    }))
    .unwrap();
    claims.create(&PostParams::default(), &claim).await.unwrap();
}

/// What the PersistentVolume controller does when it binds: `spec.volumeName`, then the
/// `Bound` phase through the status subresource.
async fn bind(cluster: &Cluster, claim: &str, volume: &str) {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), "default");
    let spec = serde_json::json!({"spec": {"volumeName": volume}});
    claims
        .patch(claim, &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    let status = serde_json::json!({"status": {
        "phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}});
    claims
        .patch_status(claim, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

fn one_shot(name: &str, claim: &str, read_only: bool, script: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox:1.28",
                "command": ["sh", "-c", script],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data",
                "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}],
        },
    }))
    .unwrap()
}

fn phase(pod: Option<&Pod>) -> Option<String> {
    pod.and_then(|pod| pod.status.as_ref())
        .and_then(|status| status.phase.clone())
}

/// Runs a one-shot pod to success, returns its log, deletes it and checks the node removed it.
async fn run_to_completion(cluster: &Cluster, pod: Pod) -> String {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let name = pod.metadata.name.clone().unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(pods.clone(), &name, |pod: Option<&Pod>| {
            phase(pod).as_deref() == Some("Succeeded")
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("{name} succeeds"))
    .unwrap();
    let log = pods.logs(&name, &LogParams::default()).await.unwrap();
    delete_and_wait(cluster, &pods, &created).await;
    log
}

/// Where a volume of [`create_volume`] is on the machine: below the node's root directory,
/// under the state directory, removed at stop.
fn volume_dir(cluster: &Cluster, name: &str) -> PathBuf {
    cluster
        .state_dir
        .join(k8s_labs_node::NODE_ROOT)
        .join("var/local-path-provisioner")
        .join(name)
}

fn assert_not_mounted_on_host(path: &Path) {
    assert_eq!(
        k8s_labs_node::mounts_under(path).unwrap(),
        Vec::<PathBuf>::new(),
        "a mount of the volume is left in the host's mount namespace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_written_through_a_claim_outlives_the_pod() {
    let cluster = Cluster::start().await;
    let path = volume_dir(&cluster, "pvc-data");
    create_volume(&cluster, "pvc-data", "data").await;
    create_claim(&cluster, "data").await;
    bind(&cluster, "data", "pvc-data").await;

    let written = run_to_completion(
        &cluster,
        one_shot(
            "writer",
            "data",
            false,
            "echo written by $(hostname) > /data/index.html && echo ok",
        ),
    )
    .await;
    assert_eq!(written, "ok\n");
    // The directory was created (DirectoryOrCreate) and holds what the pod wrote.
    assert_eq!(
        std::fs::read_to_string(path.join("index.html")).unwrap(),
        "written by writer\n"
    );
    assert_not_mounted_on_host(&path);

    // A new pod with the same claim, read-only this time: same data, and no writing.
    let read = run_to_completion(
        &cluster,
        one_shot(
            "reader",
            "data",
            true,
            "cat /data/index.html; touch /data/x 2>/dev/null && echo writable || echo read-only",
        ),
    )
    .await;
    assert_eq!(read, "written by writer\nread-only\n");
    assert!(!path.join("x").exists());
    assert_not_mounted_on_host(&path);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_waits_in_container_creating_until_its_claim_binds() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let created = pods
        .create(
            &PostParams::default(),
            &one_shot("web-0", "www-web-0", false, "echo bound > /data/out"),
        )
        .await
        .unwrap();

    let missing = wait_for_event(&cluster.client, |event| {
        event.reason.as_deref() == Some("FailedMount")
            && event.involved_object.name.as_deref() == Some("web-0")
    })
    .await;
    assert_eq!(missing.type_.as_deref(), Some("Warning"));
    let message = missing.message.unwrap();
    assert!(
        message.starts_with("Unable to attach or mount volumes: unmounted volumes=[data]"),
        "{message}"
    );
    assert!(
        message.contains("persistentvolumeclaim \"www-web-0\" not found"),
        "{message}"
    );
    let waiting = pods.get("web-0").await.unwrap();
    assert_eq!(phase(Some(&waiting)).as_deref(), Some("Pending"));
    let state = waiting.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap();
    assert_eq!(
        state.waiting.unwrap().reason.as_deref(),
        Some("ContainerCreating")
    );

    // The claim appears, still unbound: the pod keeps waiting, now for the binding.
    create_claim(&cluster, "www-web-0").await;
    let unbound = wait_for_event(&cluster.client, |event| {
        event.reason.as_deref() == Some("FailedMount")
            && event
                .message
                .as_deref()
                .is_some_and(|message| message.contains("non-bound phase"))
    })
    .await;
    assert!(
        unbound
            .message
            .unwrap()
            .contains("error processing PVC default/www-web-0")
    );
    assert_ne!(
        phase(pods.get("web-0").await.ok().as_ref()).as_deref(),
        Some("Succeeded")
    );

    // Bound: the pod starts and writes into the volume.
    let path = volume_dir(&cluster, "pvc-www-web-0");
    create_volume(&cluster, "pvc-www-web-0", "www-web-0").await;
    bind(&cluster, "www-web-0", "pvc-www-web-0").await;
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(pods.clone(), "web-0", |pod: Option<&Pod>| {
            phase(pod).as_deref() == Some("Succeeded")
        }),
    )
    .await
    .expect("web-0 runs once its claim is bound")
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(path.join("out")).unwrap(),
        "bound\n"
    );
    delete_and_wait(&cluster, &pods, &created).await;
    assert_not_mounted_on_host(&path);
    cluster.stop().await;
}
