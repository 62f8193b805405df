//! `metrics.k8s.io/v1beta1`, the Metrics API that `kubectl top` reads, served here as
//! metrics-server serves it on a cluster where it is installed (its `pkg/api`): PodMetrics
//! and NodeMetrics, read-only (get and list), never stored. The readings come from the nodes
//! (their containers' cgroups, sampled on a period, see `k8s_labs_node::metrics`) through
//! [`k8s_labs_node_api::NodeConnection::metrics`]; the pods and nodes they belong to come from
//! the store, so that label and field selectors, labels and names are the API's.
//!
//! As with metrics-server, a pod (or node) whose readings do not exist yet is left out of a
//! list, and a GET of it is a 404 for `podmetrics.metrics.k8s.io "ns/name"`; a GET of a pod
//! that does not exist is the pods' own 404. CPU is in nanocores (`"1234567n"`), memory in
//! bytes written as the binary quantity Go's `resource.Quantity` writes (`"12345Ki"`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use axum::response::Response;
use http::{HeaderMap, Method, StatusCode};
use k8s_labs_node_api::{NodeMetrics, NodeUsage, PodUsage, Usage};
use serde::Serialize;
use serde_json::{Value, json};

use crate::context::{Query, Shared, Target, str_at};
use crate::errors::{ApiError, ApiResult, json_response};
use crate::paging::options::decode_selectors;

pub use crate::registry::METRICS_GROUP as GROUP;
const API_VERSION: &str = "metrics.k8s.io/v1beta1";

/// `metadata` of a PodMetrics or NodeMetrics: the pod's or node's name, namespace and
/// labels, created when answered (metrics-server's `CreationTimestamp: time.Now()`).
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    creation_timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Value>,
}

/// `cpu` and `memory` as quantities.
#[derive(Debug, Serialize, PartialEq)]
struct ResourceList {
    cpu: String,
    memory: String,
}

#[derive(Debug, Serialize, PartialEq)]
struct ContainerMetrics {
    name: String,
    usage: ResourceList,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct PodMetrics {
    kind: &'static str,
    api_version: &'static str,
    metadata: Metadata,
    timestamp: String,
    window: String,
    containers: Vec<ContainerMetrics>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct NodeMetricsObject {
    kind: &'static str,
    api_version: &'static str,
    metadata: Metadata,
    timestamp: String,
    window: String,
    usage: ResourceList,
}

/// GET of `pods`, `pods/{name}`, `nodes` or `nodes/{name}` of the Metrics API; any other
/// verb is a 405, as metrics-server's read-only storage answers it.
pub fn serve(
    state: &Shared,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    method: &Method,
) -> ApiResult<Response> {
    if *method != Method::GET
        || target.subresource.is_some()
        || target.watch_path
        || query.flag("watch")
    {
        return Err(ApiError::method_not_allowed());
    }
    let now = SystemTime::now();
    let (objects, single) = match (target.resource.plural, &target.name) {
        ("pods", None) => (list_pods(state, target, query, now)?, false),
        ("pods", Some(name)) => (
            vec![get_pod(state, target.store_namespace(), name, now)?],
            true,
        ),
        (_, None) => (list_nodes(state, target, query, now)?, false),
        (_, Some(name)) => (vec![get_node(state, name, now)?], true),
    };
    if crate::table::wants_table(headers) {
        let table = table(target.resource.plural, &objects, query.get("includeObject"));
        return Ok(json_response(StatusCode::OK, &table));
    }
    if single {
        let object = objects.into_iter().next().unwrap_or_default();
        return Ok(json_response(StatusCode::OK, &object));
    }
    let list = json!({
        "kind": target.resource.list_kind(),
        "apiVersion": API_VERSION,
        "metadata": {},
        "items": objects,
    });
    Ok(json_response(StatusCode::OK, &list))
}

/// Every node's readings, by node name, asked once per node.
fn readings(
    state: &Shared,
    node_names: impl IntoIterator<Item = String>,
) -> HashMap<String, NodeMetrics> {
    let mut readings = HashMap::new();
    for node in node_names {
        if readings.contains_key(&node) {
            continue;
        }
        let metrics = state
            .nodes
            .get(&node)
            .map(|connection| connection.metrics())
            .unwrap_or_default();
        readings.insert(node, metrics);
    }
    readings
}

fn node_name(pod: &Value) -> Option<String> {
    str_at(pod, "/spec/nodeName")
        .filter(|name| !name.is_empty())
        .map(str::to_string)
}

/// The PodMetrics of `pods` that have readings, sorted by namespace and name.
fn pod_metrics(state: &Shared, pods: &[Value], now: SystemTime) -> Vec<Value> {
    let readings = readings(state, pods.iter().filter_map(node_name));
    let mut objects: Vec<(String, String, Value)> = pods
        .iter()
        .filter_map(|pod| {
            let namespace = str_at(pod, "/metadata/namespace")?;
            let name = str_at(pod, "/metadata/name")?;
            let node = readings.get(&node_name(pod)?)?;
            let usage = node
                .pods
                .iter()
                .find(|usage| usage.namespace == namespace && usage.name == name)?;
            let object = pod_object(pod, usage, now);
            Some((namespace.to_string(), name.to_string(), to_json(&object)))
        })
        .collect();
    objects.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    objects.into_iter().map(|(_, _, object)| object).collect()
}

fn list_pods(
    state: &Shared,
    target: &Target,
    query: &Query,
    now: SystemTime,
) -> ApiResult<Vec<Value>> {
    let pods_resource =
        crate::registry::find("", "v1", "pods").ok_or_else(ApiError::path_not_found)?;
    let (labels, fields) = decode_selectors(query, pods_resource)?;
    let (pods, _) = state
        .store
        .list(pods_resource.store_key(), target.namespace.as_deref());
    let pods: Vec<Value> = pods
        .into_iter()
        .filter(|pod| labels.matches(pod) && fields.matches(pod))
        .collect();
    Ok(pod_metrics(state, &pods, now))
}

fn get_pod(state: &Shared, namespace: &str, name: &str, now: SystemTime) -> ApiResult<Value> {
    let pod = state
        .store
        .get("/pods", namespace, name)
        .ok_or_else(|| ApiError::not_found("pods", name))?;
    pod_metrics(state, std::slice::from_ref(&pod), now)
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApiError::not_found("podmetrics.metrics.k8s.io", &format!("{namespace}/{name}"))
        })
}

/// The NodeMetrics of `nodes` that have readings, sorted by name.
fn node_metrics(state: &Shared, nodes: &[Value], now: SystemTime) -> Vec<Value> {
    let mut objects: Vec<(String, Value)> = nodes
        .iter()
        .filter_map(|node| {
            let name = str_at(node, "/metadata/name")?;
            let usage = state.nodes.get(name)?.metrics().node?;
            Some((name.to_string(), to_json(&node_object(node, &usage, now))))
        })
        .collect();
    objects.sort_by(|a, b| a.0.cmp(&b.0));
    objects.into_iter().map(|(_, object)| object).collect()
}

fn list_nodes(
    state: &Shared,
    _target: &Target,
    query: &Query,
    now: SystemTime,
) -> ApiResult<Vec<Value>> {
    let nodes_resource =
        crate::registry::find("", "v1", "nodes").ok_or_else(ApiError::path_not_found)?;
    let (labels, fields) = decode_selectors(query, nodes_resource)?;
    let (nodes, _) = state.store.list(nodes_resource.store_key(), None);
    let nodes: Vec<Value> = nodes
        .into_iter()
        .filter(|node| labels.matches(node) && fields.matches(node))
        .collect();
    Ok(node_metrics(state, &nodes, now))
}

fn get_node(state: &Shared, name: &str, now: SystemTime) -> ApiResult<Value> {
    let node = state
        .store
        .get("/nodes", "", name)
        .ok_or_else(|| ApiError::not_found("nodes", name))?;
    node_metrics(state, std::slice::from_ref(&node), now)
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("nodemetrics.metrics.k8s.io", name))
}

fn to_json<T: Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or_default()
}

fn metadata(object: &Value, namespaced: bool, now: SystemTime) -> Metadata {
    Metadata {
        name: str_at(object, "/metadata/name")
            .unwrap_or_default()
            .to_string(),
        namespace: namespaced.then(|| {
            str_at(object, "/metadata/namespace")
                .unwrap_or_default()
                .to_string()
        }),
        creation_timestamp: rfc3339(now),
        labels: object
            .pointer("/metadata/labels")
            .filter(|labels| labels.as_object().is_some_and(|l| !l.is_empty()))
            .cloned(),
    }
}

fn resource_list(usage: &Usage) -> ResourceList {
    ResourceList {
        cpu: nanocores(usage.cpu_nanocores),
        memory: binary_bytes(usage.memory_bytes),
    }
}

fn pod_object(pod: &Value, usage: &PodUsage, now: SystemTime) -> PodMetrics {
    PodMetrics {
        kind: "PodMetrics",
        api_version: API_VERSION,
        metadata: metadata(pod, true, now),
        timestamp: rfc3339(usage.timestamp),
        window: go_duration(usage.window),
        containers: usage
            .containers
            .iter()
            .map(|container| ContainerMetrics {
                name: container.name.clone(),
                usage: resource_list(&container.usage),
            })
            .collect(),
    }
}

fn node_object(node: &Value, usage: &NodeUsage, now: SystemTime) -> NodeMetricsObject {
    NodeMetricsObject {
        kind: "NodeMetrics",
        api_version: API_VERSION,
        metadata: metadata(node, false, now),
        timestamp: rfc3339(usage.timestamp),
        window: go_duration(usage.window),
        usage: resource_list(&usage.usage),
    }
}

/// A `metav1.Time`: RFC 3339 in UTC, whole seconds.
fn rfc3339(time: SystemTime) -> String {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    jiff::Timestamp::from_second(i64::try_from(seconds).unwrap_or(0))
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// CPU as metrics-server writes it, `resource.NewScaledQuantity(nanocores, -9)`: Go's
/// canonical decimal form, the largest of n, u, m or whole cores that keeps it an integer.
pub fn nanocores(nanocores: u64) -> String {
    if nanocores == 0 {
        return "0".to_string();
    }
    let mut value = nanocores;
    for suffix in ["n", "u", "m"] {
        if !value.is_multiple_of(1000) {
            return format!("{value}{suffix}");
        }
        value /= 1000;
    }
    value.to_string()
}

/// Memory as metrics-server writes it, `resource.NewQuantity(bytes, resource.BinarySI)`: in
/// the largest of Ki, Mi, Gi, Ti, Pi, Ei that divides it, or plain bytes when 1024 does not.
pub fn binary_bytes(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_string();
    }
    let mut value = bytes;
    let mut suffix = "";
    for next in ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"] {
        if !value.is_multiple_of(1024) {
            break;
        }
        value /= 1024;
        suffix = next;
    }
    format!("{value}{suffix}")
}

/// A `metav1.Duration`: Go's `time.Duration.String()` ("15.012s", "1m0.5s", "850ms").
pub fn go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        let (unit, scale) = if nanos < 1_000 {
            ("ns", 1)
        } else if nanos < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!(
            "{}{unit}",
            with_fraction(nanos / scale, nanos % scale, scale)
        );
    }
    let seconds = nanos / 1_000_000_000;
    let (hours, minutes, secs) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut text = String::new();
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    text.push_str(&with_fraction(secs, nanos % 1_000_000_000, 1_000_000_000));
    text.push('s');
    text
}

/// `whole.fraction` with the fraction's trailing zeros dropped (none at all when it is 0).
fn with_fraction(whole: u128, fraction: u128, scale: u128) -> String {
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = scale.to_string().len() - 1;
    let fraction = format!("{fraction:0digits$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// metrics-server's Table (`addPodMetricsToTable`, `addNodeMetricsToTable`): the name, then
/// one column per resource (cpu, memory: their names sorted) and the window. A pod's cells
/// are the sums over its containers.
fn table(plural: &str, objects: &[Value], include_object: Option<&str>) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let (cpu, memory) = if plural == "pods" {
                let containers = object["containers"].as_array().cloned().unwrap_or_default();
                let sum = |resource: &str, parse: fn(&str) -> u64| {
                    containers
                        .iter()
                        .map(|c| parse(c["usage"][resource].as_str().unwrap_or("0")))
                        .sum::<u64>()
                };
                (
                    nanocores(sum("cpu", parse_nanocores)),
                    binary_bytes(sum("memory", parse_bytes)),
                )
            } else {
                (
                    object["usage"]["cpu"].as_str().unwrap_or("0").to_string(),
                    object["usage"]["memory"]
                        .as_str()
                        .unwrap_or("0")
                        .to_string(),
                )
            };
            let name = object["metadata"]["name"].clone();
            let row_object = match include_object {
                Some("Object") => object.clone(),
                Some("None") => Value::Null,
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": object["metadata"].clone(),
                }),
            };
            json!({
                "cells": [name, cpu, memory, object["window"].clone()],
                "object": row_object,
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [
            { "name": "Name", "type": "string", "format": "name", "description": "Name of the resource", "priority": 0 },
            { "name": "cpu", "type": "string", "format": "quantity", "description": "", "priority": 0 },
            { "name": "memory", "type": "string", "format": "quantity", "description": "", "priority": 0 },
            { "name": "Window", "type": "string", "format": "duration", "description": "", "priority": 0 },
        ],
        "rows": rows,
    })
}

/// Back from [`nanocores`].
fn parse_nanocores(text: &str) -> u64 {
    let (digits, scale) = match text.char_indices().last() {
        Some((at, 'n')) => (&text[..at], 1),
        Some((at, 'u')) => (&text[..at], 1_000),
        Some((at, 'm')) => (&text[..at], 1_000_000),
        _ => (text, 1_000_000_000),
    };
    digits.parse::<u64>().unwrap_or(0).saturating_mul(scale)
}

/// Back from [`binary_bytes`].
fn parse_bytes(text: &str) -> u64 {
    let units = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    for (index, unit) in units.iter().enumerate() {
        if let Some(digits) = text.strip_suffix(unit) {
            return digits.parse::<u64>().unwrap_or(0) << (10 * (index + 1));
        }
    }
    text.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_labs_node_api::ContainerUsage;

    #[test]
    fn cpu_is_written_in_go_canonical_decimal_form() {
        assert_eq!(nanocores(0), "0");
        assert_eq!(nanocores(1_234_567), "1234567n");
        assert_eq!(nanocores(250_000_000), "250m");
        assert_eq!(nanocores(1_500_000), "1500u");
        assert_eq!(nanocores(2_000_000_000), "2");
        for value in [1, 1_234_567, 250_000_000, 1_500_000, 2_000_000_000] {
            assert_eq!(parse_nanocores(&nanocores(value)), value);
        }
    }

    #[test]
    fn memory_is_written_in_the_largest_binary_unit_that_divides_it() {
        assert_eq!(binary_bytes(0), "0");
        assert_eq!(binary_bytes(12_345 * 1024), "12345Ki");
        assert_eq!(binary_bytes(60 << 20), "60Mi");
        assert_eq!(binary_bytes(1500), "1500");
        assert_eq!(binary_bytes(3 << 30), "3Gi");
        for value in [1500, 12_345 * 1024, 60 << 20] {
            assert_eq!(parse_bytes(&binary_bytes(value)), value);
        }
    }

    #[test]
    fn windows_are_written_as_go_durations() {
        assert_eq!(go_duration(Duration::from_secs(15)), "15s");
        assert_eq!(go_duration(Duration::from_millis(20_064)), "20.064s");
        assert_eq!(go_duration(Duration::from_millis(60_500)), "1m0.5s");
        assert_eq!(go_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn a_pod_metrics_object_has_metrics_server_shape() {
        let pod = json!({
            "metadata": { "name": "web-0", "namespace": "default", "labels": { "app": "nginx" } },
        });
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let usage = PodUsage {
            namespace: "default".into(),
            name: "web-0".into(),
            timestamp: at,
            window: Duration::from_millis(15_012),
            containers: vec![ContainerUsage {
                name: "nginx".into(),
                usage: Usage {
                    cpu_nanocores: 1_234_567,
                    memory_bytes: 3 << 20,
                },
            }],
        };
        let object = to_json(&pod_object(&pod, &usage, at + Duration::from_secs(5)));
        assert_eq!(
            object,
            json!({
                "kind": "PodMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {
                    "name": "web-0",
                    "namespace": "default",
                    "creationTimestamp": "2023-11-14T22:13:25Z",
                    "labels": { "app": "nginx" },
                },
                "timestamp": "2023-11-14T22:13:20Z",
                "window": "15.012s",
                "containers": [{ "name": "nginx", "usage": { "cpu": "1234567n", "memory": "3Mi" } }],
            })
        );
        let table = table("pods", &[object], None);
        assert_eq!(
            table["rows"][0]["cells"],
            json!(["web-0", "1234567n", "3Mi", "15.012s"])
        );
    }

    #[test]
    fn a_node_metrics_object_has_metrics_server_shape() {
        let node = json!({ "metadata": { "name": "k8s-labs-node", "labels": { "kubernetes.io/os": "linux" } } });
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let usage = NodeUsage {
            timestamp: at,
            window: Duration::from_secs(10),
            usage: Usage {
                cpu_nanocores: 329_087_452,
                memory_bytes: 2_748_180 * 1024,
            },
        };
        let object = to_json(&node_object(&node, &usage, at));
        assert_eq!(object["kind"], "NodeMetrics");
        assert_eq!(object["metadata"].get("namespace"), None);
        assert_eq!(
            object["usage"],
            json!({ "cpu": "329087452n", "memory": "2748180Ki" })
        );
        assert_eq!(object["window"], "10s");
    }
}
