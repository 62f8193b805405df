//! Storage bounds as the kubelet enforces them: a `medium: Memory` emptyDir is a tmpfs of the
//! kubelet's size (writing past it fails with ENOSPC), a container's `/tmp` is a bounded
//! tmpfs, and a pod over an emptyDir's `sizeLimit` or its `ephemeral-storage` limit is evicted
//! by the node's periodic check with upstream's message and event. Needs root, as the node
//! does.

use crate::common;

use common::{Cluster, create_pod, delete_and_wait, run_to_end, wait_for, wait_for_event};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::json;

/// The `1K-blocks` column of `df -k` for the filesystem mounted at `mount_point`.
fn df_blocks(log: &str, mount_point: &str) -> Option<u64> {
    log.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.last() == Some(&mount_point) && fields.len() == 6)
        .and_then(|fields| fields[1].parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_backed_empty_dir_is_a_tmpfs_of_the_kubelets_size() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    // /cache has a sizeLimit; /scratch has none, so it gets the pod's memory limit.
    let script = "df -k /cache /scratch; grep -E ' /(cache|scratch) ' /proc/mounts; \
                  dd if=/dev/zero of=/cache/f bs=1M count=16 2>&1; echo dd=$?";
    let (ended, log) = run_to_end(
        &cluster,
        &pods,
        json!({
            "metadata": {"name": "memory-volume"},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "main", "image": "busybox", "command": ["sh", "-c", script],
                "resources": {"limits": {"memory": "64Mi"}},
                "volumeMounts": [{"name": "cache", "mountPath": "/cache"},
                                 {"name": "scratch", "mountPath": "/scratch"}]}],
                "volumes": [
                    {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
                    {"name": "scratch", "emptyDir": {"medium": "Memory"}}]},
        }),
    )
    .await;
    assert_eq!(df_blocks(&log, "/cache"), Some(8 * 1024), "{log}");
    assert_eq!(df_blocks(&log, "/scratch"), Some(64 * 1024), "{log}");
    assert!(log.contains("tmpfs /cache tmpfs"), "{log}");
    assert!(log.contains("No space left on device"), "{log}");
    assert!(log.contains("dd=1"), "{log}");
    // A full tmpfs is the kernel's bound, not an eviction.
    let status = ended.status.unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Succeeded"), "{status:?}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmp_is_a_bounded_tmpfs() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let manifest = |name: &str, script: &str, resources: serde_json::Value| {
        json!({
            "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "main", "image": "busybox", "command": ["sh", "-c", script],
                "resources": resources}]},
        })
    };
    let script = "df -k /tmp; dd if=/dev/zero of=/tmp/f bs=1M count=80 2>&1; echo dd=$?";
    let default = manifest("tmp-default", script, json!({}));
    let (_, log) = run_to_end(&cluster, &pods, default).await;
    assert_eq!(df_blocks(&log, "/tmp"), Some(64 * 1024), "{log}");
    assert!(log.contains("No space left on device"), "{log}");
    assert!(log.contains("dd=1"), "{log}");
    // A smaller memory limit makes /tmp smaller (filling it would hit the memory limit
    // first: tmpfs pages are charged to the writer's memory cgroup).
    let resources = json!({"limits": {"memory": "32Mi"}});
    let limited = manifest("tmp-limited", "df -k /tmp", resources);
    let (_, log) = run_to_end(&cluster, &pods, limited).await;
    assert_eq!(df_blocks(&log, "/tmp"), Some(32 * 1024), "{log}");
    cluster.stop().await;
}

/// Creates the pod, waits until the node has evicted it, and checks what the kubelet would
/// show: phase `Failed`, reason `Evicted`, `message`, the same in a Warning event, every
/// container stopped. The sandbox (what the pod wrote) is gone by then; the pod stays in the
/// API until it is deleted, as on a real node.
async fn assert_evicted(cluster: &Cluster, manifest: serde_json::Value, message: &str) {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let created = create_pod(&pods, manifest).await;
    let name = created.metadata.name.clone().unwrap_or_default();
    let uid = created.metadata.uid.clone().unwrap_or_default();
    let pod = wait_for(&pods, &name, |pod| {
        pod.and_then(|pod| pod.status.as_ref())
            .is_some_and(|status| status.reason.as_deref() == Some("Evicted"))
    })
    .await;
    let status = pod.status.unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Failed"), "{status:?}");
    assert_eq!(status.message.as_deref(), Some(message));
    for container in status.container_statuses.iter().flatten() {
        let state = container.state.clone().unwrap_or_default();
        assert!(state.terminated.is_some(), "{container:?}");
    }
    assert!(!cluster.state_dir.join("pods").join(&uid).exists());
    let event = wait_for_event(&cluster.client, |event| {
        event.reason.as_deref() == Some("Evicted")
            && event.involved_object.uid.as_deref() == Some(uid.as_str())
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.message.as_deref(), Some(message));
    delete_and_wait(cluster, &pods, &created).await;
}

/// A busybox container running `script`.
fn container(name: &str, script: &str, resources: serde_json::Value) -> serde_json::Value {
    json!({"name": name, "image": "busybox", "command": ["sh", "-c", script],
           "resources": resources})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_dir_over_its_size_limit_gets_the_pod_evicted() {
    let cluster = Cluster::start().await;
    let mut writer = container(
        "main",
        "dd if=/dev/zero of=/cache/f bs=1M count=4 && sleep 600",
        json!({}),
    );
    writer["volumeMounts"] = json!([{"name": "cache", "mountPath": "/cache"}]);
    let manifest = json!({
        "metadata": {"name": "fills-cache"},
        "spec": {"containers": [writer],
                 "volumes": [{"name": "cache", "emptyDir": {"sizeLimit": "1Mi"}}]},
    });
    let message = "Usage of EmptyDir volume \"cache\" exceeds the limit \"1Mi\". ";
    assert_evicted(&cluster, manifest, message).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_over_its_ephemeral_storage_limit_is_evicted() {
    let cluster = Cluster::start().await;
    // The writable layer: 4 MiB written to / under a 2Mi limit.
    let limit = json!({"limits": {"ephemeral-storage": "2Mi"}});
    let script = "dd if=/dev/zero of=/big bs=1M count=4 && sleep 600";
    let manifest = json!({
        "metadata": {"name": "fills-root"},
        "spec": {"containers": [container("main", script, limit)]},
    });
    let message = "Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ";
    assert_evicted(&cluster, manifest, message).await;

    // The log: 2 MiB of output from a container limited to 1Mi, in a pod whose total (101Mi)
    // is not reached.
    let talker = container(
        "talker",
        "head -c 2097152 /dev/zero; sleep 600",
        json!({"limits": {"ephemeral-storage": "1Mi"}}),
    );
    let idle = container(
        "idle",
        "sleep 600",
        json!({"limits": {"ephemeral-storage": "100Mi"}}),
    );
    let manifest = json!({
        "metadata": {"name": "fills-log"},
        "spec": {"containers": [talker, idle]},
    });
    let message = "Container talker exceeded its local ephemeral storage limit \"1Mi\". ";
    assert_evicted(&cluster, manifest, message).await;
    cluster.stop().await;
}
