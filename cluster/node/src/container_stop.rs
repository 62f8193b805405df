//! Stopping one container within its grace period, as the kubelet asks a CRI runtime to:
//! SIGTERM, then SIGKILL when the grace period is over.
//!
//! Why more than one `runc kill TERM`: the container's process is the init of its own PID
//! namespace, and the kernel drops (does not queue) a signal sent to a namespace init from
//! outside when that process has no handler for it. A container stopped right after it
//! started — a pod deleted while it was still starting, a namespace deleted right after
//! `kubectl apply` — may not have installed its SIGTERM handler yet (nginx parses its
//! configuration first), or may still be runc's init about to exec it: the SIGTERM is lost and
//! the pod waits out its whole grace period (30 s) for SIGKILL. So the node reads the
//! process's name and caught signals (`/proc/<pid>/status`) before signalling, watches them
//! during the grace period, and sends SIGTERM once more when the process catches SIGTERM but
//! did not when it was sent, or catches it in a program it exec'd since. A process that never
//! catches SIGTERM (`sleep` as PID 1) still waits for SIGKILL, as on a real node; a process
//! that caught the first SIGTERM gets no second one.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::containers::ExitInfo;
use crate::runtime::Runc;

/// The first and the longest interval between two looks at a process that did not catch
/// SIGTERM when it was sent.
const RECHECK_FIRST: Duration = Duration::from_millis(5);
const RECHECK_MAX: Duration = Duration::from_millis(500);
const SIGTERM: u32 = 15;

/// A running container attempt, as much as stopping it needs.
#[derive(Debug, Clone)]
pub struct StopTarget {
    pub runc_id: String,
    /// The container's init process, as seen from the host.
    pub pid: i32,
    /// Becomes `Some` once the process has ended (and its bundle is removed).
    pub exit: watch::Receiver<Option<ExitInfo>>,
}

/// What `/proc/<pid>/status` tells about a process's readiness for SIGTERM.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SignalView {
    /// The program's name (`Name:`); changes on exec.
    name: String,
    catches_term: bool,
}

/// The process's name and whether it has a SIGTERM handler; `None` once it is gone.
fn signal_view(pid: i32) -> Option<SignalView> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .map(str::trim)
    };
    let name = field("Name:")?.to_string();
    let caught = u64::from_str_radix(field("SigCgt:")?, 16).ok()?;
    Some(SignalView {
        name,
        catches_term: caught & (1 << (SIGTERM - 1)) != 0,
    })
}

/// Stops a container: SIGTERM (again when it was lost, see the module docs), SIGKILL after
/// `grace` (at once when `grace` is zero). Returns how it ended, once it has.
pub async fn stop_container(runc: &Runc, target: StopTarget, grace: Duration) -> Option<ExitInfo> {
    let StopTarget {
        runc_id,
        pid,
        mut exit,
    } = target;
    if let Some(ended) = exit.borrow().clone() {
        return Some(ended);
    }
    let deadline = Instant::now() + grace;
    let mut killed = grace.is_zero();
    // The process as it was when the last SIGTERM was sent; `None` once there is nothing left
    // to watch for (SIGTERM resent, SIGKILL sent, process gone).
    let mut sent_against: Option<SignalView> = None;
    let mut recheck = RECHECK_FIRST;
    if killed {
        signal(runc, &runc_id, "KILL").await;
    } else {
        let before = signal_view(pid);
        signal(runc, &runc_id, "TERM").await;
        sent_against = before;
    }
    loop {
        tokio::select! {
            changed = exit.changed() => {
                if changed.is_err() {
                    // The container's follower is gone: nothing will ever report its end.
                    return None;
                }
                if let Some(ended) = exit.borrow_and_update().clone() {
                    return Some(ended);
                }
            }
            () = tokio::time::sleep_until(deadline), if !killed => {
                killed = true;
                sent_against = None;
                signal(runc, &runc_id, "KILL").await;
            }
            () = tokio::time::sleep(recheck), if sent_against.is_some() && !killed => {
                recheck = (recheck * 2).min(RECHECK_MAX);
                let Some(now) = signal_view(pid) else {
                    sent_against = None;
                    continue;
                };
                let lost = sent_against.as_ref().is_some_and(|then| {
                    now.catches_term && (!then.catches_term || then.name != now.name)
                });
                if lost {
                    tracing::debug!(
                        "container {runc_id}: SIGTERM sent before {} handled it; sending it again",
                        now.name
                    );
                    signal(runc, &runc_id, "TERM").await;
                    sent_against = None;
                } else if sent_against.as_ref().is_some_and(|then| then.name != now.name) {
                    // Exec'd into a program that does not catch SIGTERM yet: watch that one.
                    sent_against = Some(now);
                }
            }
        }
    }
}

async fn signal(runc: &Runc, runc_id: &str, signal: &str) {
    if let Err(error) = runc.kill(runc_id, signal).await {
        tracing::warn!("{error:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_caught_signals_of_a_process() {
        // The test process has no SIGTERM handler of its own.
        let view = signal_view(std::process::id() as i32).unwrap();
        assert!(!view.catches_term, "{view:?}");
        assert!(signal_view(i32::MAX).is_none());
    }
}
