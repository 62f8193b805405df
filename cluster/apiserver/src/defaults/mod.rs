//! Per-kind defaulting and validation, applied on create (and on updates for the fields that
//! are defaulted or immutable), so that clients read back objects shaped as kube-apiserver
//! would return them (defaults filled in, names validated).

use serde_json::{Map, Value, json};

use crate::errors::{ApiError, ApiResult};

use crate::registry::ResourceInfo;

mod batch;
mod json;
mod pod;
mod workloads;

pub(crate) use batch::{
    CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
};
pub(crate) use json::{object_mut, set_default};
use pod::default_pod;
pub use pod::default_pod_spec;
use workloads::{default_deployment, default_replicaset, default_statefulset};

/// The current time as Kubernetes writes it (RFC 3339, whole seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The current time plus `seconds`, in the same format.
pub fn now_plus(seconds: i64) -> String {
    let t = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .unwrap_or_else(|_| jiff::Timestamp::now());
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The name of a new object: its own, or one made from `generateName` as the generic
/// registry's BeforeCreate makes it. A missing name is left to validation, which reports it
/// with everything else wrong with the object.
fn new_name(metadata: &Map<String, Value>) -> String {
    let named = |key: &str| {
        metadata
            .get(key)
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
    };
    match named("name") {
        Some(name) => name.to_string(),
        None => named("generateName")
            .map(crate::validation::names::generated_name)
            .unwrap_or_default(),
    }
}

/// Fills the metadata every new object gets (a name from `generateName`) and the per-kind
/// defaults.
pub fn prepare_create(
    resource: &ResourceInfo,
    object: &mut Value,
    namespace: Option<&str>,
) -> ApiResult<()> {
    let Some(map) = object.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the request body is not a JSON object",
        ));
    };
    map.insert("apiVersion".into(), json!(resource.api_version()));
    map.insert("kind".into(), json!(resource.kind));
    let has_spec = map.contains_key("spec");
    let metadata = object_mut(object, "metadata")
        .ok_or_else(|| ApiError::bad_request("metadata is not an object"))?;
    let name = new_name(metadata);
    metadata.insert("name".into(), json!(name));
    match namespace {
        Some(ns) => {
            metadata.insert("namespace".into(), json!(ns));
        }
        None => {
            metadata.remove("namespace");
        }
    }
    metadata.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    metadata.insert("creationTimestamp".into(), json!(now()));
    for transient in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        metadata.remove(transient);
    }
    if has_spec && resource.plural != "namespaces" {
        metadata.insert("generation".into(), json!(1));
    }
    // Status is the controllers' to write, so a create resets it; nodes keep theirs, as the
    // kubelet registers its node with its status.
    if resource.has_subresource("status")
        && !matches!(resource.plural, "namespaces" | "nodes")
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    default_new_object(resource, object, &name)
}

/// The defaults of a new object of `resource`'s kind (`SetDefaults_<Kind>` and the create
/// strategies' resets).
fn default_new_object(resource: &ResourceInfo, object: &mut Value, name: &str) -> ApiResult<()> {
    match resource.plural {
        "namespaces" => default_namespace(object, name),
        "pods" => default_pod(object)?,
        "statefulsets" => {
            drop_disabled_fields(resource, None, object);
            default_statefulset(object)
        }
        "replicasets" => default_replicaset(object),
        "deployments" => default_deployment(object),
        "jobs" => {
            batch::default_job(object);
            batch::generate_job_selector(object);
            batch::labels_from_template(object);
        }
        "cronjobs" => batch::default_cronjob(object),
        "secrets" => default_secret(object),
        "persistentvolumeclaims" => {
            if let Some(spec) = object_mut(object, "spec") {
                set_default(spec, "volumeMode", json!("Filesystem"));
            }
            if let Some(status) = object_mut(object, "status") {
                set_default(status, "phase", json!("Pending"));
            }
        }
        "persistentvolumes" => {
            if let Some(spec) = object_mut(object, "spec") {
                set_default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
                set_default(spec, "volumeMode", json!("Filesystem"));
            }
            if let Some(status) = object_mut(object, "status") {
                set_default(status, "phase", json!("Pending"));
            }
        }
        "ingresses" => {
            // The strategy resets the status to an empty one.
            if let Some(map) = object.as_object_mut() {
                map.insert("status".into(), json!({ "loadBalancer": {} }));
            }
        }
        "ingressclasses" => default_ingress_class(object),
        "networkpolicies" => default_network_policy(object),
        "storageclasses" => {
            if let Some(map) = object.as_object_mut() {
                set_default(map, "reclaimPolicy", json!("Delete"));
                set_default(map, "volumeBindingMode", json!("Immediate"));
            }
        }
        _ => {}
    }
    Ok(())
}

/// `SetDefaults_IngressClass`: parameters are cluster-scoped unless they say otherwise.
fn default_ingress_class(object: &mut Value) {
    if let Some(Value::Object(parameters)) = object.pointer_mut("/spec/parameters") {
        set_default(parameters, "scope", json!("Cluster"));
    }
}

/// `SetDefaults_NetworkPolicy` and `SetDefaults_NetworkPolicyPort`: a policy without types
/// is an Ingress policy (and an Egress one when it has egress rules); ports are TCP.
fn default_network_policy(object: &mut Value) {
    let Some(spec) = object_mut(object, "spec") else {
        return;
    };
    let has_egress = spec
        .get("egress")
        .and_then(Value::as_array)
        .is_some_and(|rules| !rules.is_empty());
    let untyped = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if untyped {
        let types = if has_egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
        spec.insert("policyTypes".into(), types);
    }
    for direction in ["ingress", "egress"] {
        let Some(Value::Array(rules)) = spec.get_mut(direction) else {
            continue;
        };
        let ports = rules.iter_mut().filter_map(|rule| rule.get_mut("ports"));
        for port in ports.filter_map(Value::as_array_mut).flatten() {
            if let Some(port) = port.as_object_mut() {
                set_default(port, "protocol", json!("TCP"));
            }
        }
    }
}

fn default_namespace(object: &mut Value, name: &str) {
    if let Some(labels) = object
        .get_mut("metadata")
        .and_then(|m| object_mut(m, "labels"))
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if let Some(spec) = object_mut(object, "spec") {
        set_default(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(status) = object_mut(object, "status") {
        status.insert("phase".into(), json!("Active"));
    }
}

/// Defaults that every write gets (kube-apiserver defaults on update too), so that, e.g., a
/// container added by an update has its pull policy. Idempotent: only missing fields are set.
pub fn default_on_update(resource: &ResourceInfo, object: &mut Value) {
    match resource.plural {
        "pods" => {
            if let Some(spec) = object.get_mut("spec") {
                default_pod_spec(spec);
                // `SetDefaults_Pod` runs on every write, so an update that leaves these out
                // does not read as a change of the pod's spec.
                crate::qos::default_requests_to_limits(spec);
                if let Some(s) = spec.as_object_mut() {
                    set_default(s, "enableServiceLinks", json!(true));
                }
            }
        }
        "statefulsets" => default_statefulset(object),
        "replicasets" => default_replicaset(object),
        "deployments" => default_deployment(object),
        "jobs" => {
            batch::default_job(object);
            batch::labels_from_template(object);
        }
        "cronjobs" => batch::default_cronjob(object),
        "services" => {
            if let Some(ports) = object
                .pointer_mut("/spec/ports")
                .and_then(Value::as_array_mut)
            {
                for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(port, "protocol", json!("TCP"));
                    if let Some(p) = port.get("port").cloned() {
                        set_default(port, "targetPort", p);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Fields of alpha features, off in kube-apiserver 1.33, dropped from a write unless the
/// stored object (`old`) already uses them, as the registries' `dropDisabledFields` do:
/// a StatefulSet's `rollingUpdate.maxUnavailable` (feature gate MaxUnavailableStatefulSet).
pub fn drop_disabled_fields(resource: &ResourceInfo, old: Option<&Value>, new: &mut Value) {
    const MAX_UNAVAILABLE: &str = "/spec/updateStrategy/rollingUpdate/maxUnavailable";
    if resource.plural != "statefulsets"
        || old.is_some_and(|old| old.pointer(MAX_UNAVAILABLE).is_some_and(|v| !v.is_null()))
    {
        return;
    }
    if let Some(rolling) = new
        .pointer_mut("/spec/updateStrategy/rollingUpdate")
        .and_then(Value::as_object_mut)
    {
        rolling.remove("maxUnavailable");
    }
}

fn default_secret(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    set_default(map, "type", json!("Opaque"));
    if let Some(Value::Object(string_data)) = map.remove("stringData") {
        let data = map.entry("data").or_insert_with(|| json!({}));
        if let Some(data) = data.as_object_mut() {
            for (k, v) in string_data {
                data.insert(k, json!(base64(v.as_str().unwrap_or_default().as_bytes())));
            }
        }
    }
}

/// Standard base64 with padding, as Kubernetes encodes Secret data.
pub(crate) fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;

    #[test]
    fn pod_defaults_fill_policy_and_status() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "busybox:1.28"}
        ]}});
        prepare_create(find("", "v1", "pods").unwrap(), &mut pod, Some("default")).unwrap();
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            pod["spec"]["containers"][1]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(pod["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["metadata"]["namespace"], "default");
        assert_eq!(pod["metadata"]["generation"], 1);
        assert_eq!(pod["status"]["qosClass"], "BestEffort");
    }

    #[test]
    fn requests_default_to_limits_and_equal_ones_are_guaranteed() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "nginx", "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}}
        ]}});
        prepare_create(find("", "v1", "pods").unwrap(), &mut pod, Some("default")).unwrap();
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"],
            json!({"cpu": "1", "memory": "64Mi"})
        );
        assert_eq!(pod["status"]["qosClass"], "Guaranteed");
    }

    #[test]
    fn max_unavailable_of_a_statefulset_is_dropped_unless_already_in_use() {
        let sets = find("apps", "v1", "statefulsets").unwrap();
        let with = |n: i64| {
            json!({"metadata": {"name": "web"}, "spec": {"updateStrategy": {
                "type": "RollingUpdate", "rollingUpdate": {"partition": 1, "maxUnavailable": n}}}})
        };
        let mut created = with(2);
        prepare_create(sets, &mut created, Some("default")).unwrap();
        assert_eq!(
            created["spec"]["updateStrategy"]["rollingUpdate"],
            json!({"partition": 1})
        );
        let mut updated = with(3);
        drop_disabled_fields(sets, Some(&created), &mut updated);
        assert!(
            updated
                .pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable")
                .is_none()
        );
        // Stored before the feature was turned off (or by another server): kept.
        let mut kept = with(4);
        drop_disabled_fields(sets, Some(&with(2)), &mut kept);
        assert_eq!(
            kept["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            4
        );
    }

    #[test]
    fn secret_string_data_is_encoded() {
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"k": "hello"}});
        prepare_create(find("", "v1", "secrets").unwrap(), &mut s, Some("default")).unwrap();
        assert_eq!(s["data"]["k"], "aGVsbG8=");
        assert_eq!(s["type"], "Opaque");
    }

    #[test]
    fn network_policies_default_their_types_and_port_protocols() {
        let policies = find("networking.k8s.io", "v1", "networkpolicies").unwrap();
        let mut policy = json!({"metadata": {"name": "p"}, "spec": {
            "podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 80}]}]}});
        prepare_create(policies, &mut policy, Some("default")).unwrap();
        assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        let ports = &policy["spec"]["egress"][0]["ports"];
        assert_eq!(
            (&ports[0]["protocol"], &ports[1]["protocol"]),
            (&json!("UDP"), &json!("TCP"))
        );
        let mut typed = json!({"metadata": {"name": "p"}, "spec": {"policyTypes": ["Egress"]}});
        prepare_create(policies, &mut typed, Some("default")).unwrap();
        assert_eq!(typed["spec"]["policyTypes"], json!(["Egress"]));
    }
}
