//! `attach`: a client joins the main process of a container, as the kubelet's attach does
//! through the CRI runtime. Output is the container's live output (what it writes from the
//! moment of the attach call on; the log has the rest), preceded, for the first attach to a
//! `kubectl run -i` container, by what it wrote before (see
//! [`crate::container_io::ContainerOutput`]). Input goes to the container's stdin, which
//! `stdinOnce` closes when the first attached client leaves. With a tty, the client's
//! terminal size is the container terminal's.

use bytes::Bytes;
use k8s_labs_node_api::{ExecRequest, ExecSession, ExitStatus, TerminalSize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::container_io::OutputChunk;
use crate::containers::{ContainerRecord, OutputStream};

/// Attaches to the main process of `record`'s container.
pub(crate) fn attach(record: ContainerRecord, request: &ExecRequest) -> ExecSession {
    let (stdout_tx, stdout_rx) = output_channel(request.stdout);
    let (stderr_tx, stderr_rx) = output_channel(request.stderr);
    let (exit_tx, exit_rx) = oneshot::channel();
    // Joined here, not in the task: output written after this call reaches the session.
    let output = record.output.attach();
    tokio::spawn(forward_output(
        record.clone(),
        output,
        stdout_tx,
        stderr_tx,
        exit_tx,
    ));
    let stdin = match (&record.stdin, request.stdin) {
        (Some(input), true) => {
            let (tx, mut rx) = mpsc::channel::<Bytes>(16);
            let input = input.clone();
            let stdin_once = record.stdin_once;
            tokio::spawn(async move {
                while let Some(bytes) = rx.recv().await {
                    if input.write(&bytes).await.is_err() {
                        break;
                    }
                }
                if stdin_once {
                    // stdinOnce: the first client to detach closes the container's stdin.
                    input.close().await;
                }
            });
            Some(tx)
        }
        _ => None,
    };
    let resize = record.terminal.clone().map(|master| {
        let (tx, mut rx) = mpsc::channel::<TerminalSize>(4);
        tokio::spawn(async move {
            while let Some(size) = rx.recv().await {
                // A container that has ended has no terminal to resize any more.
                let _ = master.resize(size);
            }
        });
        tx
    });
    ExecSession {
        stdin,
        stdout: stdout_rx,
        stderr: stderr_rx,
        resize,
        exit: exit_rx,
    }
}

/// A channel for one output stream of a session, or none when the client did not ask for it.
pub(crate) fn output_channel(
    wanted: bool,
) -> (Option<mpsc::Sender<Bytes>>, Option<mpsc::Receiver<Bytes>>) {
    if wanted {
        let (tx, rx) = mpsc::channel(64);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    }
}

/// Forwards the container's live output to the session until the container ends (then
/// reports its exit) or the client has gone away.
async fn forward_output(
    record: ContainerRecord,
    (earlier, mut output): (Vec<OutputChunk>, broadcast::Receiver<OutputChunk>),
    stdout: Option<mpsc::Sender<Bytes>>,
    stderr: Option<mpsc::Sender<Bytes>>,
    exit_tx: oneshot::Sender<ExitStatus>,
) {
    let mut exit = record.exit.clone();
    let send = async |(stream, bytes): OutputChunk| -> bool {
        let sender = match stream {
            OutputStream::Stdout => &stdout,
            OutputStream::Stderr => &stderr,
        };
        match sender {
            Some(sender) => sender.send(bytes).await.is_ok(),
            None => true,
        }
    };
    for chunk in earlier {
        if !send(chunk).await {
            return;
        }
    }
    loop {
        tokio::select! {
            item = output.recv() => match item {
                Ok(item) => {
                    if !send(item).await {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
            changed = exit.changed() => {
                if changed.is_err() || exit.borrow().is_some() {
                    // The output was all broadcast before the exit was; drain it.
                    while let Ok(item) = output.try_recv() {
                        if !send(item).await {
                            return;
                        }
                    }
                    break;
                }
            }
        }
    }
    let status = match exit.borrow().as_ref() {
        Some(info) => ExitStatus::Code(info.exit_code),
        None => ExitStatus::Error("the container's output ended".to_string()),
    };
    let _ = exit_tx.send(status);
}
