//! Facts about a Pod read from its status, as upstream's `pkg/api/v1/pod` (imported as
//! `podutil` across kube-controller-manager and the kubelet) gives them: one definition of
//! "Ready", "Running and Ready", "terminal" and "terminating" for the controllers, the node,
//! the labs and the tests, so that a lab's "pod is Ready" is the endpoints controller's.

use k8s_openapi::api::core::v1::Pod;

/// The pod's phase, or `Pending` when its status has none yet (as the API server defaults it
/// and kubectl shows it).
pub fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
        .unwrap_or("Pending")
}

/// Condition `Ready` is `True`, whatever the phase (`podutil.IsPodReady`): what makes an
/// endpoint ready.
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|condition| condition.type_ == "Ready" && condition.status == "True")
        })
}

/// Phase `Running` and condition `Ready` `True` (the StatefulSet controller's
/// `isRunningAndReady`): what OrderedReady waits for and `kubectl get pod` shows as
/// `1/1 Running`.
pub fn is_pod_running_and_ready(pod: &Pod) -> bool {
    pod_phase(pod) == "Running" && is_pod_ready(pod)
}

/// Phase `Succeeded` or `Failed` (`podutil.IsPodTerminal`): its containers will not run again.
pub fn is_pod_terminal(pod: &Pod) -> bool {
    matches!(pod_phase(pod), "Succeeded" | "Failed")
}

/// The pod is being deleted (it has a `deletionTimestamp`): it still shows in lists, as
/// `Terminating`, until the node has stopped it.
pub fn is_pod_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The waiting reason of the first container of `pod` that is waiting (`ContainerCreating`,
/// `ImagePullBackOff`, …), if any.
pub fn container_waiting_reason(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find_map(|status| status.state.as_ref()?.waiting.as_ref()?.reason.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).unwrap()
    }

    fn with(phase: &str, ready: &str) -> Pod {
        pod(json!({"phase": phase, "conditions": [{"type": "Ready", "status": ready}]}))
    }

    #[test]
    fn running_and_ready_needs_both() {
        assert!(is_pod_running_and_ready(&with("Running", "True")));
        assert!(!is_pod_running_and_ready(&with("Running", "False")));
        assert!(!is_pod_running_and_ready(&with("Pending", "True")));
        assert!(is_pod_ready(&with("Pending", "True")));
        assert!(!is_pod_ready(&pod(json!({"phase": "Running"}))));
    }

    #[test]
    fn a_pod_without_a_phase_is_pending_and_not_terminal() {
        let fresh = pod(json!({}));
        assert_eq!(pod_phase(&fresh), "Pending");
        assert!(!is_pod_terminal(&fresh));
        assert!(is_pod_terminal(&with("Failed", "False")));
        assert!(is_pod_terminal(&with("Succeeded", "False")));
        assert!(!is_pod_terminal(&with("Running", "True")));
    }

    #[test]
    fn terminating_is_the_deletion_timestamp() {
        let mut deleted = with("Running", "True");
        assert!(!is_pod_terminating(&deleted));
        deleted.metadata.deletion_timestamp =
            Some(serde_json::from_value(json!("2026-12-07T20:00:00Z")).unwrap());
        assert!(is_pod_terminating(&deleted));
    }

    #[test]
    fn the_first_waiting_container_gives_the_reason() {
        let pulling = pod(json!({"containerStatuses": [
            {"name": "a", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"running": {}}},
            {"name": "b", "image": "y", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ImagePullBackOff"}}},
        ]}));
        assert_eq!(container_waiting_reason(&pulling), Some("ImagePullBackOff"));
        assert_eq!(container_waiting_reason(&with("Running", "True")), None);
    }
}
