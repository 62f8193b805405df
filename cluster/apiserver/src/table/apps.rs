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
