//! Terminals for `tty: true`: containers (`kubectl run -i --tty`) and exec sessions
//! (`kubectl exec -it`).
//!
//! runc, run in the foreground with `process.terminal`, makes the container's pty itself and
//! relays between it and runc's own terminal, which must be its stdin. That terminal is a pty
//! of ours: the node keeps its master, reads the container's output from it (for attach and
//! the log), writes attach input to it, and resizes it. runc is the session leader of that
//! pty, so a resize sends it SIGWINCH and runc copies the new size to the container's pty.
//!
//! Closing the stdin of a tty container (`stdinOnce`) is a hangup of the container's terminal,
//! as when containerd closes the console: the programs reading it get end of file.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use k8s_labs_node_api::TerminalSize;
use nix::fcntl::OFlag;
use tokio::io::unix::AsyncFd;

/// The master side of one of our ptys; clones share it. Reads and writes never block a thread.
#[derive(Clone)]
pub struct TerminalMaster(Arc<AsyncFd<OwnedFd>>);

impl std::fmt::Debug for TerminalMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TerminalMaster({})", self.0.get_ref().as_raw_fd())
    }
}

/// Opens a pty in raw mode: the master (non-blocking, for us) and the slave (for the child).
/// Both are close-on-exec, so no other child of this process inherits them by accident
/// (a leaked slave would keep the master from ever seeing the end of the session).
pub fn open_terminal() -> std::io::Result<(TerminalMaster, OwnedFd)> {
    let master = nix::pty::posix_openpt(
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
    )?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let slave_path = nix::pty::ptsname_r(&master)?;
    let slave: OwnedFd = nix::fcntl::open(
        slave_path.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // Raw from the start: runc makes its terminal raw itself, but only once it runs; input
    // that arrived before (a Ctrl-D right after the start) would otherwise be taken by this
    // pty's line discipline instead of reaching the container's terminal.
    let mut attributes = nix::sys::termios::tcgetattr(&slave)?;
    nix::sys::termios::cfmakeraw(&mut attributes);
    nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, &attributes)?;
    // SAFETY: `into_raw_fd` hands over the descriptor, which nothing else owns.
    let master = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(master)) };
    // SAFETY: an `OwnedFd` returns the same open descriptor for as long as it lives.
    let master = unsafe { AsyncFd::register(master) }
        .map_err(|error| std::io::Error::other(format!("registering a pty: {error:?}")))?;
    Ok((TerminalMaster(Arc::new(master)), slave))
}

/// Makes `slave` the child's stdin, stdout, stderr and controlling terminal, in a session of
/// its own (so out of our process group, and the receiver of SIGWINCH on a resize). The
/// command holds copies of the slave until it is dropped: drop it once the child runs.
pub fn run_on_terminal(
    command: &mut tokio::process::Command,
    slave: &OwnedFd,
) -> std::io::Result<()> {
    command
        .stdin(slave.try_clone()?)
        .stdout(slave.try_clone()?)
        .stderr(slave.try_clone()?);
    // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

impl TerminalMaster {
    /// Takes over the master of a terminal someone else opened (runc's, sent over a console
    /// socket): made non-blocking, as ours are.
    pub fn from_master(master: OwnedFd) -> std::io::Result<TerminalMaster> {
        let flags = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(flags))?;
        // SAFETY: an `OwnedFd` returns the same open descriptor for as long as it lives.
        let master = unsafe { AsyncFd::register(master) }
            .map_err(|error| std::io::Error::other(format!("registering a pty: {error:?}")))?;
        Ok(TerminalMaster(Arc::new(master)))
    }

    /// Reads what the terminal's programs wrote; `Ok(0)` once every slave is closed (the
    /// kernel's EIO on a pty master whose other side is gone).
    pub async fn read(&self, buffer: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut guard = self.0.readable().await?;
            match guard.try_io(|fd| Ok(nix::unistd::read(fd.get_ref(), buffer)?)) {
                Ok(Ok(read)) => return Ok(read),
                Ok(Err(error)) if error.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => continue,
            }
        }
    }

    /// Types `bytes` into the terminal.
    pub async fn write_all(&self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let mut guard = self.0.writable().await?;
            match guard.try_io(|fd| Ok(nix::unistd::write(fd.get_ref(), bytes)?)) {
                Ok(Ok(written)) => bytes = &bytes[written..],
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Sets the terminal's size (TIOCSWINSZ); the kernel tells the session leader (SIGWINCH).
    pub fn resize(&self, size: TerminalSize) -> std::io::Result<()> {
        let winsize = libc::winsize {
            ws_row: size.height,
            ws_col: size.width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer; the descriptor is open.
        let result = unsafe {
            libc::ioctl(
                self.0.get_ref().as_fd().as_raw_fd(),
                libc::TIOCSWINSZ,
                &winsize,
            )
        };
        if result == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

/// A process, held by a pidfd: signals and descriptor lookups reach this process even if its
/// pid is reused after it ends.
#[derive(Debug)]
pub struct ProcessHandle(OwnedFd);

impl ProcessHandle {
    /// `pidfd_open(pid)`; fails when the process is gone.
    pub fn open(pid: i32) -> std::io::Result<ProcessHandle> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the descriptor was just created and is owned by nothing else.
        Ok(ProcessHandle(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    /// Hangs up the terminal that is the process's stdin (TIOCVHANGUP on it, what closing a
    /// pty's master does): its readers get end of file, its session SIGHUP. Nothing happens
    /// when the process has ended or its stdin is not a terminal.
    pub fn hang_up_stdin_terminal(&self) -> std::io::Result<()> {
        // SAFETY: pidfd_getfd takes a pidfd, a descriptor number and flags; returns a new
        // descriptor (a duplicate of the process's stdin) or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, self.0.as_raw_fd(), 0, 0) };
        if fd < 0 {
            let error = std::io::Error::last_os_error();
            return match error.raw_os_error() {
                Some(libc::ESRCH) | Some(libc::EBADF) => Ok(()),
                _ => Err(error),
            };
        }
        // SAFETY: the descriptor was just created and is owned by nothing else.
        let stdin = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        // SAFETY: TIOCVHANGUP takes no argument; the descriptor is open.
        let result = unsafe { libc::ioctl(stdin.as_raw_fd(), libc::TIOCVHANGUP, 0) };
        if result == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::ENOTTY) | Some(libc::EINVAL) => Ok(()),
            _ => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_on_the_terminal_sees_a_tty_of_the_size_set() {
        let (master, slave) = open_terminal().unwrap();
        master
            .resize(TerminalSize {
                width: 101,
                height: 33,
            })
            .unwrap();
        let mut command = tokio::process::Command::new("sh");
        command.args(["-c", "stty size; tty -s && echo on-a-tty"]);
        run_on_terminal(&mut command, &slave).unwrap();
        let mut child = command.spawn().unwrap();
        // The command keeps the slave's copies for the child's stdio until dropped.
        drop(command);
        drop(slave);
        let mut output = Vec::new();
        let mut buffer = [0u8; 1024];
        loop {
            let read = master.read(&mut buffer).await.unwrap();
            if read == 0 {
                break;
            }
            output.extend_from_slice(&buffer[..read]);
        }
        assert!(child.wait().await.unwrap().success());
        // Raw mode: no "\r\n" translation of the child's newlines.
        assert_eq!(String::from_utf8_lossy(&output), "33 101\non-a-tty\n");
    }
}
