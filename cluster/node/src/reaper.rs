//! The node as a child subreaper, as containerd's shim is one: a process that runc starts and
//! leaves (`runc exec --detach`) becomes the node's child when runc exits, instead of the
//! machine's init's, so the node can wait for it and learn its exit status.
//!
//! Only processes of this node's own subtree are reparented to it. Each one the node starts
//! that way it waits for by pidfd (never `waitpid(-1)`, which would take the exit statuses of
//! the children that tokio waits for).

use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use nix::sys::wait::{Id, WaitPidFlag, WaitStatus};
use tokio::io::unix::AsyncFd;

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`), once.
pub fn become_subreaper() -> std::io::Result<()> {
    static DONE: OnceLock<Result<(), i32>> = OnceLock::new();
    let result = DONE
        .get_or_init(|| nix::sys::prctl::set_child_subreaper(true).map_err(|errno| errno as i32));
    result.map_err(std::io::Error::from_raw_os_error)
}

/// A child of this process (one it started, or one reparented to it), held by a pidfd.
#[derive(Debug)]
pub struct ChildProcess {
    pid: i32,
    pidfd: AsyncFd<OwnedFd>,
}

impl ChildProcess {
    /// Holds process `pid`: a zombie too, until it is waited for.
    pub fn open(pid: i32) -> std::io::Result<ChildProcess> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the descriptor was just created and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        // SAFETY: an `OwnedFd` returns the same open descriptor for as long as it lives.
        let pidfd = unsafe { AsyncFd::register(fd) }
            .map_err(|error| std::io::Error::other(format!("registering a pidfd: {error:?}")))?;
        Ok(ChildProcess { pid, pidfd })
    }

    /// The process id, as seen from the node.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits for the process to end and reaps it: its exit code, or 128 + the signal that
    /// ended it (as runc and the kubelet report it). Fails when it is not this process's
    /// child.
    pub async fn wait(&self) -> std::io::Result<i32> {
        loop {
            // A pidfd is readable once its process has ended.
            let mut guard = self.pidfd.readable().await?;
            let fd = self.pidfd.get_ref().as_fd();
            match nix::sys::wait::waitid(Id::PIDFd(fd), WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG)
            {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
                Ok(_) => guard.clear_ready(),
                Err(errno) => return Err(std::io::Error::from(errno)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_left_by_its_parent_is_reaped_with_its_exit_code() {
        become_subreaper().unwrap();
        // sh starts a grandchild that outlives it; the grandchild is reparented to us.
        let output = std::process::Command::new("sh")
            .args(["-c", "(sleep 0.2; exit 7) >/dev/null 2>&1 & echo $!"])
            .output()
            .unwrap();
        let pid: i32 = String::from_utf8(output.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let child = ChildProcess::open(pid).unwrap();
        assert_eq!(child.wait().await.unwrap(), 7);
        // Reaped: the pid names no process of ours any more.
        assert!(ChildProcess::open(pid).is_err());
    }
}
