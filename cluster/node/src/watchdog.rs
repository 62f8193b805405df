//! Containers die with the cluster's process, even when it is killed with SIGKILL and runs no
//! cleanup of its own. A small watchdog process (`sh`), started with the node agent, blocks
//! reading a pipe whose only writer is the agent's process. When that process ends, however it
//! ends, the kernel closes the pipe, the read returns, and the watchdog kills every container
//! of this node's runc root (killing a container's init ends everything in its PID
//! namespace). An orderly stop tells it `stop` instead, after the agent has removed its
//! containers itself.

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, Result};

/// The watchdog's script: `$1` is the runc root.
const SCRIPT: &str = r#"read -r word
[ "$word" = stop ] && exit 0
for id in $(runc --root "$1" list -q); do runc --root "$1" kill "$id" KILL; done
"#;

/// The running watchdog; [`Watchdog::stop`] ends it without killing anything.
#[derive(Debug)]
pub struct Watchdog {
    child: Child,
    /// The pipe's write end: held by this process only (the standard library opens it
    /// close-on-exec, so no other child inherits it).
    pipe: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts the watchdog for the containers under `runc_root`.
    pub fn start(runc_root: &Path) -> Result<Watchdog> {
        let mut child = Command::new("sh")
            .args(["-c", SCRIPT, "k8s-labs-watchdog"])
            .arg(runc_root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: Ctrl-C in a terminal must not end it before the
            // cluster's orderly stop does.
            .process_group(0)
            .spawn()
            .context("starting the container watchdog (sh)")?;
        let pipe = child.stdin.take();
        Ok(Watchdog { child, pipe })
    }

    /// Ends the watchdog, leaving the containers as they are (the caller stopped them).
    pub fn stop(mut self) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.write_all(b"stop\n");
        }
    }
}

/// Dropped without [`Watchdog::stop`] (a node that failed to start, or was dropped without
/// its shutdown): the pipe closes, so the watchdog kills the containers; waiting for it
/// leaves no zombie.
impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.pipe.take());
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_makes_it_kill_and_stop_makes_it_leave() {
        // With no runc root, `runc list` finds nothing: what is checked is how it ends.
        let root = std::env::temp_dir().join(format!("watchdog-{}", std::process::id()));
        let watchdog = Watchdog::start(&root).unwrap();
        watchdog.stop();
        let mut watchdog = Watchdog::start(&root).unwrap();
        drop(watchdog.pipe.take());
        let status = watchdog.child.wait().unwrap();
        // It ran its kill loop (over no containers) and ended normally.
        assert!(status.success(), "{status:?}");
        // runc made its root for `list`.
        let _ = std::fs::remove_dir_all(&root);
    }
}
