//! Storage bounds as the kubelet enforces them: a `medium: Memory` emptyDir is a tmpfs of the
//! kubelet's size (writing past it fails with ENOSPC), a container's `/tmp` is a bounded
//! tmpfs, and a pod over an emptyDir's `sizeLimit` or its `ephemeral-storage` limit is evicted
//! by the node's periodic check with upstream's message and event. Needs root, as the node
//! does.

mod common;

use common::{Cluster, run_to_end};
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
