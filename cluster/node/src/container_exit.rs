//! How a container's process ended, as runc and the kernel tell it.

/// How a container's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// The exit code, or 128 + signal number when killed by a signal (as runc reports it).
    pub exit_code: i32,
    pub finished_at: jiff::Timestamp,
    /// Killed by the kernel's OOM killer (the container's memory limit, or the machine's).
    pub oom_killed: bool,
}
