//! A running container's stdio as the node keeps it: the output copied to the container's log
//! file and to attached clients, and the stdin that attach writes to. Without a tty these are
//! runc's pipes; with `tty: true` they are one pty master (see [`crate::terminal`]).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;
use tokio::sync::{Mutex, broadcast};

use crate::terminal::{ProcessHandle, TerminalMaster};

/// Which output stream bytes came from (a tty container has only stdout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// The stdin of a container with `stdin: true`, shared by its attach sessions.
#[derive(Debug, Clone)]
pub enum ContainerInput {
    /// The write end of runc's stdin pipe; `None` once closed.
    Pipe(Arc<Mutex<Option<ChildStdin>>>),
    /// The container's terminal: input is typed into it.
    Terminal(Arc<TerminalInput>),
}

/// Input to a tty container: our pty's master, and the container's process, whose terminal
/// is hung up when stdin closes.
#[derive(Debug)]
pub struct TerminalInput {
    master: TerminalMaster,
    process: Option<ProcessHandle>,
    closed: Mutex<bool>,
}

impl ContainerInput {
    pub fn pipe(stdin: ChildStdin) -> ContainerInput {
        ContainerInput::Pipe(Arc::new(Mutex::new(Some(stdin))))
    }

    /// `process` is the container's main process (`None` if it already ended).
    pub fn terminal(master: TerminalMaster, process: Option<ProcessHandle>) -> ContainerInput {
        ContainerInput::Terminal(Arc::new(TerminalInput {
            master,
            process,
            closed: Mutex::new(false),
        }))
    }

    /// Writes to the container's stdin; fails once it is closed.
    pub async fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            ContainerInput::Pipe(pipe) => {
                let mut guard = pipe.lock().await;
                let Some(writer) = guard.as_mut() else {
                    return Err(closed());
                };
                writer.write_all(bytes).await?;
                writer.flush().await
            }
            ContainerInput::Terminal(terminal) => {
                if *terminal.closed.lock().await {
                    return Err(closed());
                }
                terminal.master.write_all(bytes).await
            }
        }
    }

    /// Closes the container's stdin for good (`stdinOnce`): the pipe's end of file, or a
    /// hangup of the container's terminal, which its readers see as end of file.
    pub async fn close(&self) {
        match self {
            ContainerInput::Pipe(pipe) => {
                pipe.lock().await.take();
            }
            ContainerInput::Terminal(terminal) => {
                let mut closed = terminal.closed.lock().await;
                if *closed {
                    return;
                }
                *closed = true;
                if let Some(process) = &terminal.process
                    && let Err(error) = process.hang_up_stdin_terminal()
                {
                    tracing::warn!("hanging up a container's terminal: {error}");
                }
            }
        }
    }
}

fn closed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "the container's stdin is closed",
    )
}

/// Where a container's output goes: its log file and the attached clients.
pub struct OutputSink {
    log: Option<tokio::fs::File>,
    log_path: PathBuf,
    which: OutputStream,
    output: broadcast::Sender<(OutputStream, Bytes)>,
}

impl OutputSink {
    pub async fn open(
        log_path: PathBuf,
        which: OutputStream,
        output: broadcast::Sender<(OutputStream, Bytes)>,
    ) -> OutputSink {
        let log = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .await;
        let log = match log {
            Ok(log) => Some(log),
            Err(error) => {
                tracing::warn!("opening {}: {error}", log_path.display());
                None
            }
        };
        OutputSink {
            log,
            log_path,
            which,
            output,
        }
    }

    async fn send(&mut self, chunk: Bytes) {
        if let Some(file) = self.log.as_mut()
            && let Err(error) = file.write_all(&chunk).await
        {
            tracing::warn!("writing {}: {error}", self.log_path.display());
            self.log = None;
        }
        let _ = self.output.send((self.which, chunk));
    }
}

/// Copies one output pipe of the container to its sink until end of file.
pub async fn pump_pipe(stream: Option<impl AsyncRead + Unpin>, mut sink: OutputSink) {
    let Some(mut stream) = stream else { return };
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        sink.send(Bytes::copy_from_slice(&buffer[..read])).await;
    }
}

/// Copies what a tty container writes on its terminal to the sink, until runc (the last holder
/// of the terminal's slave) has exited.
pub async fn pump_terminal(master: TerminalMaster, mut sink: OutputSink) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match master.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        sink.send(Bytes::copy_from_slice(&buffer[..read])).await;
    }
}
