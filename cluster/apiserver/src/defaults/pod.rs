//! `SetDefaults_Pod`, `SetDefaults_PodSpec` and `SetDefaults_Container`: the defaults of a
//! pod and of every pod template (pkg/apis/core/v1/defaults.go).

use serde_json::{Value, json};

use super::json::{object_mut, set_default};
use crate::errors::{ApiError, ApiResult};

fn default_container(container: &mut Value) {
    let Some(c) = container.as_object_mut() else {
        return;
    };
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let last = image.rsplit('/').next().unwrap_or_default();
    let tag = if last.contains('@') {
        Some("digest")
    } else {
        last.split_once(':').map(|(_, t)| t)
    };
    let policy = match tag {
        None | Some("latest") => "Always",
        Some(_) => "IfNotPresent",
    };
    set_default(c, "imagePullPolicy", json!(policy));
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    set_default(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(port, "protocol", json!("TCP"));
        }
    }
}

/// Defaults of a pod spec, shared by pods and the pod templates of workloads.
pub fn default_pod_spec(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    set_default(s, "restartPolicy", json!("Always"));
    set_default(s, "dnsPolicy", json!("ClusterFirst"));
    set_default(s, "terminationGracePeriodSeconds", json!(30));
    set_default(s, "schedulerName", json!("default-scheduler"));
    set_default(s, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = s.get_mut(list).and_then(Value::as_array_mut) {
            containers.iter_mut().for_each(default_container);
        }
    }
}

pub(crate) fn default_pod(object: &mut Value) -> ApiResult<()> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let containers = object.pointer("/spec/containers").and_then(Value::as_array);
    match containers {
        None => {
            return Err(ApiError::invalid(
                "Pod",
                &name,
                &[("spec.containers".into(), "Required value".into())],
            ));
        }
        Some(list) if list.is_empty() => {
            return Err(ApiError::invalid(
                "Pod",
                &name,
                &[("spec.containers".into(), "Required value".into())],
            ));
        }
        Some(list) => {
            for (i, c) in list.iter().enumerate() {
                for required in ["image", "name"] {
                    if c.get(required)
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        return Err(ApiError::invalid(
                            "Pod",
                            &name,
                            &[(
                                format!("spec.containers[{i}].{required}"),
                                "Required value".into(),
                            )],
                        ));
                    }
                }
            }
        }
    }
    if let Some(spec) = object.get_mut("spec") {
        default_pod_spec(spec);
        crate::qos::default_requests_to_limits(spec);
        if let Some(s) = spec.as_object_mut() {
            set_default(s, "enableServiceLinks", json!(true));
            set_default(s, "serviceAccountName", json!("default"));
            let account = s
                .get("serviceAccountName")
                .cloned()
                .unwrap_or(json!("default"));
            set_default(s, "serviceAccount", account);
            set_default(s, "priority", json!(0));
        }
    }
    let qos_class = object
        .get("spec")
        .map_or("BestEffort", crate::qos::qos_class);
    if let Some(status) = object_mut(object, "status") {
        set_default(status, "phase", json!("Pending"));
        set_default(status, "qosClass", json!(qos_class));
    }
    Ok(())
}

pub(crate) fn default_template(object: &mut Value) {
    if let Some(spec) = object.pointer_mut("/spec/template/spec") {
        default_pod_spec(spec);
    }
}
