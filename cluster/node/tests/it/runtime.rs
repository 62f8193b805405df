//! The node's sandbox and runtime layers without an API server: real runc containers running
//! the programs of the image catalog in pod network namespaces (needs root, as the node does).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_labs_net::{NodeNetwork, NodeNetworkConfig};
use k8s_labs_node::{
    Catalog, ClaimedVolumes, ContainerLaunch, ContainerRegistry, DEFAULT_IMAGE_DIR, DnsSettings,
    Grace, ImageStore, NodeCgroups, NodeUserNamespaces, PodIdentity, PodSandbox, Runc,
    RunnableImage, RunningContainer, SandboxHost, StartError, create_sandbox, remove_sandbox,
    start_container, stop_container,
};
use k8s_openapi::api::core::v1::Pod;

use crate::common::{RunRootTurn, TEST_RUN_ROOT, assert_no_pod_mounts_or_networks, share_run_root};

struct Node {
    _run_root: RunRootTurn,
    network: Arc<NodeNetwork>,
    state_dir: PathBuf,
    runc: Runc,
    cgroups: NodeCgroups,
    user_namespaces: NodeUserNamespaces,
    catalog: Catalog,
    images: ImageStore,
    registry: ContainerRegistry,
}

/// The node's cgroups go with it; its other leftovers go at the next start, as a crashed
/// cluster's do.
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.cgroups.remove();
    }
}

impl Node {
    async fn new() -> Node {
        let run_root = share_run_root().await;
        // What a crashed earlier run of these tests left (a panicking test skips its cleanup).
        k8s_labs_node::cleanup_leftovers(Path::new(TEST_RUN_ROOT)).unwrap();
        let (instance, state_dir) =
            k8s_labs_node::claim_instance(Path::new(TEST_RUN_ROOT)).unwrap();
        let cgroups = NodeCgroups::create(&state_dir, &instance).unwrap();
        let user_namespaces =
            NodeUserNamespaces::create(&state_dir, Path::new(DEFAULT_IMAGE_DIR)).unwrap();
        let network = NodeNetwork::create_with(
            NodeNetworkConfig {
                instance,
                pod_cidr: "10.244.0.0/16".into(),
                local_addresses: vec![Ipv4Addr::new(10, 96, 0, 10)],
            },
            &|path: &Path| user_namespaces.node.bind_network_namespace(path),
        )
        .unwrap();
        Node {
            _run_root: run_root,
            network: Arc::new(network),
            runc: Runc::new(state_dir.join("runc")),
            cgroups,
            user_namespaces,
            images: ImageStore::new(PathBuf::from(DEFAULT_IMAGE_DIR)),
            catalog: Catalog::embedded().unwrap(),
            registry: ContainerRegistry::default(),
            state_dir,
        }
    }

    fn sandbox(&self, pod: &Pod) -> PodSandbox {
        let dns = DnsSettings {
            nameserver: Ipv4Addr::new(10, 96, 0, 10),
            cluster_domain: "cluster.local".into(),
        };
        let host = SandboxHost {
            network: &self.network,
            cgroups: &self.cgroups,
            user_namespaces: Some(&self.user_namespaces),
            node_root: &self.state_dir.join(k8s_labs_node::NODE_ROOT),
            pods_dir: &self.state_dir.join("pods"),
            dns: &dns,
        };
        create_sandbox(&host, pod, &ClaimedVolumes::new()).unwrap()
    }

    async fn start(&self, pod: &Pod, sandbox: &PodSandbox) -> Result<RunningContainer, StartError> {
        self.start_attempt(pod, sandbox, 0).await
    }

    async fn start_attempt(
        &self,
        pod: &Pod,
        sandbox: &PodSandbox,
        attempt: i32,
    ) -> Result<RunningContainer, StartError> {
        let container = &pod.spec.as_ref().unwrap().containers[0];
        let image = self
            .catalog
            .resolve(container.image.as_deref().unwrap())
            .unwrap();
        let image = RunnableImage::from_catalog(&image, self.images.rootfs(&image.entry).unwrap());
        let launch = ContainerLaunch {
            identity: &PodIdentity::of(pod).unwrap(),
            pod,
            sandbox,
            container,
            image: &image,
            attempt,
            extra_env: vec![],
        };
        start_container(&self.runc, &self.registry, launch).await
    }

    async fn exec(&self, id: &str, args: &[&str]) -> String {
        let mut full = vec!["exec", id];
        full.extend_from_slice(args);
        let output = self.runc.command(&full).output().await.unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    /// Asserts that nothing of the node's containers is left: no runc container, no mount
    /// under the state directory, no pod network namespace.
    fn assert_nothing_left(&self) {
        assert_eq!(self.runc.list_blocking().unwrap(), Vec::<String>::new());
        assert_no_pod_mounts_or_networks(&self.state_dir, self.network.instance());
    }

    fn finish(self) {
        self.assert_nothing_left();
        self.network.destroy().unwrap();
        k8s_labs_node::unmount_under(&self.state_dir).unwrap();
        std::fs::remove_dir_all(&self.state_dir).unwrap();
    }
}

/// A field of `/proc/<pid>/stat` after the command name (0 is the state, 1 the parent, 2 the
/// process group).
fn stat_field(pid: i32, index: usize) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    after_name
        .split_whitespace()
        .nth(index)
        .unwrap()
        .parse()
        .unwrap()
}

fn pod(name: &str, image: &str, command: Option<Vec<&str>>) -> Pod {
    let mut container = serde_json::json!({"name": "main", "image": image});
    if let Some(command) = command {
        container["command"] = serde_json::json!(command);
    }
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "lab", "uid": format!("uid-{name}-{}", std::process::id())},
        "spec": {"hostname": name, "subdomain": "nginx", "containers": [container]},
    }))
    .unwrap()
}

/// Waits until something accepts connections on the pod's port, as a tcpSocket readiness
/// probe would (connecting from inside the pod's namespace, never from the host's).
fn wait_until_listening(sandbox: &PodSandbox, port: u16) {
    let address = SocketAddr::from((sandbox.network.ip, port));
    for _ in 0..500 {
        if sandbox
            .network
            .connect_tcp(address, Duration::from_secs(1))
            .is_ok()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("nothing listens on {address}");
}

#[tokio::test]
async fn nginx_serves_the_welcome_page_inside_the_node_network() {
    let node = Node::new().await;
    let pod = pod("web-0", "nginx", None);
    let sandbox = node.sandbox(&pod);
    let running = node.start(&pod, &sandbox).await.unwrap();
    assert!(running.pid > 0);
    // Ctrl-C's SIGINT to our foreground process group must reach neither the container nor
    // the `runc run` that is its parent (runc forwards the signals it gets to the container).
    let ours = nix::unistd::getpgrp().as_raw();
    let runc_run = stat_field(running.pid, 1);
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{runc_run}/comm")).unwrap(),
        "runc\n"
    );
    assert_ne!(
        stat_field(runc_run, 2),
        ours,
        "runc run is in our process group"
    );
    assert_ne!(
        stat_field(running.pid, 2),
        ours,
        "the container is in our process group"
    );
    wait_until_listening(&sandbox, 80);

    let url = format!("http://{}/", sandbox.network.ip);
    let curl = node
        .network
        .command("curl", &["-s", &url])
        .output()
        .await
        .unwrap();
    let page = String::from_utf8_lossy(&curl.stdout);
    assert!(
        page.contains("<title>Welcome to nginx!</title>"),
        "{curl:?}"
    );

    assert_eq!(node.exec(&running.runc_id, &["hostname"]).await, "web-0\n");
    let hosts = node.exec(&running.runc_id, &["cat", "/etc/hosts"]).await;
    assert!(
        hosts.ends_with(&format!(
            "{}\tweb-0.nginx.lab.svc.cluster.local\tweb-0\n",
            sandbox.network.ip
        )),
        "{hosts}"
    );
    let resolv = node
        .exec(&running.runc_id, &["cat", "/etc/resolv.conf"])
        .await;
    assert!(resolv.starts_with("search lab.svc.cluster.local svc.cluster.local cluster.local\n"));
    // curl is in the container too, as in the tutorial.
    let inside = node
        .exec(&running.runc_id, &["curl", "-s", "localhost"])
        .await;
    assert!(inside.contains("<title>Welcome to nginx!</title>"));

    // The access log goes to the container's log, as in the official image.
    node.runc.kill(&running.runc_id, "TERM").await.unwrap();
    let exit = running.exit.await.unwrap();
    assert_eq!(exit.exit_code, 0, "nginx stops cleanly on SIGTERM");
    let key = k8s_labs_node::ContainerKey {
        namespace: "lab".into(),
        pod: "web-0".into(),
        container: "main".into(),
    };
    let log = std::fs::read_to_string(node.registry.get(&key).unwrap().log_path).unwrap();
    assert!(log.contains("\"GET / HTTP/1.1\" 200"), "{log}");

    remove_sandbox(&node.network, &sandbox).unwrap();
    assert!(!sandbox.dir.exists());
    assert!(!sandbox.network.netns_path.exists());
    node.finish();
}

/// `curl -s -w '|%{http_code}' http://<pod ip>/` from the node network: body and status.
async fn curl(node: &Node, sandbox: &PodSandbox) -> String {
    let url = format!("http://{}/", sandbox.network.ip);
    let output = node
        .network
        .command("curl", &["-s", "-w", "|%{http_code}", &url])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// What lab pvc-templates relies on: upstream's StatefulSet tutorial image, with a fresh
/// (empty) volume over its html directory, answers 403 (no index.html and no autoindex), then
/// serves what is written into the volume.
#[tokio::test]
async fn nginx_slim_over_an_empty_volume_answers_403_until_an_index_is_written() {
    let node = Node::new().await;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web-0", "namespace": "lab", "uid": format!("uid-slim-{}", std::process::id())},
        "spec": {
            "containers": [{"name": "main", "image": "registry.k8s.io/nginx-slim:0.24",
                "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]}],
            "volumes": [{"name": "www", "emptyDir": {}}],
        },
    }))
    .unwrap();
    let sandbox = node.sandbox(&pod);
    let running = node.start(&pod, &sandbox).await.unwrap();
    wait_until_listening(&sandbox, 80);
    let forbidden = curl(&node, &sandbox).await;
    assert!(forbidden.ends_with("|403"), "{forbidden}");
    assert!(forbidden.contains("403 Forbidden"), "{forbidden}");

    node.exec(
        &running.runc_id,
        &[
            "sh",
            "-c",
            "echo \"$(hostname)\" > /usr/share/nginx/html/index.html",
        ],
    )
    .await;
    assert_eq!(curl(&node, &sandbox).await, "web-0\n|200");
    // Written through the mount into the volume's host directory.
    assert_eq!(
        std::fs::read_to_string(sandbox.volumes["www"].join("index.html")).unwrap(),
        "web-0\n"
    );

    node.runc.kill(&running.runc_id, "TERM").await.unwrap();
    assert_eq!(running.exit.await.unwrap().exit_code, 0);
    remove_sandbox(&node.network, &sandbox).unwrap();
    node.finish();
}

#[tokio::test]
async fn busybox_1_28_runs_bind9_nslookup_and_busybox_applets() {
    let node = Node::new().await;
    let script = "readlink $(command -v nslookup); nslookup -version 2>&1; readlink $(command -v wget); echo $PATH";
    let pod = pod("dns-test", "busybox:1.28", Some(vec!["sh", "-c", script]));
    let sandbox = node.sandbox(&pod);
    let running = node.start(&pod, &sandbox).await.unwrap();
    let exit = running.exit.await.unwrap();
    assert_eq!(exit.exit_code, 0);
    let key = k8s_labs_node::ContainerKey {
        namespace: "lab".into(),
        pod: "dns-test".into(),
        container: "main".into(),
    };
    let log = std::fs::read_to_string(node.registry.get(&key).unwrap().log_path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "/usr/bin/nslookup", "{log}");
    assert!(
        lines[1].starts_with("nslookup 9."),
        "bind9's nslookup: {log}"
    );
    assert_eq!(lines[2], "/bin/busybox", "{log}");
    assert!(lines[3].starts_with("/.k8s-labs/bin:"), "{log}");
    remove_sandbox(&node.network, &sandbox).unwrap();
    node.finish();
}

#[tokio::test]
async fn a_container_that_exits_at_once_reports_its_exit_code() {
    let node = Node::new().await;
    let pod = pod(
        "crash",
        "busybox",
        Some(vec!["sh", "-c", "echo bye >&2; exit 3"]),
    );
    let sandbox = node.sandbox(&pod);
    let running = node.start(&pod, &sandbox).await.unwrap();
    assert_eq!(running.exit.await.unwrap().exit_code, 3);
    remove_sandbox(&node.network, &sandbox).unwrap();
    node.finish();
}

#[tokio::test]
async fn a_missing_command_is_a_start_error_with_runcs_reason() {
    let node = Node::new().await;
    let pod = pod("nocmd", "busybox", Some(vec!["no-such-program"]));
    let sandbox = node.sandbox(&pod);
    match node.start(&pod, &sandbox).await {
        Err(StartError::Failed { message, .. }) => {
            assert!(message.contains("no-such-program"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    remove_sandbox(&node.network, &sandbox).unwrap();
    node.finish();
}

#[tokio::test]
async fn a_container_with_stdin_reads_what_the_node_writes() {
    let node = Node::new().await;
    let mut pod = pod(
        "reader",
        "busybox",
        Some(vec!["sh", "-c", "read line; echo \"got $line\""]),
    );
    pod.spec.as_mut().unwrap().containers[0].stdin = Some(true);
    let sandbox = node.sandbox(&pod);
    let running = node.start(&pod, &sandbox).await.unwrap();
    let key = k8s_labs_node::ContainerKey {
        namespace: "lab".into(),
        pod: "reader".into(),
        container: "main".into(),
    };
    let record = node.registry.get(&key).unwrap();
    let stdin = record.stdin.clone().unwrap();
    stdin.write(b"hi\n").await.unwrap();
    assert_eq!(running.exit.await.unwrap().exit_code, 0);
    assert_eq!(
        std::fs::read_to_string(record.log_path).unwrap(),
        "got hi\n"
    );
    remove_sandbox(&node.network, &sandbox).unwrap();
    node.finish();
}

/// A grace period that stays as it is (its sender is gone).
fn grace(seconds: i64) -> tokio::sync::watch::Receiver<Grace> {
    tokio::sync::watch::channel(Grace::Seconds(seconds)).1
}

/// A container stopped at any point of its start-up gets its SIGTERM: nginx (which exits at
/// once on SIGTERM) must be gone well within a 30 s grace period, never killed by SIGKILL at
/// its end. The container's process is its PID namespace's init, which drops a SIGTERM that
/// arrives before it has installed its handler; the node must send it again then.
#[tokio::test]
async fn nginx_stopped_during_its_start_up_exits_on_sigterm() {
    let node = Node::new().await;
    let pod = pod("stopped-early", "nginx", None);
    let sandbox = node.sandbox(&pod);
    let delays_us = [0u64, 0, 0, 100, 300, 1000, 2000, 5000];
    let mut figures = Vec::new();
    for attempt in 0..32 {
        let delay = Duration::from_micros(delays_us[attempt as usize % delays_us.len()]);
        let running = node.start_attempt(&pod, &sandbox, attempt).await.unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let stopping = std::time::Instant::now();
        let exit = tokio::time::timeout(
            Duration::from_secs(10),
            stop_container(&node.runc, running.stop_target(), None, grace(30)),
        )
        .await
        .unwrap_or_else(|_| {
            panic!("attempt {attempt} (stopped {delay:?} after start) still runs after 10 s")
        })
        .unwrap();
        let took = stopping.elapsed();
        eprintln!(
            "attempt {attempt}: stopped {delay:?} after start, exit {} after {took:?}",
            exit.exit_code
        );
        assert_ne!(exit.exit_code, 137, "attempt {attempt} needed SIGKILL");
        node.runc.delete(&running.runc_id).await.unwrap();
        figures.push(took);
    }
    figures.sort();
    eprintln!(
        "stop times over {} starts: median {:?}, max {:?}",
        figures.len(),
        figures[figures.len() / 2],
        figures[figures.len() - 1]
    );
    remove_sandbox(&node.network, &sandbox).unwrap();
    node.finish();
}

/// A process that never catches SIGTERM (`sleep` as PID 1 ignores it) is killed with SIGKILL
/// when the grace period is over, as on a real node.
#[tokio::test]
async fn a_container_ignoring_sigterm_is_killed_after_the_grace_period() {
    let node = Node::new().await;
    let pod = pod("ignorer", "busybox", Some(vec!["sleep", "3600"]));
    let sandbox = node.sandbox(&pod);
    let running = node.start(&pod, &sandbox).await.unwrap();
    let exit = stop_container(&node.runc, running.stop_target(), None, grace(1))
        .await
        .unwrap();
    assert_eq!(exit.exit_code, 137, "killed by SIGKILL");
    node.runc.delete(&running.runc_id).await.unwrap();
    remove_sandbox(&node.network, &sandbox).unwrap();
    node.finish();
}
