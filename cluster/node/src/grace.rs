//! How long a pod's containers have to stop, as the kubelet reckons it: the pod worker's
//! effective grace period (`calculateEffectiveGracePeriod` in `pod_workers.go`), which only
//! ever shrinks, and what is left for SIGTERM once a `preStop` hook has had its share
//! (`killContainer` in `kuberuntime_container.go`).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

/// The kubelet's `minimumGracePeriodInSeconds`: a container always gets this long between
/// SIGTERM and SIGKILL, even when the hook used up the grace period or the period asked for
/// was shorter, "to avoid unnecessary SIGKILLs".
pub const MINIMUM_GRACE_SECONDS: i64 = 2;

/// How long the containers of a pod have to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grace {
    /// SIGKILL now, no hook: the node itself is going away (the cluster stops), and the
    /// cluster removes everything it started.
    Now,
    /// The kubelet's rules: the `preStop` hook, then SIGTERM, then SIGKILL after what is left
    /// of this many seconds (at least [`MINIMUM_GRACE_SECONDS`]).
    Seconds(i64),
}

/// The pod worker's effective grace period for `pod`, given the one it already uses
/// (`previous`, when the pod is already terminating): the API server's
/// `deletionGracePeriodSeconds` when it is shorter, else the pod's
/// `terminationGracePeriodSeconds` (a pod the node learns is gone without having seen it
/// marked, as after `kubectl delete --force --grace-period=0`, still gets that), and never
/// less than one second.
pub fn effective_grace_seconds(pod: &Pod, previous: Option<i64>) -> i64 {
    let mut grace = previous.unwrap_or(0);
    if let Some(asked) = pod.metadata.deletion_grace_period_seconds
        && (grace == 0 || asked < grace)
    {
        grace = asked;
    }
    if grace == 0
        && let Some(spec) = pod
            .spec
            .as_ref()
            .and_then(|spec| spec.termination_grace_period_seconds)
    {
        grace = spec;
    }
    grace.max(1)
}

/// `killContainer`'s window between SIGTERM and SIGKILL: the grace period less the whole
/// seconds the `preStop` hook took (Go's `int64(duration.Seconds())` truncates), at least
/// [`MINIMUM_GRACE_SECONDS`].
pub fn stop_window(grace_seconds: i64, hook_took: Duration) -> Duration {
    let hook_seconds = i64::try_from(hook_took.as_secs()).unwrap_or(i64::MAX);
    let left = grace_seconds
        .saturating_sub(hook_seconds)
        .max(MINIMUM_GRACE_SECONDS);
    Duration::from_secs(u64::try_from(left).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn pod(deletion: Option<i64>, spec: Option<i64>) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.deletion_grace_period_seconds = deletion;
        pod.spec = Some(PodSpec {
            termination_grace_period_seconds: spec,
            ..PodSpec::default()
        });
        pod
    }

    #[test]
    fn the_api_servers_period_wins_and_only_shrinks() {
        assert_eq!(effective_grace_seconds(&pod(Some(5), Some(30)), None), 5);
        assert_eq!(effective_grace_seconds(&pod(Some(3), Some(30)), Some(5)), 3);
        // A longer period asked later does not lengthen the one in force.
        assert_eq!(
            effective_grace_seconds(&pod(Some(10), Some(30)), Some(5)),
            5
        );
    }

    #[test]
    fn a_pod_gone_without_a_period_gets_its_spec_and_at_least_a_second() {
        // Force deletion: the pod was never seen marked, or was marked with period 0.
        assert_eq!(effective_grace_seconds(&pod(None, Some(30)), None), 30);
        assert_eq!(effective_grace_seconds(&pod(Some(0), Some(30)), None), 30);
        assert_eq!(effective_grace_seconds(&pod(Some(0), Some(0)), None), 1);
        assert_eq!(effective_grace_seconds(&pod(None, None), None), 1);
    }

    #[test]
    fn the_hook_takes_whole_seconds_from_the_window_down_to_two() {
        assert_eq!(
            stop_window(10, Duration::from_millis(3900)),
            Duration::from_secs(7)
        );
        assert_eq!(
            stop_window(3, Duration::from_secs(3)),
            Duration::from_secs(2)
        );
        assert_eq!(stop_window(1, Duration::ZERO), Duration::from_secs(2));
    }
}
