//! Validation of pod specs that kube-apiserver does and defaulting does not: a volume mount's
//! `subPath` must stay inside its volume (`validateLocalDescendingPath`: relative, without a
//! `..` component). Applied to pods and to the pod templates of workloads, on create and on
//! update, with kube-apiserver's field paths and messages.

use serde_json::Value;

use crate::errors::{ApiError, ApiResult};
use crate::registry::ResourceInfo;

/// Checks `object` (after defaulting) as kube-apiserver's validation would; 422 with every
/// problem found.
pub fn validate(resource: &ResourceInfo, object: &Value) -> ApiResult<()> {
    let (pointer, field) = match resource.plural {
        "pods" => ("/spec", "spec"),
        "statefulsets" | "replicasets" | "deployments" | "daemonsets" | "jobs" => {
            ("/spec/template/spec", "spec.template.spec")
        }
        _ => return Ok(()),
    };
    let Some(spec) = object.pointer(pointer) else {
        return Ok(());
    };
    let causes = pod_spec_problems(spec, field);
    if causes.is_empty() {
        return Ok(());
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Err(ApiError::invalid(resource.kind, name, &causes))
}

/// `(field, message)` for each volume mount of each container whose subPath leaves its volume.
fn pod_spec_problems(spec: &Value, field: &str) -> Vec<(String, String)> {
    let mut causes = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let containers = spec.get(list).and_then(Value::as_array);
        for (index, container) in containers.into_iter().flatten().enumerate() {
            let mounts = container.get("volumeMounts").and_then(Value::as_array);
            for (mount_index, mount) in mounts.into_iter().flatten().enumerate() {
                for key in ["subPath", "subPathExpr"] {
                    let Some(sub_path) = mount.get(key).and_then(Value::as_str) else {
                        continue;
                    };
                    let path = format!("{field}.{list}[{index}].volumeMounts[{mount_index}].{key}");
                    for problem in descending_path_problems(sub_path) {
                        causes.push((
                            path.clone(),
                            format!("Invalid value: {sub_path:?}: {problem}"),
                        ));
                    }
                }
            }
        }
    }
    causes
}

/// kube-apiserver's `validateLocalDescendingPath`: what is wrong with a path that must stay
/// below the directory it is relative to.
fn descending_path_problems(path: &str) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if path.starts_with('/') {
        problems.push("must be a relative path");
    }
    // One error even for `../../..`, as upstream's `validatePathNoBacksteps`.
    if path.split('/').any(|part| part == "..") {
        problems.push("must not contain '..'");
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod_with_sub_path(sub_path: &str) -> Value {
        json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "volumeMounts": [{"name": "data", "mountPath": "/data", "subPath": sub_path}]}]},
        })
    }

    #[test]
    fn sub_paths_must_descend() {
        for ok in ["", "a", "a/b", "a..b", "..a/b"] {
            assert!(
                pod_spec_problems(&pod_with_sub_path(ok)["spec"], "spec").is_empty(),
                "{ok}"
            );
        }
        let problems = pod_spec_problems(&pod_with_sub_path("../../../../etc")["spec"], "spec");
        assert_eq!(
            problems,
            [(
                "spec.containers[0].volumeMounts[0].subPath".to_string(),
                "Invalid value: \"../../../../etc\": must not contain '..'".to_string()
            )]
        );
        let problems = pod_spec_problems(&pod_with_sub_path("/etc/../x")["spec"], "spec");
        let messages: Vec<&str> = problems.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "Invalid value: \"/etc/../x\": must be a relative path",
                "Invalid value: \"/etc/../x\": must not contain '..'"
            ]
        );
    }
}
