//! `exec` and `attach` over WebSocket, with the channel protocols kube-apiserver speaks
//! (`v5.channel.k8s.io`, `v4.channel.k8s.io`): every binary message starts with a stream id —
//! 0 stdin, 1 stdout, 2 stderr, 3 error (a `Status` when the process ends), 4 resize — and v5
//! adds `[255, id]`, the client closing its side of a stream (stdin EOF).
//!
//! kubectl 1.30+ and kube-rs use WebSocket. Older kubectl uses SPDY, which this server does
//! not speak; such a request gets a `Status` saying so (after the same validation as a
//! WebSocket request, because kubectl 1.30+ retries over SPDY when the WebSocket request is
//! refused, and shows the user the second answer).

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{self, BoxStream, SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use k8s_labs_node_api::{
    ExecRequest, ExecSession, ExitStatus, NodeConnection, NodeConnections, TerminalSize,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::{PodTarget, StatusError, query_bool, query_values};

const STREAM_STDIN: u8 = 0;
const STREAM_STDOUT: u8 = 1;
const STREAM_STDERR: u8 = 2;
const STREAM_ERROR: u8 = 3;
const STREAM_RESIZE: u8 = 4;
/// v5: `[STREAM_CLOSE, id]` half-closes stream `id`.
const STREAM_CLOSE: u8 = 255;

/// How long after the client's first pong its first output frame waits (see `run_session`).
const CLIENT_SETTLE: std::time::Duration = std::time::Duration::from_millis(20);

const PROTOCOL_V5: &str = "v5.channel.k8s.io";
const PROTOCOL_V4: &str = "v4.channel.k8s.io";
/// In preference order; both carry a JSON `Status` on the error stream.
const PROTOCOLS: [&str; 2] = [PROTOCOL_V5, PROTOCOL_V4];

/// exec or attach (attach = true) over WebSocket; `pod` is the stored pod object (JSON).
///
/// Validates like kube-apiserver (container, node) and the kubelet (container running)
/// before upgrading, so errors reach the client as HTTP `Status` answers; once upgraded, the
/// process's end (exit code or failure) is reported on the error stream as a `Status`.
///
/// An attach joins the container *before* the upgrade, as the kubelet asks its runtime
/// before it serves the stream: a container that has exited is refused with an HTTP answer,
/// so kubectl falls back to the container's log, and output written during the handshake
/// reaches the session.
pub async fn serve_exec(
    nodes: &NodeConnections,
    pod: &Value,
    query: &[(String, String)],
    attach: bool,
    ws: Option<WebSocketUpgrade>,
    headers: &http::HeaderMap,
) -> Response {
    let (upgrade, node, request) = match prepare(nodes, pod, query, attach, ws, headers) {
        Ok(prepared) => prepared,
        Err(error) => return error.into_response(),
    };
    let attached = if attach {
        match node.attach(request.clone()).await {
            Ok(session) => Some(session),
            Err(error) => return StatusError::from_node(error).into_response(),
        }
    } else {
        None
    };
    upgrade.on_upgrade(move |socket| async move {
        run_session(socket, node, request, attached).await;
    })
}

fn prepare(
    nodes: &NodeConnections,
    pod: &Value,
    query: &[(String, String)],
    attach: bool,
    ws: Option<WebSocketUpgrade>,
    headers: &http::HeaderMap,
) -> Result<(WebSocketUpgrade, Arc<dyn NodeConnection>, ExecRequest), StatusError> {
    let target = PodTarget::resolve(pod, super::query_value(query, "container"))?;
    if target.node_name().is_empty() {
        return Err(StatusError::bad_request(format!(
            "pod {} does not have a host assigned",
            target.name
        )));
    }
    let node = target.node(nodes)?;
    let request = exec_request(&target, query, attach)?;
    ensure_running(&target)?;
    if attach {
        node.check_attach(&request)
            .map_err(StatusError::from_node)?;
    }
    let Some(ws) = ws else {
        return Err(not_websocket(headers));
    };
    let ws = ws.protocols(PROTOCOLS);
    if ws.selected_protocol().is_none() {
        let requested: Vec<String> = ws
            .requested_protocols()
            .map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned())
            .collect();
        let requested = if requested.is_empty() {
            vec![String::new()]
        } else {
            requested
        };
        return Err(StatusError::bad_request(format!(
            "requested protocol(s) are not supported: [{}]; supports [{}]",
            requested.join(" "),
            PROTOCOLS.join(" ")
        )));
    }
    Ok((ws, node, request))
}

/// The options of `PodExecOptions` / `PodAttachOptions`: stdout and stderr default to true
/// (the real server's defaulting); with a tty, stderr is merged into stdout as the kubelet does.
fn exec_request(
    target: &PodTarget<'_>,
    query: &[(String, String)],
    attach: bool,
) -> Result<ExecRequest, StatusError> {
    let command: Vec<String> = if attach {
        Vec::new()
    } else {
        query_values(query, "command").map(str::to_string).collect()
    };
    if !attach && command.is_empty() {
        return Err(StatusError::bad_request(
            "you must specify at least 1 command",
        ));
    }
    let stdin = query_bool(query, "stdin", false)?;
    let stdout = query_bool(query, "stdout", true)?;
    let tty = query_bool(query, "tty", false)?;
    let stderr = query_bool(query, "stderr", true)? && !tty;
    if !stdin && !stdout && !stderr {
        return Err(StatusError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    Ok(ExecRequest {
        namespace: target.namespace.clone(),
        pod: target.name.clone(),
        container: target.container.clone(),
        command,
        stdin,
        stdout,
        stderr,
        tty,
    })
}

/// The kubelet only execs in a running container (`container not found ("x")` otherwise).
/// A pod whose status does not list the container yet counts as running when its phase is.
fn ensure_running(target: &PodTarget<'_>) -> Result<(), StatusError> {
    let running = match target.container_status() {
        Some(status) => status["state"]["running"].is_object(),
        None => target.pod["status"]["phase"].as_str() == Some("Running"),
    };
    if running {
        Ok(())
    } else {
        Err(StatusError::bad_request(format!(
            "container not found (\"{}\")",
            target.container
        )))
    }
}

fn not_websocket(headers: &http::HeaderMap) -> StatusError {
    let upgrade = headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if upgrade.is_empty() {
        StatusError::bad_request("Upgrade request required")
    } else {
        StatusError::bad_request(format!(
            "this API server streams exec and attach over WebSocket only, not {upgrade}: \
             use kubectl 1.30 or newer (or kubectl 1.29 with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true)"
        ))
    }
}

/// Runs one upgraded session to its end: `attached` for an attach (joined before the
/// upgrade), otherwise the command is started now. Everything lives in this one task: when
/// the client goes away the `select!` drops the output side and the node's session (closing
/// the process's stdin), so nothing outlives the connection.
async fn run_session(
    socket: WebSocket,
    node: Arc<dyn NodeConnection>,
    request: ExecRequest,
    attached: Option<ExecSession>,
) {
    let attach = attached.is_some();
    let command = request.command.clone();
    let wants = (request.stdout, request.stderr);
    let (mut sink, source) = socket.split();
    let started = match attached {
        Some(session) => Ok(session),
        None => node.exec(request).await,
    };
    let session = match started {
        Ok(session) => session,
        Err(error) => {
            finish(&mut sink, &failure_status(error)).await;
            return;
        }
    };
    let ExecSession {
        stdin,
        stdout,
        stderr,
        resize,
        exit,
    } = session;
    // kubectl's WebSocket client (1.29 … 1.33, client-go's `wsStreamCreator`) starts its reader
    // goroutine and only then registers its streams; a frame that arrives in between is
    // dropped ("Unknown stream id 1, discarding message"), and the client says nothing that
    // would tell us when the streams exist. An early first frame, such as attach's output
    // written before it, can hit that window when the machine is loaded (1 kubectl run in
    // about 700 did). So the first frame waits until the client has answered a ping (its
    // reader runs), and then until CLIENT_SETTLE has passed: a client-side race no server
    // signal can close, made negligible. Later frames go at once.
    let (client_ready, ready) = oneshot::channel();
    if sink
        .send(Message::Ping(Bytes::from_static(b"k8s-labs")))
        .await
        .is_err()
    {
        return;
    }
    let output = send_output(
        &mut sink,
        ready,
        (stdout, stderr),
        wants,
        exit,
        (&command, attach),
    );
    tokio::select! {
        () = output => {}
        () = read_client(source, stdin, resize, client_ready) => {}
    }
}

/// The Status a failed start of the session ends with.
fn failure_status(error: k8s_labs_node_api::NodeError) -> Value {
    let status = StatusError::from_node(error);
    json!({
        "metadata": {},
        "status": "Failure",
        "message": status.message,
        "reason": status.reason,
        "code": status.code,
    })
}

/// The process's output to the client, once `ready` says the client reads (the first frame
/// after [`CLIENT_SETTLE`] more), then its exit status as the closing frame.
async fn send_output(
    sink: &mut SplitSink<WebSocket, Message>,
    ready: oneshot::Receiver<()>,
    (stdout, stderr): (Option<mpsc::Receiver<Bytes>>, Option<mpsc::Receiver<Bytes>>),
    wants: (bool, bool),
    exit: oneshot::Receiver<ExitStatus>,
    (command, attach): (&[String], bool),
) {
    let _ = ready.await;
    let settled = tokio::time::Instant::now() + CLIENT_SETTLE;
    let mut first = true;
    let mut outputs = stream::select(
        labelled(stdout, STREAM_STDOUT, wants.0),
        labelled(stderr, STREAM_STDERR, wants.1),
    );
    while let Some((stream_id, chunk)) = outputs.next().await {
        if let Some(chunk) = chunk {
            if first {
                first = false;
                tokio::time::sleep_until(settled).await;
            }
            if sink.send(frame(stream_id, &chunk)).await.is_err() {
                return;
            }
        }
    }
    let status = match exit.await {
        Ok(status) => exit_status(status, command, attach),
        Err(_) => exit_status(
            ExitStatus::Error("the node agent lost the process".to_string()),
            command,
            attach,
        ),
    };
    finish(sink, &status).await;
}

/// A node output stream as `(stream id, Some(bytes))` items; `None` items for a stream the
/// client did not ask for, so it is still drained (the process never blocks on it).
fn labelled(
    receiver: Option<mpsc::Receiver<Bytes>>,
    stream_id: u8,
    wanted: bool,
) -> BoxStream<'static, (u8, Option<Bytes>)> {
    match receiver {
        Some(mut receiver) => stream::poll_fn(move |cx| receiver.poll_recv(cx))
            .map(move |chunk| (stream_id, wanted.then_some(chunk)))
            .boxed(),
        None => stream::empty().boxed(),
    }
}

fn frame(stream_id: u8, data: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(stream_id);
    bytes.extend_from_slice(data);
    Message::Binary(Bytes::from(bytes))
}

/// Sends the final `Status` on the error stream, then closes normally: client-go only sees the
/// end of stdout, stderr and the error stream on a normal close.
async fn finish(sink: &mut SplitSink<WebSocket, Message>, status: &Value) {
    let body = status.to_string();
    if sink
        .send(frame(STREAM_ERROR, body.as_bytes()))
        .await
        .is_err()
    {
        return;
    }
    let close = CloseFrame {
        code: close_code::NORMAL,
        reason: "".into(),
    };
    let _ = sink.send(Message::Close(Some(close))).await;
    let _ = sink.close().await;
}

/// The `Status` the kubelet writes on the error stream when the process ends.
fn exit_status(status: ExitStatus, command: &[String], attach: bool) -> Value {
    match status {
        // The end of an attach is the container ending, whatever its exit code.
        ExitStatus::Code(0) => json!({"metadata": {}, "status": "Success"}),
        ExitStatus::Code(_) if attach => json!({"metadata": {}, "status": "Success"}),
        ExitStatus::Code(code) if (1..=255).contains(&code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                command.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        ExitStatus::Code(code) => internal_error(
            format!(
                "command [{}] ended with exit status {code}",
                command.join(" ")
            ),
            attach,
        ),
        ExitStatus::Error(message) => internal_error(message, attach),
    }
}

fn internal_error(message: String, attach: bool) -> Value {
    let message = if attach {
        format!("error attaching to container: {message}")
    } else {
        format!("error executing command in container: {message}")
    };
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {message}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    })
}

/// Reads the client's messages until it goes away: stdin data, the v5 stdin close signal and
/// terminal resizes; `ready` is told at the first message (the pong of the first ping, or
/// anything else). Returns when the connection ends (close, error or drop).
async fn read_client(
    mut source: SplitStream<WebSocket>,
    mut stdin: Option<mpsc::Sender<Bytes>>,
    resize: Option<mpsc::Sender<TerminalSize>>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    while let Some(Ok(message)) = source.next().await {
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        let data = match message {
            Message::Binary(data) => data,
            Message::Close(_) => return,
            _ => continue,
        };
        match data.first().copied() {
            Some(STREAM_STDIN) if data.len() > 1 => {
                if let Some(sender) = &stdin
                    && sender.send(data.slice(1..)).await.is_err()
                {
                    stdin = None;
                }
            }
            Some(STREAM_CLOSE) if data.get(1) == Some(&STREAM_STDIN) => stdin = None,
            Some(STREAM_RESIZE) => {
                if let (Some(sender), Ok(size)) =
                    (&resize, serde_json::from_slice::<TerminalSize>(&data[1..]))
                {
                    let _ = sender.try_send(size);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> Vec<String> {
        vec!["sh".into(), "-c".into(), "exit 3".into()]
    }

    #[test]
    fn success_is_a_bare_success_status() {
        assert_eq!(
            exit_status(ExitStatus::Code(0), &command(), false),
            json!({"metadata": {}, "status": "Success"})
        );
    }

    #[test]
    fn a_non_zero_exit_carries_the_code_as_client_go_parses_it() {
        let status = exit_status(ExitStatus::Code(3), &command(), false);
        assert_eq!(
            status,
            json!({
                "metadata": {},
                "status": "Failure",
                "message": "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
            })
        );
    }

    #[test]
    fn attach_ends_in_success_whatever_the_exit_code() {
        let status = exit_status(ExitStatus::Code(1), &[], true);
        assert_eq!(status["status"], "Success");
    }

    #[test]
    fn a_failed_start_is_an_internal_error() {
        let status = exit_status(ExitStatus::Error("no such file".into()), &command(), false);
        assert_eq!(status["reason"], "InternalError");
        assert_eq!(
            status["message"],
            "Internal error occurred: error executing command in container: no such file"
        );
    }

    #[test]
    fn tty_merges_stderr_and_stdout_stderr_default_to_true() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
        let target = PodTarget::resolve(&pod, None).unwrap();
        let query = vec![
            ("command".to_string(), "sh".to_string()),
            ("command".into(), "-i".into()),
            ("stdin".into(), "true".into()),
            ("tty".into(), "true".into()),
        ];
        let request = exec_request(&target, &query, false).unwrap();
        assert_eq!(request.command, ["sh", "-i"]);
        assert!(request.stdin && request.stdout && request.tty && !request.stderr);
    }
}
