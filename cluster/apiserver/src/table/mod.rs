//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` asks for, with the
//! columns and cell texts of kube-apiserver's printers (pkg/printers/internalversion), so
//! that kubectl's output against the embedded cluster reads exactly as against a real one.
//!
//! The server always prints the wide columns (priority 1); kubectl hides them unless
//! `-o wide`. Each row carries the object's metadata (`includeObject=Metadata`, the default),
//! which kubectl needs for `-A` (namespace column) and `--show-labels`; `--sort-by` asks for
//! the whole object (`includeObject=Object`).

mod apps;
mod batch;
mod core;
mod descriptions;
mod duration;
mod networking;
mod pod;
mod storage;

use jiff::Timestamp;
use serde_json::{Value, json};

use duration::human_duration;

/// True when the Accept header asks for a meta.k8s.io Table (as kubectl get does).
///
/// Like kube-apiserver's content negotiation, the first media type the server can produce
/// wins: kubectl lists the Table types first, then `application/json` as a fallback.
pub fn wants_table(headers: &http::HeaderMap) -> bool {
    for accept in headers.get_all(http::header::ACCEPT) {
        let Ok(accept) = accept.to_str() else {
            continue;
        };
        for media_type in accept.split(',') {
            let mut parts = media_type.split(';').map(str::trim);
            let essence = parts.next().unwrap_or_default().to_ascii_lowercase();
            let (mut as_kind, mut group, mut version) = (None, None, None);
            for parameter in parts {
                match parameter.split_once('=') {
                    Some(("as", value)) => as_kind = Some(value),
                    Some(("g", value)) => group = Some(value),
                    Some(("v", value)) => version = Some(value),
                    _ => {}
                }
            }
            if !matches!(
                essence.as_str(),
                "application/json" | "application/*" | "*/*"
            ) {
                continue;
            }
            match as_kind {
                None => return false,
                Some("Table") => {
                    if group == Some("meta.k8s.io") && matches!(version, Some("v1" | "v1beta1")) {
                        return true;
                    }
                }
                Some(_) => {}
            }
        }
    }
    false
}

/// A meta.k8s.io/v1 Table for a list of objects of `resource` (plural, e.g. "pods");
/// `include_object` is the includeObject query value (None/Metadata/Object).
///
/// For a single object (`kubectl get pod web-0`) pass a one-element slice and the object's
/// resourceVersion; for a watch, one table per event.
pub fn to_table(
    resource: &str,
    objects: &[Value],
    list_resource_version: &str,
    include_object: Option<&str>,
) -> Value {
    table_at(
        resource,
        objects,
        list_resource_version,
        include_object,
        Timestamp::now(),
    )
}

/// [`to_table`] as seen at `now` (the ages are relative to it).
fn table_at(
    resource: &str,
    objects: &[Value],
    list_resource_version: &str,
    include_object: Option<&str>,
    now: Timestamp,
) -> Value {
    let printer = printer_for(resource);
    let columns: Vec<Value> = printer
        .columns
        .iter()
        .map(|column| {
            json!({
                "name": column.name,
                "type": column.kind,
                "format": column.format,
                "description": column.description(),
                "priority": column.priority,
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let printed = (printer.print)(object, now);
            let mut row = json!({ "cells": printed.cells });
            if !printed.conditions.is_empty() {
                row["conditions"] = Value::Array(printed.conditions);
            }
            row["object"] = row_object(object, include_object);
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": { "resourceVersion": list_resource_version },
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// What a row carries besides its cells, per `includeObject`.
fn row_object(object: &Value, include_object: Option<&str>) -> Value {
    match include_object {
        Some("Object") => object.clone(),
        Some("None") => Value::Null,
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

/// One column of a table: `kind` is the OpenAPI type ("string", "integer", "date",
/// "boolean"); `doc` names the documented field whose text describes it, or is the text.
struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    priority: u8,
    doc: Doc,
}

enum Doc {
    /// `Type.field` of the API documentation.
    Field(&'static str),
    /// A description written in the printer itself.
    Text(&'static str),
}

impl Column {
    fn description(&self) -> &'static str {
        match self.doc {
            Doc::Field(field) => descriptions::field_doc(field),
            Doc::Text(text) => text,
        }
    }
}

const fn column(name: &'static str, kind: &'static str, doc: Doc) -> Column {
    Column {
        name,
        kind,
        format: "",
        priority: 0,
        doc,
    }
}

const fn wide(name: &'static str, kind: &'static str, doc: Doc) -> Column {
    Column {
        name,
        kind,
        format: "",
        priority: 1,
        doc,
    }
}

const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    priority: 0,
    doc: Doc::Field("ObjectMeta.name"),
};
const AGE: Column = column("Age", "string", Doc::Field("ObjectMeta.creationTimestamp"));
/// The wide columns of workloads with a pod template.
const CONTAINERS: Column = wide(
    "Containers",
    "string",
    Doc::Text("Names of each container in the template."),
);
const IMAGES: Column = wide(
    "Images",
    "string",
    Doc::Text("Images referenced by each container in the template."),
);

/// The cells of one row, and the row conditions (pods: Completed).
struct Printed {
    cells: Vec<Value>,
    conditions: Vec<Value>,
}

impl From<Vec<Value>> for Printed {
    fn from(cells: Vec<Value>) -> Self {
        Printed {
            cells,
            conditions: Vec::new(),
        }
    }
}

/// Prints one object's row as seen at a moment (ages are relative to it).
type PrintRow = fn(&Value, Timestamp) -> Printed;

struct Printer {
    columns: &'static [Column],
    print: PrintRow,
}

fn printer_for(resource: &str) -> Printer {
    let (columns, print): (&'static [Column], PrintRow) = match resource {
        "pods" => (pod::POD_COLUMNS, pod::print_pod),
        "services" => (core::SERVICE_COLUMNS, core::print_service),
        "endpoints" => (core::ENDPOINTS_COLUMNS, core::print_endpoints),
        "endpointslices" => (core::ENDPOINT_SLICE_COLUMNS, core::print_endpoint_slice),
        "namespaces" => (core::NAMESPACE_COLUMNS, core::print_namespace),
        "nodes" => (core::NODE_COLUMNS, core::print_node),
        "events" => (core::EVENT_COLUMNS, core::print_event),
        "configmaps" => (core::CONFIG_MAP_COLUMNS, core::print_config_map),
        "secrets" => (core::SECRET_COLUMNS, core::print_secret),
        "serviceaccounts" => (core::SERVICE_ACCOUNT_COLUMNS, core::print_service_account),
        "statefulsets" => (apps::STATEFUL_SET_COLUMNS, apps::print_stateful_set),
        "replicasets" => (apps::REPLICA_SET_COLUMNS, apps::print_replica_set),
        "deployments" => (apps::DEPLOYMENT_COLUMNS, apps::print_deployment),
        "controllerrevisions" => (
            apps::CONTROLLER_REVISION_COLUMNS,
            apps::print_controller_revision,
        ),
        "jobs" => (batch::JOB_COLUMNS, batch::print_job),
        "cronjobs" => (batch::CRON_JOB_COLUMNS, batch::print_cron_job),
        "persistentvolumes" => (storage::PV_COLUMNS, storage::print_pv),
        "persistentvolumeclaims" => (storage::PVC_COLUMNS, storage::print_pvc),
        "storageclasses" => (storage::STORAGE_CLASS_COLUMNS, storage::print_storage_class),
        "ingresses" => (networking::INGRESS_COLUMNS, networking::print_ingress),
        "ingressclasses" => (
            networking::INGRESS_CLASS_COLUMNS,
            networking::print_ingress_class,
        ),
        "networkpolicies" => (
            networking::NETWORK_POLICY_COLUMNS,
            networking::print_network_policy,
        ),
        _ => (DEFAULT_COLUMNS, print_default),
    };
    Printer { columns, print }
}

/// The default table convertor of kube-apiserver, for resources without a printer.
const DEFAULT_COLUMNS: &[Column] = &[
    NAME,
    column(
        "Created At",
        "date",
        Doc::Field("ObjectMeta.creationTimestamp"),
    ),
];

fn print_default(object: &Value, _now: Timestamp) -> Printed {
    let created = timestamp(object, "/metadata/creationTimestamp")
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![json!(text(object, "/metadata/name")), json!(created)].into()
}

/// The string at a JSON pointer, "" when absent.
fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The string at a JSON pointer, or `fallback` when absent or empty.
fn text_or<'a>(object: &'a Value, pointer: &str, fallback: &'a str) -> &'a str {
    match text(object, pointer) {
        "" => fallback,
        value => value,
    }
}

fn int(object: &Value, pointer: &str) -> i64 {
    object
        .pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or_default()
}

fn array<'a>(object: &'a Value, pointer: &str) -> &'a [Value] {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn timestamp(object: &Value, pointer: &str) -> Option<Timestamp> {
    text(object, pointer).parse::<Timestamp>().ok()
}

/// `translateTimestampSince`: the age of a timestamp, "<unknown>" when it is not set.
fn since(object: &Value, pointer: &str, now: Timestamp) -> String {
    match timestamp(object, pointer) {
        Some(then) => human_duration(now.duration_since(then)),
        None => "<unknown>".to_string(),
    }
}

fn age(object: &Value, now: Timestamp) -> Value {
    json!(since(object, "/metadata/creationTimestamp", now))
}

fn name(object: &Value) -> Value {
    json!(text(object, "/metadata/name"))
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, "<none>" when empty.
fn format_labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".to_string()
    } else {
        pairs.join(",")
    }
}

/// `metav1.LabelSelectorAsSelector(..).String()`: requirements sorted by key.
fn selector_string(selector: Option<&Value>) -> String {
    let Some(selector) = selector.filter(|s| s.is_object()) else {
        return String::new();
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector["matchLabels"].as_object() {
        for (key, value) in labels {
            let value = value.as_str().unwrap_or_default();
            requirements.push((key.clone(), format!("{key}={value}")));
        }
    }
    for expression in array(selector, "/matchExpressions") {
        let key = text(expression, "/key");
        let mut values: Vec<&str> = array(expression, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        values.dedup();
        let rendered = match text(expression, "/operator") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return "<error>".to_string(),
        };
        requirements.push((key.to_string(), rendered));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    requirements
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.FormatLabelSelector`: the selector, or "<none>".
fn format_label_selector(selector: Option<&Value>) -> String {
    match selector_string(selector) {
        s if s.is_empty() => "<none>".to_string(),
        s => s,
    }
}

/// `layoutContainerCells`: container names and images of a pod template, comma-separated.
fn container_cells(object: &Value) -> [Value; 2] {
    let containers = array(object, "/spec/template/spec/containers");
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    [json!(names.join(",")), json!(images.join(","))]
}

/// `listWithMoreString`: at most three items, then "+ N more...".
fn list_with_more(items: &[String], empty: &str) -> String {
    const MAX: usize = 3;
    if items.len() > MAX {
        format!("{} + {} more...", items[..MAX].join(","), items.len() - MAX)
    } else if items.is_empty() {
        empty.to_string()
    } else {
        items.join(",")
    }
}

#[cfg(test)]
mod tests;
