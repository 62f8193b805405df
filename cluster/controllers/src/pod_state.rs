//! Pods for the controllers' unit tests (the facts about a pod are `k8s_labs_podutil`'s).

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
