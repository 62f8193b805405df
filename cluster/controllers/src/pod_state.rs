//! Readiness facts about Pods that several controllers decide on.

// One definition for the cluster and the labs; the controllers' short names.
pub(crate) use k8s_labs_podutil::{
    is_pod_ready as is_ready, is_pod_running_and_ready as is_running_and_ready,
    is_pod_terminal as is_terminal, is_pod_terminating as is_terminating,
};

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
