//! Readiness facts about Pods that several controllers decide on.

use k8s_openapi::api::core::v1::Pod;

/// Phase Running and condition Ready=True: what OrderedReady waits for and what makes an
/// endpoint ready (kube-controller-manager's `isRunningAndReady` / `podutil.IsPodReady`).
pub(crate) fn is_running_and_ready(pod: &Pod) -> bool {
    phase(pod) == Some("Running") && is_ready(pod)
}

/// Condition Ready=True, whatever the phase.
pub(crate) fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|condition| condition.type_ == "Ready" && condition.status == "True")
        })
}

/// The pod is being deleted (the node agent still has to stop it).
pub(crate) fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Succeeded or Failed: the containers will not run again.
pub(crate) fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), Some("Succeeded" | "Failed"))
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
}

#[cfg(test)]
pub(crate) mod test_pods {
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    /// A pod with the given phase and Ready condition, for tests.
    pub fn pod(name: &str, phase: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            "status": {
                "phase": phase,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            },
        }))
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_pods::pod;
    use super::*;

    #[test]
    fn running_and_ready_needs_both() {
        assert!(is_running_and_ready(&pod("a", "Running", true)));
        assert!(!is_running_and_ready(&pod("a", "Running", false)));
        assert!(!is_running_and_ready(&pod("a", "Pending", true)));
    }

    #[test]
    fn terminal_phases() {
        assert!(is_terminal(&pod("a", "Failed", false)));
        assert!(is_terminal(&pod("a", "Succeeded", false)));
        assert!(!is_terminal(&pod("a", "Running", true)));
    }
}
