//! A real API server with a node connection that runs real local processes
//! (`tokio::process`), so exec, attach and logs are tested end to end with real programs.

use std::process::Stdio;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use k8s_labs_apiserver::ApiServer;
use k8s_labs_apiserver::testing::{TestApiServer, server_kubeconfig};
use k8s_labs_node_api::{
    ExecRequest, ExecSession, ExitStatus, LogRequest, LogStream, NodeConnection, NodeConnections,
    NodeError, PortForwardRequest, TerminalSize,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};

pub const NODE: &str = "local-node";

/// What the fake node saw, for the test to wait on (instead of sleeping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    Resized(TerminalSize),
    /// The API server dropped an exec session (or log stream) before its process ended.
    SessionDropped(&'static str),
}

/// Runs every exec/attach as a local process; the "container" is the host.
pub struct LocalNode {
    events: mpsc::UnboundedSender<NodeEvent>,
}

/// Tells the test when it is dropped, unless disarmed first.
struct DropNotice(Option<mpsc::UnboundedSender<NodeEvent>>, &'static str);

impl DropNotice {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for DropNotice {
    fn drop(&mut self) {
        if let Some(events) = self.0.take() {
            let _ = events.send(NodeEvent::SessionDropped(self.1));
        }
    }
}

fn pump(mut reader: impl AsyncRead + Unpin + Send + 'static) -> mpsc::Receiver<Bytes> {
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 8192];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if sender
                        .send(Bytes::copy_from_slice(&buffer[..n]))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    receiver
}

impl LocalNode {
    fn start(&self, request: &ExecRequest, argv: Vec<String>) -> Result<ExecSession, NodeError> {
        // Without a pty, a tty session still gets one output stream: stderr joins stdout.
        let mut command = if request.tty {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg("exec \"$@\" 2>&1")
                .arg("sh")
                .args(&argv);
            command
        } else {
            let mut command = Command::new(&argv[0]);
            command.args(&argv[1..]);
            command
        };
        command
            .stdin(if request.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(if request.tty {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let stdout = child.stdout.take().map(pump);
        let stderr = child.stderr.take().map(pump);
        let stdin = child.stdin.take().map(|mut pipe| {
            let (sender, mut receiver) = mpsc::channel::<Bytes>(16);
            tokio::spawn(async move {
                while let Some(data) = receiver.recv().await {
                    if pipe.write_all(&data).await.is_err() {
                        return;
                    }
                }
            });
            sender
        });
        let resize = request.tty.then(|| {
            let (sender, mut receiver) = mpsc::channel::<TerminalSize>(4);
            let events = self.events.clone();
            tokio::spawn(async move {
                while let Some(size) = receiver.recv().await {
                    let _ = events.send(NodeEvent::Resized(size));
                }
            });
            sender
        });
        let (mut exit_sender, exit) = oneshot::channel();
        let mut notice = DropNotice(Some(self.events.clone()), "exec");
        tokio::spawn(async move {
            tokio::select! {
                status = child.wait() => {
                    notice.disarm();
                    let status = match status {
                        Ok(status) => ExitStatus::Code(status.code().unwrap_or(128)),
                        Err(error) => ExitStatus::Error(error.to_string()),
                    };
                    let _ = exit_sender.send(status);
                }
                // The API server let go of the session: the child is killed on drop.
                () = exit_sender.closed() => drop(notice),
            }
        });
        Ok(ExecSession {
            stdin,
            stdout,
            stderr,
            resize,
            exit,
        })
    }
}

#[async_trait::async_trait]
impl NodeConnection for LocalNode {
    async fn exec(&self, request: ExecRequest) -> Result<ExecSession, NodeError> {
        self.start(&request, request.command.clone())
    }

    fn check_attach(&self, _request: &ExecRequest) -> Result<(), NodeError> {
        Ok(())
    }

    /// The "main process" of the fake container: reads lines and answers them.
    async fn attach(&self, request: ExecRequest) -> Result<ExecSession, NodeError> {
        let main = "while read line; do echo \"main got $line\"; done; echo bye >&2";
        self.start(&request, vec!["sh".into(), "-c".into(), main.into()])
    }

    fn check_port_forward(&self, _namespace: &str, pod: &str, _uid: &str) -> Result<(), NodeError> {
        if pod == "gone" {
            return Err(NodeError::NotFound("pod does not exist".into()));
        }
        Ok(())
    }

    /// No readings yet, as a node that has just started.
    fn metrics(&self) -> k8s_labs_node_api::NodeMetrics {
        k8s_labs_node_api::NodeMetrics::default()
    }

    /// The "pod" is the test process: its ports on 127.0.0.1.
    async fn port_forward(
        &self,
        request: PortForwardRequest,
    ) -> Result<tokio::net::TcpStream, NodeError> {
        let port = request.port;
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|error| {
                NodeError::Internal(format!(
                    "error forwarding port {port} to pod {}, uid : {error}",
                    request.uid
                ))
            })
    }

    /// Every pod address is the test process: its port on 127.0.0.1, whatever the pod's IP.
    async fn dial(
        &self,
        address: std::net::SocketAddrV4,
    ) -> Result<tokio::net::TcpStream, NodeError> {
        tokio::net::TcpStream::connect(("127.0.0.1", address.port()))
            .await
            .map_err(|error| NodeError::Internal(format!("dial tcp {address}: connect: {error}")))
    }

    /// Five lines, or an endless numbered log with `follow`.
    async fn logs(&self, request: LogRequest) -> Result<LogStream, NodeError> {
        if request.previous {
            return Err(NodeError::BadRequest("no previous container".into()));
        }
        let mut script = if request.follow {
            "i=0; while :; do i=$((i+1)); echo \"line $i\"; sleep 0.05; done".to_string()
        } else {
            "for i in 1 2 3 4 5; do echo \"line $i\"; done".to_string()
        };
        if let Some(lines) = request.tail_lines.filter(|_| !request.follow) {
            script = format!("({script}) | tail -n {lines}");
        }
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| NodeError::Internal("no stdout".into()))?;
        let notice = DropNotice(Some(self.events.clone()), "log");
        let stream = tokio_util::io::ReaderStream::new(stdout).map(move |chunk| {
            let _keep_alive = (&child, &notice);
            chunk
        });
        Ok(stream.boxed())
    }
}

/// A started API server with the local node registered, and what the node reports.
pub struct Harness {
    pub server: ApiServer,
    pub client: kube::Client,
    /// The bearer token the server accepts.
    pub token: String,
    pub events: mpsc::UnboundedReceiver<NodeEvent>,
}

pub async fn start() -> Harness {
    let (events_sender, events) = mpsc::unbounded_channel();
    let nodes = NodeConnections::default();
    nodes.register(
        NODE,
        Arc::new(LocalNode {
            events: events_sender,
        }),
    );
    let TestApiServer {
        server,
        client,
        token,
    } = TestApiServer::start_with_nodes(nodes).await.unwrap();
    Harness {
        server,
        client,
        token,
        events,
    }
}

/// A kubeconfig for kubectl: the server's HTTPS URL and CA, with the token.
pub fn kubectl_kubeconfig(harness: &Harness) -> String {
    server_kubeconfig(&harness.server, Some(&harness.token))
}

/// Creates a pod on the local node and reports it running, as the node agent would.
pub async fn running_pod(client: &kube::Client, name: &str) -> Api<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"nodeName": NODE, "containers": [{"name": "main", "image": "busybox"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {
        "phase": "Running",
        "containerStatuses": [{"name": "main", "ready": true, "restartCount": 0, "image": "busybox",
            "imageID": "", "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}}],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    pods
}
