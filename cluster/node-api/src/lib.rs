//! The contract between the API server and the node agent for what does not go through
//! objects: the streams of exec, attach, logs and port forwarding, and the resource usage
//! readings that `metrics.k8s.io` serves. kube-apiserver reaches the kubelet for these over
//! HTTP; in the embedded cluster both live in one process, so the API server looks up the
//! pod's node in [`NodeConnections`] and calls it directly. Everything else the node agent
//! does goes through the REST API like any other client.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use futures::stream::BoxStream;
use tokio::sync::{mpsc, oneshot};

/// What `POST /api/v1/namespaces/{ns}/pods/{name}/exec` asks for, after the API server has
/// checked that the pod exists and chosen the container (the first one when none is named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Terminal size sent on the resize channel (channel 4 of the streaming protocols).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TerminalSize {
    pub width: u16,
    pub height: u16,
}

/// How a process ended, as the API server reports it on the error channel (a `Status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// The process exited with this code (0 is success).
    Code(i32),
    /// The process could not be started or was lost; the text says why.
    Error(String),
}

/// A running exec (or attach) session. Dropping `stdin` closes the process's stdin.
/// With `tty`, the process's output arrives on `stdout` only, as on a real terminal.
pub struct ExecSession {
    pub stdin: Option<mpsc::Sender<Bytes>>,
    pub stdout: Option<mpsc::Receiver<Bytes>>,
    pub stderr: Option<mpsc::Receiver<Bytes>>,
    pub resize: Option<mpsc::Sender<TerminalSize>>,
    pub exit: oneshot::Receiver<ExitStatus>,
}

/// What `GET /api/v1/namespaces/{ns}/pods/{name}/log` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub follow: bool,
    pub previous: bool,
    pub tail_lines: Option<i64>,
    pub timestamps: bool,
}

/// The log bytes of a container; ends at the end of the log unless `follow` was asked.
pub type LogStream = BoxStream<'static, std::io::Result<Bytes>>;

/// One connection of `kubectl port-forward`: a TCP port of a pod, reached from inside the
/// pod's network namespace (`localhost:<port>` there, as the container runtime dials it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForwardRequest {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// `spec.hostNetwork`: the pod shares the node's network namespace.
    pub host_network: bool,
    pub port: u16,
}

/// What one container used over a window: the rate of its CPU time, and its memory
/// working set at the window's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUsage {
    pub name: String,
    pub usage: Usage,
}

/// CPU in nanocores (billionths of a CPU, the rate of CPU time over the window) and memory
/// in bytes (the working set: usage less the inactive file cache, as cAdvisor reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
}

/// The usage of one pod's running containers, as the kubelet's resource metrics give it to
/// metrics-server: every container's rate between the node's two latest samples of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    pub namespace: String,
    pub name: String,
    /// When the latest samples were taken (the earliest of its containers').
    pub timestamp: std::time::SystemTime,
    /// The time between the two samples the rates come from.
    pub window: std::time::Duration,
    pub containers: Vec<ContainerUsage>,
}

/// The usage of the node as a whole, over a window as for a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUsage {
    pub timestamp: std::time::SystemTime,
    pub window: std::time::Duration,
    pub usage: Usage,
}

/// What a node has measured: the node itself (None until it has two samples) and each pod
/// that has two samples of every running container. A pod without is left out, as
/// metrics-server leaves it out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeMetrics {
    pub node: Option<NodeUsage>,
    pub pods: Vec<PodUsage>,
}

/// Why the node could not serve a stream; the API server maps these to `Status` codes.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// 404: the pod or container is not (or no longer) on this node.
    #[error("{0}")]
    NotFound(String),
    /// 400: for example the container is not running yet.
    #[error("{0}")]
    BadRequest(String),
    /// 500: the runtime failed.
    #[error("{0}")]
    Internal(String),
}

/// The node agent's side of exec, attach, logs, port forwarding and resource metrics (the
/// kubelet API's streaming and metrics parts).
#[async_trait::async_trait]
pub trait NodeConnection: Send + Sync + 'static {
    /// Starts `request.command` in the container and returns its streams.
    async fn exec(&self, request: ExecRequest) -> Result<ExecSession, NodeError>;
    /// Whether [`NodeConnection::attach`] would be accepted now (the container runs, and has
    /// a stdin if one is asked for), without joining it. The API server asks before it
    /// upgrades any attach request, so that a refusal reaches the client as an HTTP answer,
    /// over WebSocket and SPDY alike (kubectl then falls back to the container's log).
    fn check_attach(&self, request: &ExecRequest) -> Result<(), NodeError>;
    /// Connects to the main process of the container (`kubectl attach`, `kubectl run -i`).
    /// `request.command` is empty. The session receives the output written from this call
    /// on (and, on a first attach to a `kubectl run -i` container, what it wrote before).
    async fn attach(&self, request: ExecRequest) -> Result<ExecSession, NodeError>;
    /// The container's log.
    async fn logs(&self, request: LogRequest) -> Result<LogStream, NodeError>;
    /// Whether the pod runs on this node, so that port forwarding to it can start: the
    /// kubelet's check before it upgrades a `portforward` request (`pod does not exist`).
    fn check_port_forward(&self, namespace: &str, pod: &str, uid: &str) -> Result<(), NodeError>;
    /// A TCP connection to `request.port` inside the pod. The error's text is what the
    /// kubelet writes on the request's error stream (`error forwarding port …`).
    async fn port_forward(
        &self,
        request: PortForwardRequest,
    ) -> Result<tokio::net::TcpStream, NodeError>;
    /// A TCP connection to `address`, a pod's IP and port, made from the node's network
    /// namespace: what kube-apiserver's proxy (`pods/proxy`, `services/proxy`) dials from the
    /// control-plane node. The error's text is Go's dial error (`dial tcp …: connect: …`).
    async fn dial(
        &self,
        address: std::net::SocketAddrV4,
    ) -> Result<tokio::net::TcpStream, NodeError>;
    /// The node's latest resource usage readings (the kubelet's `/metrics/resource`, which
    /// metrics-server scrapes): answered from what the node has sampled, never measured on
    /// the call.
    fn metrics(&self) -> NodeMetrics;
}

/// The nodes the API server can reach, by node name. The cluster registers its node agent
/// here once it runs, so the API server can start before any node exists, as in Kubernetes.
#[derive(Clone, Default)]
pub struct NodeConnections(Arc<RwLock<HashMap<String, Arc<dyn NodeConnection>>>>);

impl NodeConnections {
    pub fn register(&self, node_name: &str, connection: Arc<dyn NodeConnection>) {
        let mut nodes = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        nodes.insert(node_name.to_string(), connection);
    }

    pub fn unregister(&self, node_name: &str) {
        let mut nodes = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        nodes.remove(node_name);
    }

    pub fn get(&self, node_name: &str) -> Option<Arc<dyn NodeConnection>> {
        let nodes = self
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        nodes.get(node_name).cloned()
    }
}

impl std::fmt::Debug for NodeConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes = self
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f.debug_list().entries(nodes.keys()).finish()
    }
}
