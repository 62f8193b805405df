//! Validation as kube-apiserver's REST strategies do it, after defaulting, on create and on
//! update, with its field paths, messages and 422 `Invalid` Status (`details.causes`, the
//! message kubectl prints); and the check of a body's `apiVersion`/`kind` against the URL,
//! which kube-apiserver does while decoding (400).
//!
//! One file per concern: [`typemeta`] (apiVersion/kind), `objectmeta` (names, labels,
//! annotations, owner references, finalizers), [`names`] (the name rules), `pods`,
//! `statefulsets`, `deployments`, `services` and `claims` (the spec rules learners meet), `field` and `diff`
//! (how errors and values are printed); and [`claim_resize`], the admission plugin that
//! decides whether a bound claim may grow.

mod batch;
pub mod claim_resize;
mod claims;
mod deployments;
mod diff;
pub(crate) mod field;
pub mod names;
mod networking;
mod objectmeta;
mod pods;
mod services;
mod statefulsets;
pub mod typemeta;

use serde_json::Value;

use crate::convert::storage;
use crate::errors::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use field::Cause;

/// Checks a new object (after defaulting, in the stored shape) as kube-apiserver's create
/// validation does; 422 with every problem found. `resource` is the resource the client
/// addressed: its name rule applies (core v1 Events keep their legacy, unchecked metadata;
/// events.k8s.io Events are checked).
pub fn validate_create(resource: &'static ResourceInfo, object: &Value) -> ApiResult<()> {
    let stored = storage(resource);
    let mut causes = Vec::new();
    // For every kind, core Events too: the generic registry's ObjectMeta validation (the
    // name rule is the view's: events.k8s.io Events' strategy wants DNS subdomains).
    let rule = names::rule_for(resource);
    causes.extend(objectmeta::validate_create(object.get("metadata"), rule));
    causes.extend(spec_problems(stored, object));
    refuse(stored, object, causes)
}

/// Checks an update of `old` to `new` (both stored, `new` defaulted) as kube-apiserver's
/// update validation does: the metadata, the new spec, and what the kind does not let an
/// update change.
pub fn validate_update(resource: &ResourceInfo, old: &Value, new: &Value) -> ApiResult<()> {
    let mut causes = objectmeta::validate_update(old.get("metadata"), new.get("metadata"));
    match resource.plural {
        "pods" => {
            causes.extend(spec_problems(resource, new));
            causes.extend(pods::update_problems(old, new));
        }
        "statefulsets" => {
            causes.extend(template_problems(new, false));
            causes.extend(statefulsets::update_problems(old, new));
        }
        "persistentvolumeclaims" => causes.extend(claims::update_problems(old, new)),
        "deployments" => {
            causes.extend(template_problems(new, true));
            causes.extend(deployments::update_problems(old, new));
        }
        "jobs" => causes.extend(batch::job_update_problems(old, new)),
        "cronjobs" => causes.extend(batch::cronjob_update_problems(old, new)),
        _ => causes.extend(spec_problems(resource, new)),
    }
    refuse(resource, new, causes)
}

/// The spec problems of an object of `resource`, create and update alike.
fn spec_problems(resource: &ResourceInfo, object: &Value) -> Vec<Cause> {
    match resource.plural {
        "pods" => object
            .get("spec")
            .map(|spec| pods::spec_problems(spec, "spec", true))
            .unwrap_or_default(),
        "deployments" => {
            let mut causes = template_problems(object, true);
            causes.extend(deployments::spec_problems(object));
            causes
        }
        "replicasets" | "daemonsets" => template_problems(object, true),
        "jobs" => batch::job_problems(object),
        "cronjobs" => batch::cronjob_create_problems(object),
        "statefulsets" => {
            let mut causes = template_problems(object, false);
            causes.extend(statefulsets::spec_problems(object));
            causes
        }
        "services" => services::port_problems(object),
        "ingresses" => networking::ingress_problems(object),
        "ingressclasses" => networking::ingress_class_problems(object),
        "networkpolicies" => networking::network_policy_problems(object),
        _ => Vec::new(),
    }
}

/// The pod template's spec of a workload; `names` as in [`pods::spec_problems`].
fn template_problems(object: &Value, names: bool) -> Vec<Cause> {
    object
        .pointer("/spec/template/spec")
        .map(|spec| pods::spec_problems(spec, "spec.template.spec", names))
        .unwrap_or_default()
}

/// The 422 for `causes`, if there are any.
fn refuse(resource: &ResourceInfo, object: &Value, causes: Vec<Cause>) -> ApiResult<()> {
    if causes.is_empty() {
        return Ok(());
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Err(ApiError::invalid_in(
        resource.group,
        resource.kind,
        name,
        &causes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;
    use serde_json::json;

    #[test]
    fn invalid_objects_get_kube_apiservers_422() {
        let maps = find("", "v1", "configmaps").unwrap();
        let error = validate_create(maps, &json!({"metadata": {"name": "a b"}})).unwrap_err();
        assert_eq!((error.code, error.reason), (422, "Invalid"));
        assert_eq!(
            error.message,
            "ConfigMap \"a b\" is invalid: metadata.name: Invalid value: \"a b\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        let details = error.details.unwrap();
        assert_eq!(details["causes"][0]["reason"], "FieldValueInvalid");
        assert_eq!(details["causes"][0]["field"], "metadata.name");
        assert!(validate_create(maps, &json!({"metadata": {"name": "c".repeat(253)}})).is_ok());
    }

    #[test]
    fn apps_kinds_are_qualified_and_events_keep_their_legacy_names() {
        let sets = find("apps", "v1", "statefulsets").unwrap();
        let set = json!({"metadata": {"name": "web"}, "spec": {
            "podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "OnDelete"},
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "nginx"}]}}}});
        let error = validate_create(sets, &set).unwrap_err();
        assert!(
            error
                .message
                .starts_with("StatefulSet.apps \"web\" is invalid: spec.template.metadata.labels")
        );
        assert_eq!(error.details.unwrap()["group"], "apps");
        let events = find("", "v1", "events").unwrap();
        assert!(validate_create(events, &json!({"metadata": {"name": "Pod.X_y"}})).is_ok());
        let new_events = find("events.k8s.io", "v1", "events").unwrap();
        assert!(validate_create(new_events, &json!({"metadata": {"name": "Pod.X_y"}})).is_err());
    }

    #[test]
    fn updates_check_metadata_and_what_may_change() {
        let maps = find("", "v1", "configmaps").unwrap();
        let old = json!({"metadata": {"name": "c"}});
        let new = json!({"metadata": {"name": "c", "labels": {"a b": "c"}}});
        let error = validate_update(maps, &old, &new).unwrap_err();
        assert!(
            error
                .message
                .starts_with("ConfigMap \"c\" is invalid: metadata.labels: Invalid value: \"a b\"")
        );
        let pods = find("", "v1", "pods").unwrap();
        let pod = |name: &str| json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": name, "image": "nginx"}]}});
        let error = validate_update(pods, &pod("a"), &pod("b")).unwrap_err();
        assert!(error.message.starts_with(
            "Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than"
        ));
    }
}
