//! The kubelet API's streaming part for this node: exec (`runc exec` as a child; with a tty,
//! see [`crate::console_exec`]), logs (the container's log file), attach (the main process's stdin
//! and output), port forwarding ([`crate::port_forward`]) and resource metrics
//! ([`crate::metrics`]).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use k8s_labs_node_api::{
    ExecRequest, ExecSession, ExitStatus, LogRequest, LogStream, NodeConnection, NodeError,
    NodeMetrics, PortForwardRequest,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::attach::output_channel;
use crate::containers::{ContainerKey, ContainerRecord};
use crate::context::NodeContext;

/// [`NodeConnection`] on runc.
pub struct RuncNodeConnection {
    context: Arc<NodeContext>,
}

impl RuncNodeConnection {
    pub(crate) fn new(context: Arc<NodeContext>) -> RuncNodeConnection {
        RuncNodeConnection { context }
    }

    fn record(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<ContainerRecord, NodeError> {
        let key = ContainerKey {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            container: container.to_string(),
        };
        match self.context.registry.get(&key) {
            Some(record) => Ok(record),
            None if self.context.registry.has_pod(namespace, pod) => Err(NodeError::BadRequest(
                format!("container {container} is not valid for pod {pod}"),
            )),
            None => Err(NodeError::BadRequest(format!(
                "container {container:?} in pod {pod:?} is waiting to start: it has not run yet"
            ))),
        }
    }

    /// The record of a running container that can serve `request` as an attach.
    fn attachable_record(&self, request: &ExecRequest) -> Result<ContainerRecord, NodeError> {
        let record = self.running_record(request)?;
        if request.stdin && record.stdin.is_none() {
            return Err(NodeError::BadRequest(format!(
                "container {} in pod {} has no stdin (stdin: true is not set)",
                request.container, request.pod
            )));
        }
        Ok(record)
    }

    fn running_record(&self, request: &ExecRequest) -> Result<ContainerRecord, NodeError> {
        let record = self.record(&request.namespace, &request.pod, &request.container)?;
        if !*record.running.borrow() {
            return Err(NodeError::BadRequest(format!(
                "container {} is not running (pod {})",
                request.container, request.pod
            )));
        }
        Ok(record)
    }
}

#[async_trait::async_trait]
impl NodeConnection for RuncNodeConnection {
    async fn exec(&self, request: ExecRequest) -> Result<ExecSession, NodeError> {
        let record = self.running_record(&request)?;
        if request.command.is_empty() {
            return Err(NodeError::BadRequest(
                "you must specify at least 1 command".into(),
            ));
        }
        if request.tty {
            return crate::console_exec::exec_on_console(
                &self.context.runc,
                &self.context.exec_dir,
                &record.runc_id,
                &request,
            );
        }
        let mut args = vec!["exec".to_string(), record.runc_id.clone()];
        args.extend(request.command.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        exec_with_pipes(self.context.runc.command(&args), &request)
    }

    fn check_attach(&self, request: &ExecRequest) -> Result<(), NodeError> {
        self.attachable_record(request).map(drop)
    }

    async fn attach(&self, request: ExecRequest) -> Result<ExecSession, NodeError> {
        let record = self.attachable_record(&request)?;
        Ok(crate::attach::attach(record, &request))
    }

    async fn logs(&self, request: LogRequest) -> Result<LogStream, NodeError> {
        let record = self.record(&request.namespace, &request.pod, &request.container)?;
        let path = if request.previous {
            record.previous_log_path.clone().ok_or_else(|| {
                NodeError::BadRequest(format!(
                    "previous terminated container \"{}\" in pod \"{}\" not found",
                    request.container, request.pod
                ))
            })?
        } else {
            record.log_path.clone()
        };
        let content = tokio::fs::read(&path).await.unwrap_or_default();
        let start = match request.tail_lines {
            Some(lines) => tail_offset(&content, usize::try_from(lines.max(0)).unwrap_or(0)),
            None => 0,
        };
        let first = Bytes::copy_from_slice(&content[start..]);
        let follow = request.follow && !request.previous;
        let state = LogFollow {
            path,
            offset: content.len() as u64,
            first: Some(first),
            follow,
            running: record.running.clone(),
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, next_log_chunk)))
    }

    fn check_port_forward(&self, namespace: &str, pod: &str, uid: &str) -> Result<(), NodeError> {
        crate::port_forward::check(&self.context, namespace, pod, uid)
    }

    async fn port_forward(
        &self,
        request: PortForwardRequest,
    ) -> Result<tokio::net::TcpStream, NodeError> {
        crate::port_forward::connect(&self.context, &request).await
    }

    async fn dial(
        &self,
        address: std::net::SocketAddrV4,
    ) -> Result<tokio::net::TcpStream, NodeError> {
        crate::port_forward::dial_from_node(&self.context, address).await
    }

    fn metrics(&self) -> NodeMetrics {
        self.context.metrics.snapshot()
    }
}

/// Where the last `lines` lines of `content` start.
fn tail_offset(content: &[u8], lines: usize) -> usize {
    if lines == 0 {
        return content.len();
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    let mut seen = 0;
    for (index, byte) in body.iter().enumerate().rev() {
        if *byte == b'\n' {
            seen += 1;
            if seen == lines {
                return index + 1;
            }
        }
    }
    0
}

struct LogFollow {
    path: std::path::PathBuf,
    offset: u64,
    first: Option<Bytes>,
    follow: bool,
    running: tokio::sync::watch::Receiver<bool>,
    done: bool,
}

/// The next piece of a log: what was there at first, then (when following) whatever the
/// container appends, re-reading the file on a short interval until the container has ended
/// and everything it wrote has been sent.
async fn next_log_chunk(mut state: LogFollow) -> Option<(std::io::Result<Bytes>, LogFollow)> {
    if let Some(first) = state.first.take()
        && !first.is_empty()
    {
        return Some((Ok(first), state));
    }
    if !state.follow || state.done {
        return None;
    }
    loop {
        let ended = !*state.running.borrow();
        let chunk = read_from(&state.path, state.offset).await;
        match chunk {
            Ok(bytes) if !bytes.is_empty() => {
                state.offset += bytes.len() as u64;
                return Some((Ok(bytes), state));
            }
            Ok(_) if ended => return None,
            Ok(_) => {}
            Err(error) => {
                state.done = true;
                return Some((Err(error), state));
            }
        }
        tokio::select! {
            _ = state.running.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

async fn read_from(path: &std::path::Path, offset: u64) -> std::io::Result<Bytes> {
    use tokio::io::AsyncSeekExt;
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Bytes::new()),
        Err(error) => return Err(error),
    };
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut buffer = Vec::new();
    file.read_to_end(&mut buffer).await?;
    Ok(Bytes::from(buffer))
}

fn exec_with_pipes(
    mut command: tokio::process::Command,
    request: &ExecRequest,
) -> Result<ExecSession, NodeError> {
    command
        .stdin(if request.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(if request.stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(if request.stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|error| NodeError::Internal(format!("running runc exec: {error}")))?;
    let (stdout_tx, stdout_rx) = output_channel(request.stdout);
    let (stderr_tx, stderr_rx) = output_channel(request.stderr);
    let stdout_pump = tokio::spawn(copy_out(child.stdout.take(), stdout_tx));
    let stderr_pump = tokio::spawn(copy_out(child.stderr.take(), stderr_tx));
    let stdin_tx = child.stdin.take().map(|stdin| {
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        tokio::spawn(copy_in(rx, stdin));
        tx
    });
    let (exit_tx, exit_rx) = oneshot::channel();
    tokio::spawn(async move {
        let status = child.wait().await;
        let _ = stdout_pump.await;
        let _ = stderr_pump.await;
        let _ = exit_tx.send(exit_status(status));
    });
    Ok(ExecSession {
        stdin: stdin_tx,
        stdout: stdout_rx,
        stderr: stderr_rx,
        resize: None,
        exit: exit_rx,
    })
}

fn exit_status(status: std::io::Result<std::process::ExitStatus>) -> ExitStatus {
    match status {
        Ok(status) => match status.code() {
            Some(code) => ExitStatus::Code(code),
            None => {
                use std::os::unix::process::ExitStatusExt;
                ExitStatus::Code(128 + status.signal().unwrap_or(9))
            }
        },
        Err(error) => ExitStatus::Error(format!("waiting for runc exec: {error}")),
    }
}

/// Copies a process's output to a session channel until EOF (a pty's EIO counts as EOF).
async fn copy_out(reader: Option<impl AsyncRead + Unpin>, sender: Option<mpsc::Sender<Bytes>>) {
    let Some(mut reader) = reader else { return };
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                if let Some(sender) = &sender {
                    // A client that went away stops reading; keep draining so the process
                    // does not block on a full pipe.
                    let _ = sender.send(Bytes::copy_from_slice(&buffer[..read])).await;
                }
            }
        }
    }
}

/// Forwards a session's stdin to a process; closing the channel closes the process's stdin.
async fn copy_in(mut receiver: mpsc::Receiver<Bytes>, mut writer: impl AsyncWrite + Unpin) {
    while let Some(bytes) = receiver.recv().await {
        if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::tail_offset;

    #[test]
    fn tail_finds_the_last_lines() {
        let log = b"one\ntwo\nthree\n";
        assert_eq!(&log[tail_offset(log, 1)..], b"three\n");
        assert_eq!(&log[tail_offset(log, 2)..], b"two\nthree\n");
        assert_eq!(tail_offset(log, 5), 0);
        assert_eq!(tail_offset(log, 0), log.len());
    }
}
