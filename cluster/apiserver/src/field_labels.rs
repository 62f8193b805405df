//! The field labels a field selector may name, per kind: the field-label conversion
//! functions of kube-apiserver 1.33's schemes (pkg/apis/core/v1/conversion.go, apps/v1's
//! for ReplicaSets), and apimachinery's `DefaultMetaV1FieldSelectorConversion` for every
//! kind without one. A list or watch naming another field is a 400 with their words.

use crate::errors::{ApiError, ApiResult};
use crate::registry::ResourceInfo;

/// The labels of the kinds that register a conversion function; None for the others.
fn registered(resource: &ResourceInfo) -> Option<&'static [&'static str]> {
    const META: [&str; 2] = ["metadata.name", "metadata.namespace"];
    Some(match (resource.group, resource.plural) {
        ("", "pods") => &[
            META[0],
            META[1],
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ("", "nodes") => &["metadata.name", "spec.unschedulable"],
        ("", "events") | ("events.k8s.io", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            META[1],
            META[0],
        ],
        ("", "namespaces") => &["status.phase", "metadata.name"],
        ("", "secrets") => &["type", META[1], META[0]],
        ("", "services") => &[META[1], META[0], "spec.clusterIP", "spec.type"],
        ("apps", "replicasets") => &[META[0], META[1], "status.replicas"],
        _ => return None,
    })
}

/// Refuses a field selector label `resource` does not support, as its conversion does.
pub fn check(resource: &ResourceInfo, label: &str) -> ApiResult<()> {
    match registered(resource) {
        Some(labels) if labels.contains(&label) => Ok(()),
        Some(_) => Err(ApiError::bad_request(format!(
            "field label not supported: {label}"
        ))),
        None if matches!(label, "metadata.name" | "metadata.namespace") => Ok(()),
        None => Err(ApiError::bad_request(format!(
            "{label:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        ))),
    }
}
