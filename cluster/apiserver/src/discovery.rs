//! Discovery documents as kube-apiserver serves them: `/version`, `/api`, `/apis`,
//! `/apis/{group}`, the APIResourceLists of each group version, and the aggregated discovery
//! document (apidiscovery.k8s.io/v2) that kubectl asks for first.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::context::Shared;
use crate::errors::json_response;
use crate::registry::{self, GROUPS, ResourceInfo};

/// The `/version` document; `kubernetes_version` is like "v1.33.0".
pub fn version(kubernetes_version: &str) -> Value {
    let numbers = kubernetes_version.trim_start_matches('v');
    let mut parts = numbers.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    json!({
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": minor,
        "gitVersion": kubernetes_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn api_versions(state: &Shared) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": state.address.to_string() }],
    })
}

fn group_json(name: &str, version: &str) -> Value {
    let gv = json!({ "groupVersion": format!("{name}/{version}"), "version": version });
    json!({ "name": name, "versions": [gv.clone()], "preferredVersion": gv })
}

pub fn api_group_list() -> Value {
    let groups: Vec<Value> = GROUPS.iter().map(|(g, v)| group_json(g, v)).collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

pub fn api_group(group: &str) -> Option<Value> {
    let (name, version) = GROUPS.iter().find(|(g, _)| *g == group)?;
    let mut doc = group_json(name, version);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn resource_entries(resource: &ResourceInfo) -> Vec<Value> {
    let mut main = json!({
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": resource.verbs(),
    });
    if !resource.short_names.is_empty() {
        main["shortNames"] = json!(resource.short_names);
    }
    if !resource.categories.is_empty() {
        main["categories"] = json!(resource.categories);
    }
    let mut entries = vec![main];
    for sub in resource.subresources {
        let (group, version, kind, verbs) = registry::subresource_discovery(resource, sub);
        let mut entry = json!({
            "name": format!("{}/{sub}", resource.plural),
            "singularName": "",
            "namespaced": resource.namespaced,
            "kind": kind,
            "verbs": verbs,
        });
        if !group.is_empty() {
            entry["group"] = json!(group);
            entry["version"] = json!(version);
        }
        entries.push(entry);
    }
    entries
}

/// The APIResourceList of a group version, or None when it is not served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if !registry::serves_group_version(group, version) {
        return None;
    }
    let resources: Vec<Value> = registry::in_group_version(group, version)
        .flat_map(resource_entries)
        .collect();
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut doc =
        json!({ "kind": "APIResourceList", "groupVersion": group_version, "resources": resources });
    if !group.is_empty() {
        doc["apiVersion"] = json!("v1");
    }
    Some(doc)
}

/// The media type of aggregated discovery, when the client's Accept header asks for it.
pub fn wants_aggregated(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    for media in accept.split(',') {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        if params.first() != Some(&"application/json")
            || !params.contains(&"g=apidiscovery.k8s.io")
            || !params.contains(&"as=APIGroupDiscoveryList")
        {
            continue;
        }
        if params.contains(&"v=v2") {
            return Some("v2");
        }
        if params.contains(&"v=v2beta1") {
            return Some("v2beta1");
        }
    }
    None
}

fn aggregated_resource(resource: &ResourceInfo) -> Value {
    let mut doc = json!({
        "resource": resource.plural,
        "responseKind": { "group": resource.group, "version": resource.version, "kind": resource.kind },
        "scope": if resource.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": resource.singular,
        "verbs": resource.verbs(),
    });
    if !resource.short_names.is_empty() {
        doc["shortNames"] = json!(resource.short_names);
    }
    if !resource.categories.is_empty() {
        doc["categories"] = json!(resource.categories);
    }
    let subresources: Vec<Value> = resource
        .subresources
        .iter()
        .map(|sub| {
            let (group, version, kind, verbs) = registry::subresource_discovery(resource, sub);
            let (group, version) = if group.is_empty() {
                (resource.group, resource.version)
            } else {
                (group, version)
            };
            json!({
                "subresource": sub,
                "responseKind": { "group": group, "version": version, "kind": kind },
                "verbs": verbs,
            })
        })
        .collect();
    if !subresources.is_empty() {
        doc["subresources"] = json!(subresources);
    }
    doc
}

fn aggregated_group(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = registry::in_group_version(group, version)
        .map(aggregated_resource)
        .collect();
    let mut metadata = json!({ "creationTimestamp": null });
    if !group.is_empty() {
        metadata["name"] = json!(group);
    }
    json!({
        "metadata": metadata,
        "versions": [{ "version": version, "resources": resources, "freshness": "Current" }],
    })
}

/// The aggregated discovery document for `/api` (core) or `/apis` (all named groups).
pub fn aggregated(core: bool, version: &str) -> Response {
    let items: Vec<Value> = if core {
        vec![aggregated_group("", "v1")]
    } else {
        GROUPS.iter().map(|(g, v)| aggregated_group(g, v)).collect()
    };
    let doc = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    });
    let content_type =
        format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    let body = serde_json::to_vec(&doc).unwrap_or_default();
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, content_type)],
        body,
    )
        .into_response()
}

/// The legacy (non-aggregated) document with `Content-Type: application/json`.
pub fn legacy(doc: &Value) -> Response {
    json_response(StatusCode::OK, doc)
}
