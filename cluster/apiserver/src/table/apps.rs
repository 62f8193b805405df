//! Printers of the apps/v1 workloads, ported from kube-apiserver's printers.go.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::Doc::{Field, Text};
use super::{
    AGE, CONTAINERS, Column, IMAGES, NAME, Printed, age, column, container_cells,
    format_label_selector, name, selector_string, wide,
};

/// `spec.replicas`, 1 when unset (the API server's default).
fn desired(object: &Value) -> i64 {
    object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn status(object: &Value, field: &str) -> i64 {
    object["status"][field].as_i64().unwrap_or_default()
}

pub(super) const STATEFUL_SET_COLUMNS: &[Column] = &[
    NAME,
    column(
        "Ready",
        "string",
        Text("Number of the pod with ready state"),
    ),
    AGE,
    CONTAINERS,
    IMAGES,
];

pub(super) fn print_stateful_set(set: &Value, now: Timestamp) -> Printed {
    let [names, images] = container_cells(set);
    let ready = format!("{}/{}", status(set, "readyReplicas"), desired(set));
    vec![name(set), json!(ready), age(set, now), names, images].into()
}

pub(super) const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    column("Desired", "integer", Field("ReplicaSetSpec.replicas")),
    column("Current", "integer", Field("ReplicaSetStatus.replicas")),
    column("Ready", "integer", Field("ReplicaSetStatus.readyReplicas")),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", Field("ReplicaSetSpec.selector")),
];

pub(super) fn print_replica_set(set: &Value, now: Timestamp) -> Printed {
    let [names, images] = container_cells(set);
    vec![
        name(set),
        json!(desired(set)),
        json!(status(set, "replicas")),
        json!(status(set, "readyReplicas")),
        age(set, now),
        names,
        images,
        json!(format_label_selector(set.pointer("/spec/selector"))),
    ]
    .into()
}

pub(super) const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    column(
        "Ready",
        "string",
        Text("Number of the pod with ready state"),
    ),
    column(
        "Up-to-date",
        "string",
        Field("DeploymentStatus.updatedReplicas"),
    ),
    column(
        "Available",
        "string",
        Field("DeploymentStatus.availableReplicas"),
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", Field("DeploymentSpec.selector")),
];

pub(super) fn print_deployment(deployment: &Value, now: Timestamp) -> Printed {
    let [names, images] = container_cells(deployment);
    let ready = format!(
        "{}/{}",
        status(deployment, "readyReplicas"),
        desired(deployment)
    );
    vec![
        name(deployment),
        json!(ready),
        json!(status(deployment, "updatedReplicas")),
        json!(status(deployment, "availableReplicas")),
        age(deployment, now),
        names,
        images,
        json!(selector_string(deployment.pointer("/spec/selector"))),
    ]
    .into()
}

pub(super) const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME,
    column("Controller", "string", Text("Controller of the object")),
    column("Revision", "string", Field("ControllerRevision.revision")),
    AGE,
];

/// NAME CONTROLLER REVISION AGE; the controller as `statefulset.apps/web` (upstream's
/// `formatResourceName` of the controller reference's group and kind), `<none>` without one.
pub(super) fn print_controller_revision(revision: &Value, now: Timestamp) -> Printed {
    let owners = revision
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array);
    let controller = owners
        .into_iter()
        .flatten()
        .find(|owner| owner["controller"].as_bool() == Some(true))
        .map_or_else(|| "<none>".to_string(), controller_name);
    vec![
        name(revision),
        json!(controller),
        json!(revision["revision"].as_i64().unwrap_or_default()),
        age(revision, now),
    ]
    .into()
}

/// `kind.group/name` in lower case (`statefulset.apps/web`), or `kind/name` for the core group.
fn controller_name(owner: &Value) -> String {
    let kind = owner["kind"].as_str().unwrap_or_default();
    let group = owner["apiVersion"]
        .as_str()
        .and_then(|api_version| api_version.split_once('/'))
        .map(|(group, _)| group)
        .unwrap_or_default();
    let name = owner["name"].as_str().unwrap_or_default();
    if group.is_empty() {
        format!("{}/{name}", kind.to_lowercase())
    } else {
        format!("{}.{group}/{name}", kind.to_lowercase())
    }
}
