//! Whether a container was killed by the kernel's OOM killer, found the way containerd finds
//! it: on cgroup v1 an eventfd registered on the container's `memory.oom_control` (the kernel
//! signals it when the cgroup runs out of memory, before it kills), on cgroup v2 the
//! `oom_kill` count of `memory.events`.
//!
//! The watch is on the node's own cgroup of the container attempt, not on runc's: runc removes
//! its cgroup when the container ends, before anyone could look at it.

use std::fs::File;
use std::io::Read as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Watches one cgroup for OOM kills.
#[derive(Debug)]
pub enum OomWatch {
    V1 {
        eventfd: File,
        /// Kept open while registered, as the kernel requires.
        _oom_control: File,
    },
    V2 {
        events: PathBuf,
    },
}

impl OomWatch {
    /// Registers an eventfd for OOM notifications of the v1 memory cgroup `dir`.
    pub fn v1(dir: &Path) -> Result<OomWatch> {
        // SAFETY: eventfd has no memory-safety preconditions; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("creating an eventfd");
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let eventfd = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let oom_control = File::open(dir.join("memory.oom_control"))
            .with_context(|| format!("opening {}/memory.oom_control", dir.display()))?;
        let registration = format!("{} {}", eventfd.as_raw_fd(), oom_control.as_raw_fd());
        std::fs::write(dir.join("cgroup.event_control"), registration)
            .with_context(|| format!("registering for OOM events of {}", dir.display()))?;
        Ok(OomWatch::V1 {
            eventfd,
            _oom_control: oom_control,
        })
    }

    /// Reads the OOM kills of the v2 cgroup `dir` from its `memory.events`.
    pub fn v2(dir: &Path) -> OomWatch {
        OomWatch::V2 {
            events: dir.join("memory.events"),
        }
    }

    /// Whether the cgroup has run out of memory since the watch began. Called once the
    /// container has ended (and before its cgroup is removed, which on v1 signals the eventfd
    /// too).
    pub fn fired(&mut self) -> bool {
        match self {
            OomWatch::V1 { eventfd, .. } => {
                let mut count = [0u8; 8];
                matches!(eventfd.read(&mut count), Ok(8) if u64::from_ne_bytes(count) > 0)
            }
            OomWatch::V2 { events } => std::fs::read_to_string(events)
                .ok()
                .and_then(|text| oom_kills(&text))
                .is_some_and(|kills| kills > 0),
        }
    }
}

/// The `oom_kill` count of a v2 `memory.events` file.
fn oom_kills(events: &str) -> Option<u64> {
    events.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == "oom_kill").then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_oom_kills_from_memory_events() {
        let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(oom_kills(events), Some(1));
        assert_eq!(oom_kills("low 0\n"), None);
    }
}
