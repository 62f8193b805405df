//! What a pod can see of the machine: its image's files, never the host's. A canary file is
//! planted in the host's `/etc` and `/root`, and pods of each image try to read it. Needs
//! root, as the node does.

use crate::common;

use common::{Cluster, create_pod, delete_and_wait, first_waiting, run_to_end, wait_for};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};

/// Files on the host that no pod may read (`/etc/k8s-labs-canary-<id>`, the same in
/// `/root`), holding `secret`; removed when dropped.
struct Canary {
    paths: Vec<std::path::PathBuf>,
    name: String,
    secret: String,
}

impl Canary {
    fn plant() -> Canary {
        let name = format!("k8s-labs-canary-{}", std::process::id());
        let secret = format!("secret {}", rand_suffix());
        let paths: Vec<std::path::PathBuf> = ["/etc", "/root"]
            .iter()
            .map(|dir| std::path::Path::new(dir).join(&name))
            .collect();
        for path in &paths {
            std::fs::write(path, &secret).unwrap();
        }
        Canary {
            paths,
            name,
            secret,
        }
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        for path in &self.paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default()
}

/// Runs `script` in a one-shot pod of `image`; its log once it has ended.
async fn run(pods: &Api<Pod>, cluster: &Cluster, name: &str, image: &str, script: &str) -> String {
    let manifest = serde_json::json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [
            {"name": "main", "image": image, "command": ["sh", "-c", script]}]},
    });
    run_to_end(cluster, pods, manifest).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_sees_its_image_not_the_host() {
    let canary = Canary::plant();
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let script = format!(
        "cat /etc/{name} /root/{name} 2>&1; \
         grep -c . /etc/passwd; test -e /etc/shadow && echo shadow; \
         test -e {kubectl} && echo kubectl; test -e {repo} && echo repository; echo end",
        name = canary.name,
        kubectl = "/usr/bin/kubectl",
        repo = env!("CARGO_MANIFEST_DIR"),
    );
    for (name, image) in [("plain-busybox", "busybox:1.28"), ("plain-nginx", "nginx")] {
        let log = run(&pods, &cluster, name, image, &script).await;
        assert!(!log.contains(&canary.secret), "{image}: {log}");
        assert!(log.contains("No such file or directory"), "{image}: {log}");
        for host_only in ["shadow", "kubectl", "repository"] {
            assert!(!log.lines().any(|line| line == host_only), "{image}: {log}");
        }
        // The image's own users (six in each catalog image), not the host's.
        assert!(log.contains("\n6\n"), "{image}: {log}");
        assert!(log.ends_with("end\n"), "{image}: {log}");
    }
    cluster.stop().await;
}

/// CVE-2017-1002101: a container replaces a directory of its emptyDir with a symlink to the
/// host's `/etc` and restarts; its next attempt mounts that path as a subPath. The node must
/// not follow the symlink: the attempt fails with CreateContainerConfigError and nothing of
/// the host is read. (A `..` subPath never gets this far: the API server refuses it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_path_never_follows_a_symlink_out_of_its_volume() {
    let canary = Canary::plant();
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let script = format!(
        "if [ -L /data/escape ]; then cat /host-etc/{name}; exit 0; fi; \
         rmdir /data/escape && ln -s /etc /data/escape && echo planted; exit 1",
        name = canary.name
    );
    let created = create_pod(
        &pods,
        serde_json::json!({
            "metadata": {"name": "escaper"},
            "spec": {"restartPolicy": "OnFailure", "containers": [{
                "name": "main", "image": "busybox", "command": ["sh", "-c", script],
                "volumeMounts": [
                    {"name": "data", "mountPath": "/data"},
                    {"name": "data", "mountPath": "/host-etc", "subPath": "escape"}]}],
                "volumes": [{"name": "data", "emptyDir": {}}]},
        }),
    )
    .await;
    // Refused, or (what must not happen) succeeded after reading through the link.
    let ended = wait_for(&pods, "escaper", |pod| {
        let refused = first_waiting(pod)
            .is_some_and(|waiting| waiting.reason.as_deref() == Some("CreateContainerConfigError"));
        refused || common::ended(pod)
    })
    .await;
    let waiting = first_waiting(Some(&ended));
    assert!(waiting.is_some(), "the pod ran through the link: {ended:?}");
    let message = waiting
        .and_then(|waiting| waiting.message)
        .unwrap_or_default();
    assert!(
        message.starts_with(
            "failed to prepare subPath for volumeMount \"data\" of container \"main\""
        ),
        "{message}"
    );
    // The first attempt planted the link; no later one ran (it would have printed the canary).
    let log = pods.logs("escaper", &LogParams::default()).await.unwrap();
    assert_eq!(log, "planted\n");
    delete_and_wait(&cluster, &pods, &created).await;
    cluster.stop().await;
}

/// `hostPath: /` is the node's root directory (as in a kind node's container), never the
/// machine's: the canary in the machine's `/etc` is not there, and what the pod writes lands
/// below the node's root under the cluster's state directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_path_is_the_nodes_root_not_the_machines() {
    let canary = Canary::plant();
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let script = format!(
        "cat /host/etc/{name} 2>&1; mkdir -p /host/etc && echo from-pod > /host/etc/written; \
         ls /host",
        name = canary.name
    );
    let (done, log) = run_to_end(
        &cluster,
        &pods,
        serde_json::json!({
            "metadata": {"name": "host-root"},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "main", "image": "busybox", "command": ["sh", "-c", script],
                "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
        }),
    )
    .await;
    assert!(!log.contains(&canary.secret), "{log}");
    assert!(log.contains("No such file or directory"), "{log}");
    let node_root = cluster.state_dir.join(k8s_labs_node::NODE_ROOT);
    assert_eq!(
        std::fs::read_to_string(node_root.join("etc/written")).unwrap(),
        "from-pod\n"
    );
    assert!(!std::path::Path::new("/etc/written").exists());
    let phase = done.status.and_then(|status| status.phase);
    assert_eq!(phase.as_deref(), Some("Succeeded"), "{log}");
    cluster.stop().await;
}

/// `hostNetwork: true` joins the node's network namespace (the one the cluster made): the pod
/// sees exactly its interfaces, not the machine's, and its IP is the node's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_network_is_the_nodes_namespace_not_the_machines() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let (done, log) = run_to_end(
        &cluster,
        &pods,
        serde_json::json!({
            "metadata": {"name": "on-node"},
            "spec": {"restartPolicy": "Never", "hostNetwork": true, "containers": [{
                "name": "main", "image": "busybox",
                "command": ["sh", "-c", "ls /sys/class/net | sort"]}]},
        }),
    )
    .await;
    let in_pod: Vec<&str> = log.lines().collect();
    let output = std::process::Command::new("ip")
        .args(["-n", cluster.network.netns_name(), "-o", "link", "show"])
        .output()
        .unwrap();
    let mut in_node: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .collect();
    in_node.sort();
    assert_eq!(
        in_pod, in_node,
        "the pod's interfaces are the node namespace's"
    );
    let machine = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "lo")
        .collect::<Vec<_>>();
    for name in &machine {
        assert!(
            !in_pod.contains(&name.as_str()),
            "{name} of the machine is in the pod: {log}"
        );
    }
    let status = done.status.unwrap();
    assert_eq!(
        status.pod_ip, status.host_ip,
        "a host-network pod has the node's IP"
    );
    cluster.stop().await;
}
