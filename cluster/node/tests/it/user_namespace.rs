//! Every pod runs in a user namespace of its own, as `hostUsers: false` gives one: root inside
//! is an unprivileged id of the machine (each pod its own range), while the image, volumes and
//! the files the node writes keep their owners inside and on disk. Needs root, as the node
//! does.

use crate::common;

use common::{Cluster, create_pod, delete_and_wait, run_to_end, wait_for};
use k8s_labs_node::{FIRST_HOST_ID, IDS_PER_POD};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::json;
use std::os::unix::fs::MetadataExt as _;

/// The host id a pod's uid 0 is, from its `/proc/self/uid_map` line `0 <host id> 65536`.
fn host_id_of(uid_map: &str) -> u32 {
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "one mapping: {uid_map:?}");
    assert_eq!(fields[0], "0");
    assert_eq!(fields[2], IDS_PER_POD.to_string());
    fields[1].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_in_a_pod_is_an_unprivileged_id_of_the_machine() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let script = "head -1 /proc/self/uid_map; id -u; stat -c '%u %g' / /etc/passwd /etc/hosts; \
                  echo data > /data/file && stat -c '%u' /data/file; touch /new && echo root writable";
    let pod = |name: &str| {
        json!({
            "metadata": {"name": name},
            "spec": {"restartPolicy": "Never",
                "volumes": [{"name": "data", "emptyDir": {}}],
                "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]},
        })
    };
    // Running side by side, so that both hold a range at once.
    let keeper = create_pod(
        &pods,
        json!({"metadata": {"name": "keeper"}, "spec": {"containers": [{
            "name": "main", "image": "busybox", "command": ["sleep", "600"]}]}}),
    )
    .await;
    wait_for(&pods, "keeper", common::running_and_ready).await;
    let (_, log) = run_to_end(&cluster, &pods, pod("first")).await;
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        &lines[1..],
        ["0", "0 0", "0 0", "0 0", "0", "root writable"],
        "{log}"
    );
    let host_id = host_id_of(lines[0]);
    assert!(host_id >= FIRST_HOST_ID, "{log}");

    // The machine sees the pod's processes as that id, and another pod gets another range.
    let keeper_pid = common::container_pid(&cluster.state_dir, "keeper");
    let status = std::fs::read_to_string(format!("/proc/{keeper_pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let keeper_uid: u32 = uid_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(keeper_uid >= FIRST_HOST_ID, "{uid_line}");
    assert_ne!(keeper_uid, host_id);
    assert_eq!((keeper_uid - FIRST_HOST_ID) % IDS_PER_POD, 0);
    delete_and_wait(&cluster, &pods, &keeper).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_files_keep_their_owners_on_disk() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let node_dir = cluster
        .state_dir
        .join(k8s_labs_node::NODE_ROOT)
        .join("shared");
    let (_, log) = run_to_end(
        &cluster,
        &pods,
        json!({
            "metadata": {"name": "writer"},
            "spec": {"restartPolicy": "Never",
                "volumes": [{"name": "h", "hostPath": {"path": "/shared", "type": "DirectoryOrCreate"}}],
                "containers": [{"name": "main", "image": "busybox",
                    "command": ["sh", "-c", "echo a > /h/root-file; chown 1000:1000 /h/root-file; stat -c '%u' /h/root-file"],
                    "volumeMounts": [{"name": "h", "mountPath": "/h"}]}]},
        }),
    )
    .await;
    assert_eq!(log, "1000\n");
    let on_disk = std::fs::metadata(node_dir.join("root-file")).unwrap();
    assert_eq!((on_disk.uid(), on_disk.gid()), (1000, 1000));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_and_host_network_pods_stay_in_user_namespaces() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let run = |name: &str, host_network: bool| {
        json!({
            "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "hostNetwork": host_network,
                "containers": [{"name": "main", "image": "busybox",
                    "securityContext": {"privileged": true},
                    "command": ["sh", "-c", "head -1 /proc/self/uid_map; mkdir -p /m && mount -t tmpfs t /m && echo mounted"]}]},
        })
    };
    // A privileged container has every capability, over its own namespaces only.
    let (_, log) = run_to_end(&cluster, &pods, run("privileged", false)).await;
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.get(1), Some(&"mounted"), "{log}");
    assert!(host_id_of(lines[0]) > FIRST_HOST_ID, "{log}");
    // hostNetwork: the node's user namespace (the first range), which owns its network.
    let (_, log) = run_to_end(&cluster, &pods, run("host-network", true)).await;
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(host_id_of(lines[0]), FIRST_HOST_ID, "{log}");
    assert_eq!(lines.get(1), Some(&"mounted"), "{log}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_group_owns_empty_dirs_as_the_kubelet_leaves_them() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let (_, log) = run_to_end(
        &cluster,
        &pods,
        json!({
            "metadata": {"name": "fs-group"},
            "spec": {"restartPolicy": "Never",
                "securityContext": {"runAsUser": 1000, "fsGroup": 2000},
                "volumes": [{"name": "data", "emptyDir": {}}],
                "containers": [{"name": "main", "image": "busybox",
                    "command": ["sh", "-c", "stat -c '%g %A' /data; touch /data/f && stat -c '%u %g' /data/f"],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]},
        }),
    )
    .await;
    assert_eq!(log, "2000 drwxrwsrwx\n1000 2000\n");
    cluster.stop().await;
}
