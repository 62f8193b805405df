//! `kubectl exec -it`: a process on a terminal of its own in the container, started as
//! containerd's shim starts one: `runc exec --detach --tty --console-socket`. runc makes the
//! terminal inside the container and hands its master to the node over a unix socket; the
//! node relays the bytes as they are, resizes that terminal itself, and waits for the process
//! (reparented to the node when runc exits, see [`crate::reaper`]).
//!
//! Not foreground `runc exec --tty`: runc 1.1 then relays through a terminal of its own and
//! clears `onlcr` on the container's terminal after the process may already have started
//! (opencontainers/runc#2425). A shell that saved its terminal's settings before that restores
//! `onlcr` for its commands, and their lines reached the client as `\r\r\n` now and then. With
//! the console socket nobody touches the container's terminal: the kernel's defaults apply
//! (`\n` goes out as `\r\n`), as on a real node.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use k8s_labs_node_api::{ExecRequest, ExecSession, ExitStatus, NodeError, TerminalSize};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use tokio::io::Interest;
use tokio::net::UnixListener;
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};

use crate::attach::output_channel;
use crate::reaper::{ChildProcess, become_subreaper};
use crate::runtime::Runc;
use crate::terminal::{ProcessHandle, TerminalMaster};

/// A unix socket path may be 107 bytes long at most (`sun_path`).
const MAX_SOCKET_PATH: usize = 107;

/// Starts `request`'s command in container `runc_id` on a terminal of its own and returns its
/// session at once (the API server reads the client's stream, and so answers its pings, only
/// from then on). `scratch` is a directory of the node's own (never one a pod can see) for
/// the console socket and runc's pid file. A command runc cannot start ends the session with
/// runc's error as the terminal's output and runc's exit code, as foreground
/// `runc exec --tty` showed it.
pub fn exec_on_console(
    runc: &Runc,
    scratch: &Path,
    runc_id: &str,
    request: &ExecRequest,
) -> Result<ExecSession, NodeError> {
    let internal =
        |what: &str, error: std::io::Error| NodeError::Internal(format!("{what}: {error}"));
    become_subreaper().map_err(|error| internal("becoming a child subreaper", error))?;
    let dir = ExecDir::create(scratch).map_err(|error| internal("preparing an exec", error))?;
    let listener = UnixListener::bind(&dir.socket)
        .map_err(|error| internal("listening for runc's console", error))?;
    let socket = dir.socket.to_string_lossy().into_owned();
    let pid_file = dir.pid_file.to_string_lossy().into_owned();
    let mut args = vec![
        "exec",
        "--detach",
        "--tty",
        "--console-socket",
        &socket,
        "--pid-file",
        &pid_file,
        // As containerd's CRI exec does for a tty: the process is told its terminal type.
        "--env",
        "TERM=xterm",
        runc_id,
    ];
    args.extend(request.command.iter().map(String::as_str));
    let mut command = runc.command(&args);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let runc_exec = command
        .spawn()
        .map_err(|error| internal("running runc exec", error))?;
    let (stdout_tx, stdout_rx) = output_channel(request.stdout);
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let (resize_tx, resize_rx) = mpsc::channel::<TerminalSize>(4);
    let (exit_tx, exit_rx) = oneshot::channel();
    tokio::spawn(async move {
        let streams = Streams {
            stdout: stdout_tx,
            stdin: stdin_rx,
            resize: resize_rx,
        };
        let status = match start(dir, listener, runc_exec).await {
            Ok(Started::Running(master, process)) => relay(master, process, streams).await,
            Ok(Started::Refused(output)) => {
                if let Some(stdout) = &streams.stdout {
                    let message = String::from_utf8_lossy(&output.stderr).replace('\n', "\r\n");
                    let _ = stdout.send(Bytes::from(message)).await;
                }
                ExitStatus::Code(output.status.code().unwrap_or(255))
            }
            Err(message) => ExitStatus::Error(message),
        };
        let _ = exit_tx.send(status);
    });
    Ok(ExecSession {
        stdin: request.stdin.then_some(stdin_tx),
        stdout: stdout_rx,
        stderr: None,
        resize: Some(resize_tx),
        exit: exit_rx,
    })
}

/// The session's side of an exec.
struct Streams {
    stdout: Option<mpsc::Sender<Bytes>>,
    stdin: mpsc::Receiver<Bytes>,
    resize: mpsc::Receiver<TerminalSize>,
}

/// How `runc exec --detach` ended.
enum Started {
    /// The process runs (or has run) on the terminal whose master runc sent.
    Running(TerminalMaster, ChildProcess),
    /// runc could not start it; its output says why.
    Refused(std::process::Output),
}

/// Waits for runc to start the process: the terminal's master and the process, now this
/// process's child (runc has exited).
async fn start(dir: ExecDir, listener: UnixListener, runc_exec: Child) -> Result<Started, String> {
    // runc connects and sends the master before it starts the process, and exits once the
    // process runs; a runc that fails may never connect. The receiving runs in a task of its
    // own and is never dropped half-way once runc has exited: it may have accepted runc's
    // connection already, and the master sent over it would be lost with it.
    let mut receiving = tokio::spawn(async move { receive_console(&listener).await });
    let mut runc_done = tokio::spawn(runc_exec.wait_with_output());
    let (received, output) = tokio::select! {
        received = &mut receiving => (Some(received), (&mut runc_done).await),
        output = &mut runc_done => (None, output),
    };
    let output = output
        .map_err(|error| error.to_string())
        .and_then(|output| output.map_err(|error| error.to_string()))
        .map_err(|error| format!("waiting for runc exec: {error}"))?;
    if !output.status.success() {
        receiving.abort();
        return Ok(Started::Refused(output));
    }
    let received = match received {
        Some(received) => received,
        None => receiving.await,
    };
    let master = received
        .map_err(|error| error.to_string())
        .and_then(|master| master.map_err(|error| error.to_string()))
        .map_err(|error| format!("receiving the exec's console: {error}"))?;
    let pid = std::fs::read_to_string(&dir.pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
        .ok_or("runc exec wrote no pid file")?;
    let process =
        ChildProcess::open(pid).map_err(|error| format!("holding the exec'd process: {error}"))?;
    Ok(Started::Running(master, process))
}

/// The socket and pid file of one exec, removed with it.
struct ExecDir {
    dir: PathBuf,
    socket: PathBuf,
    pid_file: PathBuf,
}

impl ExecDir {
    fn create(scratch: &Path) -> std::io::Result<ExecDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = scratch.join(NEXT.fetch_add(1, Ordering::Relaxed).to_string());
        let socket = dir.join("console.sock");
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(std::io::Error::other(format!(
                "{} is too long for a unix socket; use a shorter state directory",
                socket.display()
            )));
        }
        // A directory left by an earlier cluster process that ended uncleanly.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(ExecDir {
            pid_file: dir.join("pid"),
            socket,
            dir,
        })
    }
}

impl Drop for ExecDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Accepts runc's connection and takes the terminal master it sends (`SCM_RIGHTS`).
async fn receive_console(listener: &UnixListener) -> std::io::Result<TerminalMaster> {
    let (stream, _) = listener.accept().await?;
    let received = stream
        .async_io(Interest::READABLE, || {
            let mut name = [0u8; 4096];
            let mut iov = [std::io::IoSliceMut::new(&mut name)];
            let mut space = nix::cmsg_space!([RawFd; 1]);
            let message = recvmsg::<()>(
                stream.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(std::io::Error::from)?;
            let fds: Vec<RawFd> = message
                .cmsgs()
                .map_err(std::io::Error::from)?
                .filter_map(|cmsg| match cmsg {
                    ControlMessageOwned::ScmRights(fds) => Some(fds),
                    _ => None,
                })
                .flatten()
                .collect();
            Ok(fds)
        })
        .await?;
    // SAFETY: the kernel installed these descriptors for us; nothing else owns them.
    let mut owned = received
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let master = owned
        .next()
        .ok_or_else(|| std::io::Error::other("runc sent no descriptor"))?;
    TerminalMaster::from_master(master)
}

/// Relays between the session and the process's terminal until the process has ended and
/// every holder of its terminal has closed it. When the client goes away first, the terminal
/// hangs up (its session gets SIGHUP), as when containerd closes an exec's console.
async fn relay(master: TerminalMaster, process: ChildProcess, streams: Streams) -> ExitStatus {
    let Streams {
        stdout,
        mut stdin,
        mut resize,
    } = streams;
    let client = stdout.clone();
    let reader = master.clone();
    let stdout_pump = tokio::spawn(async move {
        let mut buffer = vec![0u8; 16 * 1024];
        while let Ok(read @ 1..) = reader.read(&mut buffer).await {
            if let Some(sender) = &stdout {
                // A client that went away stops reading; keep draining until the end.
                let _ = sender.send(Bytes::copy_from_slice(&buffer[..read])).await;
            }
        }
    });
    let writer = master.clone();
    tokio::spawn(async move {
        while let Some(bytes) = stdin.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(size) = resize.recv().await {
            let _ = master.resize(size);
        }
    });
    let client_gone = async move {
        match client {
            Some(client) => client.closed().await,
            None => std::future::pending().await,
        }
    };
    let status = tokio::select! {
        status = process.wait() => status,
        () = client_gone => {
            if let Ok(handle) = ProcessHandle::open(process.pid()) {
                let _ = handle.hang_up_stdin_terminal();
            }
            process.wait().await
        }
    };
    let _ = stdout_pump.await;
    match status {
        Ok(code) => ExitStatus::Code(code),
        Err(error) => ExitStatus::Error(format!("waiting for the exec'd process: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for `runc exec --detach`: opens a terminal, writes to it, sends its master
    /// over the console socket and exits 0, as runc does once the process runs.
    const FAKE_RUNC: &str = "import os, socket, sys\n\
        master, slave = os.openpty()\n\
        os.write(slave, b'hello\\n')\n\
        with open(sys.argv[2], 'w') as pid: pid.write(str(os.getppid()))\n\
        client = socket.socket(socket.AF_UNIX)\n\
        client.connect(sys.argv[1])\n\
        socket.send_fds(client, [b'/dev/pts/0'], [master])\n";

    #[tokio::test]
    async fn the_console_runc_sends_is_taken_also_once_runc_has_exited() {
        let scratch = std::env::temp_dir().join(format!("console-exec-{}", std::process::id()));
        for exited_first in [false, true, false, true] {
            let dir = ExecDir::create(&scratch).unwrap();
            let listener = UnixListener::bind(&dir.socket).unwrap();
            let mut runc = tokio::process::Command::new("python3")
                .args(["-c", FAKE_RUNC])
                .arg(&dir.socket)
                .arg(&dir.pid_file)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            if exited_first {
                // Its connection waits in the listener's backlog.
                assert!(runc.wait().await.unwrap().success());
            }
            // A console lost on the way would leave `start` waiting for a connection forever.
            let started = tokio::time::timeout(std::time::Duration::from_secs(60), async {
                start(dir, listener, runc).await
            });
            let Started::Running(master, process) =
                started.await.expect("the console is taken").unwrap()
            else {
                panic!("the fake runc exits 0");
            };
            assert_eq!(process.pid(), std::process::id() as i32);
            // The terminal's own line discipline: `\n` out as `\r\n`; then the end (the
            // stand-in's side is closed).
            let mut shown = Vec::new();
            let mut buffer = [0u8; 64];
            while let Ok(read @ 1..) = master.read(&mut buffer).await {
                shown.extend_from_slice(&buffer[..read]);
            }
            assert_eq!(shown, b"hello\r\n");
        }
        let _ = std::fs::remove_dir_all(&scratch);
    }
}
