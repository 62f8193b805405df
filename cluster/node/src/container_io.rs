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

/// One chunk of a container's output, with the stream it came from.
pub type OutputChunk = (OutputStream, Bytes);

/// How much output a container may write before its first attach and still have it delivered
/// to that attach (beyond it, the oldest is dropped; the log keeps everything).
const KEPT_FOR_FIRST_ATTACH: usize = 1024 * 1024;

/// A running container's output as attach sessions receive it: the live output, and for a
/// container started for `kubectl run -i` (`stdin: true, stdinOnce: true`, no tty) also what
/// it wrote before its first attach, handed to that session ahead of the live output, with
/// nothing lost or repeated in between. Without it a short command such as `nslookup` can
/// finish its output while kubectl is still connecting, and the student sees nothing.
///
/// A tty container is left out on purpose: what a terminal program wrote before anyone was
/// attached includes queries to the terminal (busybox's cursor position request), which a
/// replay would have the new terminal answer late, into the program's input.
#[derive(Debug, Clone)]
pub struct ContainerOutput(Arc<OutputShared>);

#[derive(Debug)]
struct OutputShared {
    live: broadcast::Sender<OutputChunk>,
    /// `Some` until the first attach takes it.
    before_first_attach: std::sync::Mutex<Option<KeptOutput>>,
}

#[derive(Debug, Default)]
struct KeptOutput {
    chunks: std::collections::VecDeque<OutputChunk>,
    bytes: usize,
}

impl ContainerOutput {
    /// `keep_for_first_attach`: keep what is written until the first attach takes it.
    pub fn new(keep_for_first_attach: bool) -> ContainerOutput {
        let (live, _) = broadcast::channel(256);
        ContainerOutput(Arc::new(OutputShared {
            live,
            before_first_attach: std::sync::Mutex::new(
                keep_for_first_attach.then(KeptOutput::default),
            ),
        }))
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Option<KeptOutput>> {
        self.0
            .before_first_attach
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands a chunk to the attached sessions (and keeps it for the first one, if any).
    fn publish(&self, chunk: OutputChunk) {
        // Under the lock, so that a chunk is either kept or reaches a subscription made by
        // `attach`, never both and never neither.
        let mut kept = self.kept();
        if let Some(kept) = kept.as_mut() {
            kept.bytes += chunk.1.len();
            kept.chunks.push_back(chunk.clone());
            while kept.bytes > KEPT_FOR_FIRST_ATTACH {
                match kept.chunks.pop_front() {
                    Some((_, dropped)) => kept.bytes -= dropped.len(),
                    None => break,
                }
            }
        }
        let _ = self.0.live.send(chunk);
    }

    /// Joins the output: what was kept for the first attach (empty for any later one, and for
    /// containers that keep nothing), then every chunk written from now on.
    pub fn attach(&self) -> (Vec<OutputChunk>, broadcast::Receiver<OutputChunk>) {
        let mut kept = self.kept();
        let earlier = kept
            .take()
            .map(|kept| kept.chunks.into())
            .unwrap_or_default();
        (earlier, self.0.live.subscribe())
    }
}

/// Where a container's output goes: its log file and the attached clients.
pub struct OutputSink {
    log: Option<tokio::fs::File>,
    log_path: PathBuf,
    which: OutputStream,
    output: ContainerOutput,
}

impl OutputSink {
    pub async fn open(
        log_path: PathBuf,
        which: OutputStream,
        output: ContainerOutput,
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
        self.output.publish((self.which, chunk));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &'static str) -> OutputChunk {
        (OutputStream::Stdout, Bytes::from_static(text.as_bytes()))
    }

    fn texts(chunks: &[OutputChunk]) -> Vec<&[u8]> {
        chunks.iter().map(|(_, bytes)| bytes.as_ref()).collect()
    }

    #[test]
    fn the_first_attach_gets_what_came_before_then_the_live_output() {
        let output = ContainerOutput::new(true);
        output.publish(chunk("early\n"));
        let (earlier, mut live) = output.attach();
        assert_eq!(texts(&earlier), [b"early\n"]);
        output.publish(chunk("late\n"));
        assert_eq!(live.try_recv().unwrap(), chunk("late\n"));
        assert!(live.try_recv().is_err(), "nothing twice");
        // A second attach gets only what comes from then on.
        let (earlier, _live) = output.attach();
        assert!(earlier.is_empty());
    }

    #[test]
    fn without_stdin_once_an_attach_gets_only_live_output() {
        let output = ContainerOutput::new(false);
        output.publish(chunk("early\n"));
        let (earlier, mut live) = output.attach();
        assert!(earlier.is_empty());
        assert!(live.try_recv().is_err());
    }

    #[test]
    fn what_is_kept_for_the_first_attach_is_bounded_keeping_the_newest() {
        let output = ContainerOutput::new(true);
        let big = Bytes::from(vec![b'x'; KEPT_FOR_FIRST_ATTACH / 2 + 1]);
        output.publish((OutputStream::Stdout, big.clone()));
        output.publish((OutputStream::Stderr, big.clone()));
        output.publish(chunk("last\n"));
        let (earlier, _live) = output.attach();
        let kept: usize = earlier.iter().map(|(_, bytes)| bytes.len()).sum();
        assert!(kept <= KEPT_FOR_FIRST_ATTACH, "{kept}");
        assert_eq!(earlier.last(), Some(&chunk("last\n")));
        assert_eq!(earlier[0].0, OutputStream::Stderr);
    }
}
