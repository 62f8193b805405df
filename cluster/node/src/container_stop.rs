//! Stopping one container within its grace period, as the kubelet asks a CRI runtime to:
//! its `preStop` hook, SIGTERM, then SIGKILL when the grace period is over.
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

use crate::container_exit::ExitInfo;
use crate::grace::{Grace, stop_window};
use crate::pre_stop::PreStopHook;
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

/// Stops a container as the kubelet's `killContainer` and containerd's `StopContainer` do:
/// its `preStop` hook first (for at most the grace period), then SIGTERM (again when it was
/// lost, see the module docs), then SIGKILL once the grace period less the hook's whole
/// seconds, at least [`MINIMUM_GRACE_SECONDS`](crate::grace::MINIMUM_GRACE_SECONDS), is
/// over; [`Grace::Now`] kills at once. A shorter grace period arriving on `grace` meanwhile
/// moves SIGKILL earlier (never later) and sends no second SIGTERM, as containerd skips the
/// signal a prior stop sent. Returns how the container ended, once it has.
pub async fn stop_container(
    runc: &Runc,
    target: StopTarget,
    hook: Option<PreStopHook>,
    mut grace: watch::Receiver<Grace>,
) -> Option<ExitInfo> {
    let StopTarget {
        runc_id,
        pid,
        mut exit,
    } = target;
    if let Some(ended) = exit.borrow().clone() {
        return Some(ended);
    }
    let first = *grace.borrow_and_update();
    let window = match first {
        Grace::Now => Duration::ZERO,
        Grace::Seconds(seconds) => match hook.filter(|_| seconds > 0) {
            Some(hook) => {
                let hooked = Hooked {
                    runc,
                    runc_id: &runc_id,
                    hook: &hook,
                };
                match hooked.run_within(seconds, &mut grace, &mut exit).await {
                    AfterHook::Ended(ended) => return ended,
                    AfterHook::Window(window) => window,
                }
            }
            None => stop_window(seconds, Duration::ZERO),
        },
    };
    let signalled = Signalled {
        runc,
        runc_id: &runc_id,
        pid,
    };
    signalled.until_exit(window, grace, exit).await
}

/// What is left once the `preStop` hook is over.
enum AfterHook {
    /// The container ended meanwhile (`None`: its end can no longer be learned).
    Ended(Option<ExitInfo>),
    /// The window between SIGTERM and SIGKILL.
    Window(Duration),
}

struct Hooked<'a> {
    runc: &'a Runc,
    runc_id: &'a str,
    hook: &'a PreStopHook,
}

impl Hooked<'_> {
    /// `executePreStopHook`: the hook runs until it ends or the grace period (shortened if a
    /// shorter one comes) is over, then it is left; its whole seconds come off the window.
    async fn run_within(
        &self,
        mut seconds: i64,
        grace: &mut watch::Receiver<Grace>,
        exit: &mut watch::Receiver<Option<ExitInfo>>,
    ) -> AfterHook {
        let start = Instant::now();
        let hook = self.hook.run(self.runc, self.runc_id);
        tokio::pin!(hook);
        let mut following = true;
        loop {
            let bound = start + Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
            tokio::select! {
                () = &mut hook => break,
                () = tokio::time::sleep_until(bound) => {
                    tracing::info!("preStop hook in container {} not completed in grace period", self.runc_id);
                    break;
                }
                changed = grace.changed(), if following => {
                    if changed.is_err() {
                        following = false;
                        continue;
                    }
                    match *grace.borrow_and_update() {
                        Grace::Now => return AfterHook::Window(Duration::ZERO),
                        Grace::Seconds(shorter) => seconds = seconds.min(shorter),
                    }
                }
                changed = exit.changed() => {
                    if changed.is_err() {
                        return AfterHook::Ended(None);
                    }
                    if let Some(ended) = exit.borrow_and_update().clone() {
                        return AfterHook::Ended(Some(ended));
                    }
                }
            }
        }
        AfterHook::Window(stop_window(seconds, start.elapsed()))
    }
}

struct Signalled<'a> {
    runc: &'a Runc,
    runc_id: &'a str,
    pid: i32,
}

impl Signalled<'_> {
    /// SIGTERM now (SIGKILL when `window` is zero), SIGKILL when `window` is over; returns
    /// once the container has ended.
    async fn until_exit(
        &self,
        window: Duration,
        mut grace: watch::Receiver<Grace>,
        mut exit: watch::Receiver<Option<ExitInfo>>,
    ) -> Option<ExitInfo> {
        let (runc, runc_id, pid) = (self.runc, self.runc_id, self.pid);
        let mut deadline = Instant::now() + window;
        let mut killed = window.is_zero();
        // The process as it was when the last SIGTERM was sent; `None` once there is nothing
        // left to watch for (SIGTERM resent, SIGKILL sent, process gone).
        let mut sent_against: Option<SignalView> = None;
        let mut recheck = RECHECK_FIRST;
        let mut following = true;
        if killed {
            signal(runc, runc_id, "KILL").await;
        } else {
            let before = signal_view(pid);
            signal(runc, runc_id, "TERM").await;
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
                changed = grace.changed(), if following && !killed => {
                    if changed.is_err() {
                        following = false;
                        continue;
                    }
                    let window = match *grace.borrow_and_update() {
                        Grace::Now => Duration::ZERO,
                        Grace::Seconds(seconds) => stop_window(seconds, Duration::ZERO),
                    };
                    deadline = deadline.min(Instant::now() + window);
                }
                () = tokio::time::sleep_until(deadline), if !killed => {
                    killed = true;
                    sent_against = None;
                    signal(runc, runc_id, "KILL").await;
                }
                () = tokio::time::sleep(recheck), if sent_against.is_some() && !killed => {
                    recheck = (recheck * 2).min(RECHECK_MAX);
                    sent_against = resend_if_lost(runc, runc_id, pid, sent_against).await;
                }
            }
        }
    }
}

/// One look at a process SIGTERM was sent to: sends it again when it was lost (see the module
/// docs). Returns what to keep watching for.
async fn resend_if_lost(
    runc: &Runc,
    runc_id: &str,
    pid: i32,
    sent_against: Option<SignalView>,
) -> Option<SignalView> {
    let then = sent_against?;
    let now = signal_view(pid)?;
    if now.catches_term && (!then.catches_term || then.name != now.name) {
        tracing::debug!(
            "container {runc_id}: SIGTERM sent before {} handled it; sending it again",
            now.name
        );
        signal(runc, runc_id, "TERM").await;
        return None;
    }
    if then.name != now.name {
        // Exec'd into a program that does not catch SIGTERM yet: watch that one.
        return Some(now);
    }
    Some(then)
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
