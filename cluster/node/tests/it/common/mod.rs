//! A real API server with this node agent registered, for the agent tests; and helpers to wait
//! for what the agent reports (watch-driven, no polling).

pub mod registry;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use k8s_labs_apiserver::{ApiServer, ApiServerConfig};
use k8s_labs_net::{NodeNetwork, NodeNetworkConfig};
use k8s_labs_node::{NODE_NAMESPACES, NodeAgent, NodeConfig, NodeHandle, NodeUserNamespaces};
use k8s_labs_node_api::{ExecRequest, NodeConnections};
use k8s_labs_podutil::is_pod_running_and_ready;
use k8s_openapi::api::core::v1::{ContainerStateWaiting, ContainerStatus, Event, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};

pub const TEST_RUN_ROOT: &str = "/run/k8s-labs-test";
pub const TOKEN: &str = "node-agent-test-token";
pub const NODE: &str = "k8s-labs-node";
/// How often the test node checks its pods' storage.
const EVICTION_PERIOD: Duration = Duration::from_millis(200);

/// Every node test claims an instance under `TEST_RUN_ROOT`, and each start removes what dead
/// owners left there. The test of that cleanup (`leftovers`) plants an abandoned instance of
/// its own, so it runs alone (as when it was a binary of its own): it takes this lock to
/// write, every other user of the run root to read, and those still run side by side.
static RUN_ROOT: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A test's share of `TEST_RUN_ROOT`, held for as long as its node runs.
pub type RunRootTurn = tokio::sync::RwLockReadGuard<'static, ()>;

/// Waits until no test has the run root to itself; then shares it.
pub async fn share_run_root() -> RunRootTurn {
    RUN_ROOT.read().await
}

/// Waits until no other test uses the run root; then has it alone (from a test that is not
/// async).
pub fn run_root_alone() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    RUN_ROOT.blocking_write()
}

pub struct Cluster {
    _run_root: RunRootTurn,
    pub server: ApiServer,
    pub client: Client,
    pub node: NodeHandle,
    pub nodes: NodeConnections,
    pub network: Arc<NodeNetwork>,
    pub state_dir: PathBuf,
}

impl Cluster {
    pub async fn start() -> Cluster {
        Cluster::start_with(k8s_labs_node::ImageSources::default()).await
    }

    /// A cluster whose node pulls images from `image_sources`.
    pub async fn start_with(image_sources: k8s_labs_node::ImageSources) -> Cluster {
        let run_root = share_run_root().await;
        let _ = rustls::crypto::ring::default_provider().install_default();
        // What a crashed earlier run of these tests left (a panicking test skips its cleanup).
        k8s_labs_node::cleanup_leftovers(Path::new(TEST_RUN_ROOT)).unwrap();
        let nodes = NodeConnections::default();
        let server = ApiServer::start(ApiServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            token: TOKEN.to_string(),
            service_cidr: "10.96.0.0/12".to_string(),
            kubernetes_version: "v1.33.0".to_string(),
            nodes: nodes.clone(),
            limits: Default::default(),
            history_len: k8s_labs_apiserver::HISTORY_LEN,
        })
        .await
        .unwrap();
        let kubeconfig = k8s_labs_apiserver::testing::server_kubeconfig(&server, Some(TOKEN));
        let kubeconfig = Kubeconfig::from_yaml(&kubeconfig).unwrap();
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap();
        let client = Client::try_from(config).unwrap();
        let (instance, state_dir) =
            k8s_labs_node::claim_instance(Path::new(TEST_RUN_ROOT)).unwrap();
        let user_namespaces =
            NodeUserNamespaces::create(&state_dir, Path::new(k8s_labs_node::DEFAULT_IMAGE_DIR));
        assert!(
            user_namespaces.is_some(),
            "this machine runs pods in user namespaces"
        );
        let network_config = NodeNetworkConfig {
            instance,
            pod_cidr: "10.244.0.0/16".into(),
            local_addresses: vec![Ipv4Addr::new(10, 96, 0, 10)],
        };
        let network = Arc::new(match &user_namespaces {
            Some(namespaces) => NodeNetwork::create_with(network_config, &|path: &Path| {
                namespaces.node.bind_network_namespace(path)
            })
            .unwrap(),
            None => NodeNetwork::create(network_config).unwrap(),
        });
        let node = NodeAgent::start(
            client.clone(),
            NodeConfig {
                node_name: NODE.to_string(),
                state_dir: state_dir.clone(),
                network: network.clone(),
                dns_ip: Ipv4Addr::new(10, 96, 0, 10),
                cluster_domain: "cluster.local".into(),
                kubelet_version: "v1.33.0".into(),
                image_dir: k8s_labs_node::DEFAULT_IMAGE_DIR.into(),
                image_sources,
                // Pulled images go with the test's state: a later run starts with none.
                pulled_image_dir: state_dir.join("pulled"),
                user_namespaces,
                metrics_period: k8s_labs_node::DEFAULT_METRICS_PERIOD,
                // Evictions come within a fifth of a second instead of the default's 2 s: the
                // eviction tests wait for three.
                eviction_period: EVICTION_PERIOD,
            },
        )
        .await
        .unwrap();
        nodes.register(NODE, node.connection());
        Cluster {
            _run_root: run_root,
            server,
            client,
            node,
            nodes,
            network,
            state_dir,
        }
    }

    pub async fn stop(self) {
        self.nodes.unregister(NODE);
        self.node.clone().shutdown().await.unwrap();
        self.assert_node_clean();
        self.network.destroy().unwrap();
        k8s_labs_node::unmount_under(&self.state_dir).unwrap();
        std::fs::remove_dir_all(&self.state_dir).unwrap();
        self.server.shutdown().await;
    }
}

pub fn pod(name: &str, image: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": image}]},
    }))
    .unwrap()
}

pub fn running_and_ready(pod: Option<&Pod>) -> bool {
    // With an IP too: the tests reach the pod by it.
    pod.is_some_and(|pod| {
        is_pod_running_and_ready(pod) && pod.status.as_ref().is_some_and(|s| s.pod_ip.is_some())
    })
}

/// The first event in `default` that matches, from a watch (events are written
/// asynchronously, after the status that they go with).
pub async fn wait_for_event(client: &Client, matches: impl Fn(&Event) -> bool) -> Event {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let stream = watcher(events, watcher::Config::default()).applied_objects();
    let mut stream = std::pin::pin!(stream);
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = stream.next().await {
            let event = event.unwrap();
            if matches(&event) {
                return event;
            }
        }
        panic!("the event watch ended");
    })
    .await;
    found.expect("the event")
}

pub async fn collect(mut receiver: tokio::sync::mpsc::Receiver<Bytes>) -> String {
    let mut out = Vec::new();
    while let Some(bytes) = receiver.recv().await {
        out.extend_from_slice(&bytes);
    }
    String::from_utf8(out).unwrap()
}

/// A field of `/proc/<pid>/stat` after the command name (1 is the parent, 2 the process group).
pub fn stat_field(pid: i32, index: usize) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    after_name
        .split_whitespace()
        .nth(index)
        .unwrap()
        .parse()
        .unwrap()
}

/// The processes running `runc --root <state dir>/runc ... <subcommand> ...`.
pub fn runc_processes(state_dir: &Path, subcommand: &str) -> Vec<i32> {
    let root = state_dir.join("runc");
    let root = root.to_str().unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|byte| *byte == 0)
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        if args.iter().any(|arg| arg == root) && args.iter().any(|arg| arg == subcommand) {
            found.push(pid);
        }
    }
    found
}

/// The machine's pid of the init process of pod `pod`'s running container (runc's state).
pub fn container_pid(state_dir: &Path, pod: &str) -> u32 {
    let id = runc_list(state_dir)
        .into_iter()
        .find(|id| id.starts_with(&format!("{pod}-")))
        .unwrap_or_else(|| panic!("no container of pod {pod}"));
    let output = std::process::Command::new("runc")
        .arg("--root")
        .arg(state_dir.join("runc"))
        .args(["state", &id])
        .output()
        .unwrap();
    let state: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    u32::try_from(state["pid"].as_u64().unwrap()).unwrap()
}

impl Cluster {
    /// Waits until the node has finished with the pod (a terminal pod is gone from the API at
    /// once, before the node has removed its sandbox), then asserts that nothing of it is
    /// left: no runc container, no mount under its sandbox directory, no network namespace,
    /// no directory.
    pub async fn assert_pod_removed(&self, uid: &str) {
        let mut pods_on_node = self.node.pods_on_node();
        tokio::time::timeout(
            Duration::from_secs(30),
            pods_on_node.wait_for(|pods| !pods.contains(uid)),
        )
        .await
        .expect("the node finishes with the pod")
        .unwrap();
        let prefix: String = uid
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
        let containers = runc_list(&self.state_dir);
        assert!(
            !containers.iter().any(|id| id.contains(&prefix)),
            "runc containers of pod {uid} left: {containers:?}"
        );
        let pod_dir = self.state_dir.join("pods").join(uid);
        assert_eq!(
            k8s_labs_node::mounts_under(&pod_dir).unwrap(),
            Vec::<PathBuf>::new()
        );
        assert!(
            !pod_dir.exists(),
            "{} left: {:?}",
            pod_dir.display(),
            files_under(&pod_dir)
        );
        let netns = format!("k8s-labs-{}-pod-{uid}", self.network.instance());
        assert!(
            !k8s_labs_net::netns::netns_path(&netns).exists(),
            "{netns} left"
        );
        for dir in self.node_cgroups() {
            let pod_cgroup = dir.join(format!("pod{uid}"));
            assert!(!pod_cgroup.exists(), "{} left", pod_cgroup.display());
        }
    }

    /// The node's cgroup directories, in every hierarchy, as the node recorded them.
    pub fn node_cgroups(&self) -> Vec<PathBuf> {
        std::fs::read_to_string(self.state_dir.join("cgroups"))
            .unwrap()
            .lines()
            .map(PathBuf::from)
            .collect()
    }

    /// Asserts that the node left nothing behind: no runc container, no mount under its state
    /// directory, no pod network namespace (checked before the node network is destroyed,
    /// which would remove those itself).
    pub fn assert_node_clean(&self) {
        assert_eq!(runc_list(&self.state_dir), Vec::<String>::new());
        assert_no_pod_mounts_or_networks(&self.state_dir, self.network.instance());
        let cgroups: Vec<PathBuf> = self
            .node_cgroups()
            .into_iter()
            .filter(|dir| dir.exists())
            .collect();
        assert_eq!(cgroups, Vec::<PathBuf>::new());
        let pods_dir = self.state_dir.join("pods");
        let pod_dirs: Vec<_> = std::fs::read_dir(&pods_dir)
            .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default();
        assert_eq!(pod_dirs, Vec::<PathBuf>::new());
    }
}

/// `runc --root <state dir>/runc list -q`.
pub fn runc_list(state_dir: &Path) -> Vec<String> {
    let output = std::process::Command::new("runc")
        .arg("--root")
        .arg(state_dir.join("runc"))
        .args(["list", "-q"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every path under a directory (for a message on what was left).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            found.extend(files_under(&path));
        }
        found.push(path);
    }
    found
}

pub fn pod_from(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

/// Creates the pod written as JSON through `pods`.
pub async fn create_pod(pods: &Api<Pod>, value: serde_json::Value) -> Pod {
    pods.create(&PostParams::default(), &pod_from(value))
        .await
        .expect("the API server creates the pod")
}

/// Whether the pod has ended (phase Succeeded or Failed).
pub fn ended(pod: Option<&Pod>) -> bool {
    matches!(
        pod.and_then(|pod| pod.status.as_ref())
            .and_then(|status| status.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The waiting state of the pod's first container, while it waits.
pub fn first_waiting(pod: Option<&Pod>) -> Option<ContainerStateWaiting> {
    first_container(pod)
        .and_then(|status| status.state)
        .and_then(|state| state.waiting)
}

/// Creates the pod written as JSON, waits until it has ended and deletes it: the pod as it
/// ended, and its log.
pub async fn run_to_end(
    cluster: &Cluster,
    pods: &Api<Pod>,
    value: serde_json::Value,
) -> (Pod, String) {
    let created = create_pod(pods, value).await;
    let name = created.metadata.name.clone().unwrap_or_default();
    let done = wait_for(pods, &name, ended).await;
    let log = pods.logs(&name, &LogParams::default()).await.unwrap();
    delete_and_wait(cluster, pods, &created).await;
    (done, log)
}

pub fn first_container(pod: Option<&Pod>) -> Option<ContainerStatus> {
    pod.and_then(|pod| pod.status.as_ref())
        .and_then(|status| status.container_statuses.as_ref())
        .and_then(|statuses| statuses.first().cloned())
}

pub async fn wait_for(
    pods: &Api<Pod>,
    name: &str,
    condition: impl Fn(Option<&Pod>) -> bool,
) -> Pod {
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(pods.clone(), name, move |pod: Option<&Pod>| condition(pod)),
    )
    .await
    .unwrap_or_else(|_| panic!("waiting for {name}"))
    .unwrap()
    .unwrap()
}

pub async fn delete_and_wait(cluster: &Cluster, pods: &Api<Pod>, pod: &Pod) {
    let name = pod.metadata.name.clone().unwrap();
    let uid = pod.metadata.uid.clone().unwrap();
    pods.delete(&name, &DeleteParams::default().grace_period(1))
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(pods.clone(), &name, conditions::is_deleted(&uid)),
    )
    .await
    .expect("deleted")
    .unwrap();
    cluster.assert_pod_removed(&uid).await;
}

pub fn request(pod: &str, command: &[&str]) -> ExecRequest {
    ExecRequest {
        namespace: "default".into(),
        pod: pod.into(),
        container: "main".into(),
        command: command.iter().map(|part| part.to_string()).collect(),
        stdin: false,
        stdout: true,
        stderr: true,
        tty: false,
    }
}

/// Asserts that no mount is left under a node's `state_dir` but its own namespaces (the
/// node's user and network namespaces stay pinned as long as the node is there), and no pod
/// network namespace of the node network `instance`.
pub fn assert_no_pod_mounts_or_networks(state_dir: &Path, instance: &str) {
    let node_namespaces = state_dir.join(NODE_NAMESPACES);
    let mounts: Vec<PathBuf> = k8s_labs_node::mounts_under(state_dir)
        .unwrap()
        .into_iter()
        .filter(|path| !path.starts_with(&node_namespaces))
        .collect();
    assert_eq!(mounts, Vec::<PathBuf>::new());
    let prefix = format!("k8s-labs-{instance}-pod-");
    let pod_namespaces: Vec<String> = k8s_labs_net::netns::list()
        .unwrap()
        .into_iter()
        .filter(|name| name.starts_with(&prefix))
        .collect();
    assert_eq!(pod_namespaces, Vec::<String>::new());
}
