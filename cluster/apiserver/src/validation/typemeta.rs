//! `apiVersion` and `kind` of a request body against the resource the URL names, as
//! kube-apiserver's decoding answers a mismatch (create.go / update.go: the body is decoded
//! with the URL's group, version and kind as defaults, converted to the internal type, and
//! its group version compared with the URL's).
//!
//! - missing fields take the URL's values (kubectl always sends them; curl users may not);
//! - a kind the scheme does not know in that version: `no kind "X" is registered for
//!   version "v9" in scheme "pkg/api/legacyscheme/scheme.go:30"`;
//! - a known kind of another type: the conversion to the URL's internal type fails,
//!   `converting (v1.Secret) to (core.ConfigMap): unknown conversion`;
//! - the same type in another version of the group (apps/v1beta2 StatefulSet):
//!   `the API version in the data (apps/v1beta2) does not match the expected API version
//!   (apps/v1)`.
//!
//! Server-side apply checks the applied object's type exactly instead (the field manager's
//! `invalid object type: apps/v1, Kind=Deployment`).

use serde_json::Value;

use super::field::quote;
use crate::errors::{ApiError, ApiResult};
use crate::registry::ResourceInfo;

/// The name kube-apiserver's scheme has in its errors (`runtime.NewScheme`'s call site, in
/// a release build).
const SCHEME: &str = "pkg/api/legacyscheme/scheme.go:30";

const CORE_V1: &[&str] = &[
    "Binding",
    "ComponentStatus",
    "ConfigMap",
    "Endpoints",
    "Event",
    "LimitRange",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Pod",
    "PodStatusResult",
    "PodTemplate",
    "RangeAllocation",
    "ReplicationController",
    "ResourceQuota",
    "Secret",
    "Service",
    "ServiceAccount",
];
const APPS_V1: &[&str] = &[
    "ControllerRevision",
    "DaemonSet",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
];
const APPS_V1BETA1: &[&str] = &["ControllerRevision", "Deployment", "Scale", "StatefulSet"];
const APPS_V1BETA2: &[&str] = &[
    "ControllerRevision",
    "DaemonSet",
    "Deployment",
    "ReplicaSet",
    "Scale",
    "StatefulSet",
];
const AUTHORIZATION: &[&str] = &[
    "LocalSubjectAccessReview",
    "SelfSubjectAccessReview",
    "SelfSubjectRulesReview",
    "SubjectAccessReview",
];
const BATCH_V1: &[&str] = &["CronJob", "Job"];
const BATCH_V1BETA1: &[&str] = &["CronJob"];
const EVENTS: &[&str] = &["Event"];
const NETWORKING_V1: &[&str] = &[
    "IPAddress",
    "Ingress",
    "IngressClass",
    "NetworkPolicy",
    "ServiceCIDR",
];
const NETWORKING_V1BETA1: &[&str] = &["IPAddress", "Ingress", "IngressClass", "ServiceCIDR"];
const LEASES: &[&str] = &["Lease"];
const SLICES: &[&str] = &["EndpointSlice"];
const STORAGE_V1: &[&str] = &[
    "CSIDriver",
    "CSINode",
    "CSIStorageCapacity",
    "StorageClass",
    "VolumeAttachment",
];

/// The kinds registered per group version, for the groups this server serves (their served
/// and older versions, as kube-apiserver 1.33 registers them).
const REGISTERED: &[(&str, &str, &[&str])] = &[
    ("", "v1", CORE_V1),
    ("apps", "v1", APPS_V1),
    ("apps", "v1beta1", APPS_V1BETA1),
    ("apps", "v1beta2", APPS_V1BETA2),
    ("authorization.k8s.io", "v1", AUTHORIZATION),
    ("authorization.k8s.io", "v1beta1", AUTHORIZATION),
    ("batch", "v1", BATCH_V1),
    ("batch", "v1beta1", BATCH_V1BETA1),
    ("events.k8s.io", "v1", EVENTS),
    ("events.k8s.io", "v1beta1", EVENTS),
    ("coordination.k8s.io", "v1", LEASES),
    ("coordination.k8s.io", "v1beta1", LEASES),
    ("discovery.k8s.io", "v1", SLICES),
    ("discovery.k8s.io", "v1beta1", SLICES),
    ("networking.k8s.io", "v1", NETWORKING_V1),
    ("networking.k8s.io", "v1beta1", NETWORKING_V1BETA1),
    ("storage.k8s.io", "v1", STORAGE_V1),
    ("storage.k8s.io", "v1beta1", STORAGE_V1),
];

/// The Go package of the internal type of `kind` in `group`: what a conversion error names
/// (`core.ConfigMap`). events.k8s.io Events are core Events inside the server.
fn internal_package(group: &str, kind: &str) -> &'static str {
    match (group, kind) {
        ("" | "events.k8s.io", _) => "core",
        ("apps", _) => "apps",
        ("authorization.k8s.io", _) => "authorization",
        ("batch", _) => "batch",
        ("networking.k8s.io", _) => "networking",
        ("coordination.k8s.io", _) => "coordination",
        ("discovery.k8s.io", _) => "discovery",
        _ => "storage",
    }
}

fn is_registered(group: &str, version: &str, kind: &str) -> bool {
    REGISTERED
        .iter()
        .any(|(g, v, kinds)| *g == group && *v == version && kinds.contains(&kind))
}

/// A group version as apimachinery prints it: `v1`, `apps/v1`.
fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// The decoding error of a body whose `apiVersion`/`kind` do not name `resource`'s type, or
/// `Ok` when they do (or are missing). `body` is the raw request body, which some of
/// upstream's messages quote.
pub fn check_body(resource: &ResourceInfo, object: &Value, body: &[u8]) -> ApiResult<()> {
    let (url_group, url_version, url_kind) = (resource.group, resource.version, resource.kind);
    let unrecognized = |cause: String| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {url_kind}): {cause} ({})",
            summarize(body)
        ))
    };
    let api_version = text_field(object, "apiVersion").map_err(unrecognized)?;
    let kind = text_field(object, "kind").map_err(unrecognized)?;
    // `schema.ParseGroupVersion`.
    let (mut group, mut version) = match api_version.matches('/').count() {
        _ if api_version.is_empty() || api_version == "/" => ("", ""),
        0 => ("", api_version),
        1 => api_version.split_once('/').unwrap_or_default(),
        _ => {
            return Err(unrecognized(format!(
                "unexpected GroupVersion string: {api_version}"
            )));
        }
    };
    // `gvkWithDefaults`: the URL's values fill what the body leaves out.
    let kind = if kind.is_empty() { url_kind } else { kind };
    if version.is_empty() && group.is_empty() {
        (group, version) = (url_group, url_version);
    }
    if version.is_empty() && group == url_group {
        version = url_version;
    }
    let cannot_handle = |cause: String| {
        ApiError::bad_request(format!(
            "{kind} in version {} cannot be handled as a {url_kind}: {cause}",
            quote(version)
        ))
    };
    if version.is_empty() {
        return Err(cannot_handle(format!(
            "Object 'apiVersion' is missing in '{}'",
            String::from_utf8_lossy(body)
        )));
    }
    if (group, version, kind) == (url_group, url_version, url_kind) {
        return Ok(());
    }
    if !is_registered(group, version, kind) {
        return Err(cannot_handle(format!(
            "no kind {} is registered for version {} in scheme {}",
            quote(kind),
            quote(&group_version(group, version)),
            quote(SCHEME)
        )));
    }
    let target = internal_package(url_group, url_kind);
    if kind != url_kind || internal_package(group, kind) != target {
        return Err(cannot_handle(format!(
            "converting ({version}.{kind}) to ({target}.{url_kind}): unknown conversion"
        )));
    }
    Err(ApiError::bad_request(format!(
        "the API version in the data ({}) does not match the expected API version ({})",
        group_version(group, version),
        group_version(url_group, url_version)
    )))
}

/// A string field of the body, "" when absent or null; anything else fails as Go's
/// `json.Unmarshal` into a string field does.
fn text_field<'a>(object: &'a Value, key: &str) -> Result<&'a str, String> {
    let found = match object.get(key) {
        None | Some(Value::Null) => return Ok(""),
        Some(Value::String(text)) => return Ok(text),
        Some(Value::Number(_)) => "number",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    };
    Err(format!(
        "couldn't get version/kind; json parse error: json: cannot unmarshal {found} into Go struct field .{key} of type string"
    ))
}

/// `summarizeData(body, 30)`: the start of a JSON body, or of any other body in hex.
fn summarize(body: &[u8]) -> String {
    const MAX: usize = 30;
    let short = &body[..body.len().min(MAX)];
    let more = if body.len() > MAX { " ..." } else { "" };
    match body.first() {
        None => "<empty>".to_string(),
        Some(b'{') => format!("{}{more}", String::from_utf8_lossy(short)),
        Some(_) => {
            let hex: String = short.iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex}{more}")
        }
    }
}

/// Server-side apply's check (the field manager's `versionCheckManager`): the applied
/// object must say exactly the URL's group, version and kind.
pub fn check_applied(resource: &ResourceInfo, applied: &Value) -> ApiResult<()> {
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = applied
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (group, version) = match api_version.matches('/').count() {
        0 => ("", api_version),
        1 => api_version.split_once('/').unwrap_or_default(),
        _ => ("", ""),
    };
    if (group, version, kind) == (resource.group, resource.version, resource.kind) {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "invalid object type: {group}/{version}, Kind={kind}"
    )))
}

#[cfg(test)]
#[path = "typemeta_tests.rs"]
mod tests;
