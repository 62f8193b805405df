//! The generic verbs (get, list, create, update, patch) for every resource in the registry,
//! with the subresource rules of kube-apiserver: the main resource ignores status changes,
//! `/status` takes only status, namespaces' `/finalize` takes only `spec.finalizers`.

use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::context::{Query, Shared, Target, str_at};
use crate::defaults;
use crate::errors::{ApiError, ApiResult, json_response};
use crate::patch::{self, PatchType};
use crate::registry::{self, ResourceInfo};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{Change, Outcome};

/// Parses an object body in JSON (or YAML); protobuf is answered 415 so that client-go
/// falls back to JSON, as it does against servers without protobuf support.
pub fn parse_object(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let media = content_type.split(';').next().unwrap_or_default().trim();
    match media {
        "application/yaml" => {
            let value = patch::parse_body(PatchType::Apply, body)?;
            if !value.is_object() {
                return Err(ApiError::bad_request("the body of the request is not an object"));
            }
            Ok(value)
        }
        "application/json" | "" | "*/*" => parse_json(body),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

pub fn parse_json(body: &[u8]) -> ApiResult<Value> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the body of the request could not be decoded as JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the body of the request is not a JSON object"));
    }
    Ok(value)
}

pub fn get(state: &Shared, target: &Target) -> ApiResult<Value> {
    let name = target.name()?;
    state
        .store
        .get(target.resource.store_key(), target.store_namespace(), name)
        .ok_or_else(|| ApiError::not_found(&target.resource.qualified_plural(), name))
}

pub fn list(state: &Shared, target: &Target, query: &Query, headers: &HeaderMap) -> ApiResult<Response> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())?;
    let (items, revision) = state.store.list(target.resource.store_key(), target.namespace.as_deref());
    let items: Vec<Value> = items.into_iter().filter(|o| labels.matches(o) && fields.matches(o)).collect();
    let revision = revision.to_string();
    if crate::table::wants_table(headers) {
        let table = crate::table::to_table(target.resource.plural, &items, &revision, query.get("includeObject"));
        return Ok(json_response(StatusCode::OK, &table));
    }
    let list = json!({
        "kind": target.resource.list_kind(),
        "apiVersion": target.resource.api_version(),
        "metadata": { "resourceVersion": revision },
        "items": items,
    });
    Ok(json_response(StatusCode::OK, &list))
}

/// The namespace must exist and not be terminating before anything is created in it.
pub fn check_namespace(state: &Shared, resource: &ResourceInfo, namespace: &str, name: &str) -> ApiResult<()> {
    let Some(ns) = state.store.get("/namespaces", "", namespace) else {
        return Err(ApiError::not_found("namespaces", namespace));
    };
    if ns.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
        return Err(ApiError::forbidden(
            &resource.qualified_plural(),
            name,
            format!("unable to create new content in namespace {namespace} because it is being terminated"),
        ));
    }
    Ok(())
}

/// Creates `object` (already parsed) at `target`; shared by POST and server-side apply.
pub fn create_object(state: &Shared, target: &Target, mut object: Value, dry_run: bool) -> ApiResult<Value> {
    let resource = target.resource;
    if resource.namespaced {
        let ns = target.store_namespace();
        if let Some(body_ns) = str_at(&object, "/metadata/namespace").filter(|n| !n.is_empty()) {
            if body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        let name = str_at(&object, "/metadata/name").unwrap_or_default().to_string();
        check_namespace(state, resource, ns, &name)?;
    }
    defaults::prepare_create(resource, &mut object, target.namespace.as_deref())?;
    let allocated = if resource.plural == "services" {
        defaults::prepare_service(&mut object, &state.ips)?
    } else {
        Vec::new()
    };
    let name = str_at(&object, "/metadata/name").unwrap_or_default().to_string();
    let qualified = resource.qualified_plural();
    let result = state.store.mutate(resource.store_key(), target.store_namespace(), &name, dry_run, |current| {
        if current.is_some() {
            return Err(ApiError::already_exists(&qualified, &name));
        }
        Ok(Change::Put(object))
    });
    if result.is_err() || dry_run {
        allocated.iter().for_each(|ip| state.ips.release(ip));
    }
    Ok(result?.into_object())
}

pub fn create(state: &Shared, target: &Target, query: &Query, headers: &HeaderMap, body: &[u8]) -> ApiResult<Response> {
    let object = parse_object(headers, body)?;
    let created = create_object(state, target, object, query.dry_run())?;
    Ok(json_response(StatusCode::CREATED, &created))
}

/// The part of an object that is neither metadata nor status: what `generation` tracks.
fn spec_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
        map.remove("apiVersion");
        map.remove("kind");
    }
    copy
}

fn without_resource_version(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    copy
}

fn is_empty_list(value: Option<&Value>) -> bool {
    value.and_then(Value::as_array).is_none_or(Vec::is_empty)
}

/// Whether an object that is being deleted can now go: no finalizers left, and (for pods) its
/// grace period has been cut to zero by the node.
pub fn deletion_complete(resource: &ResourceInfo, object: &Value) -> bool {
    if object.pointer("/metadata/deletionTimestamp").is_none_or(Value::is_null) {
        return false;
    }
    if !is_empty_list(object.pointer("/metadata/finalizers")) {
        return false;
    }
    match resource.plural {
        "namespaces" => is_empty_list(object.pointer("/spec/finalizers")),
        _ => object.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0) == 0,
    }
}

/// Computes the stored object for an update of `old` with `new` through `subresource`, with
/// optimistic concurrency, immutable metadata, generation and deletion completion.
pub fn update_change(resource: &ResourceInfo, subresource: Option<&str>, old: &Value, mut new: Value) -> ApiResult<Change> {
    let name = str_at(old, "/metadata/name").unwrap_or_default().to_string();
    if let Some(body_name) = str_at(&new, "/metadata/name").filter(|n| !n.is_empty()) {
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
    }
    if let Some(rv) = str_at(&new, "/metadata/resourceVersion").filter(|v| !v.is_empty()) {
        if Some(rv) != str_at(old, "/metadata/resourceVersion") {
            return Err(ApiError::conflict(&resource.qualified_plural(), &name));
        }
    }
    let mut result = match subresource {
        Some("status") => {
            let mut result = old.clone();
            result["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            result
        }
        Some("finalize") => {
            let mut result = old.clone();
            let finalizers = new.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
            if let Some(spec) = result.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("finalizers".into(), finalizers);
            } else {
                result["spec"] = json!({ "finalizers": finalizers });
            }
            result
        }
        _ => {
            if !new.get("metadata").is_some_and(Value::is_object) {
                new["metadata"] = json!({});
            }
            let keep = ["name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"];
            for key in keep {
                match old.pointer(&format!("/metadata/{key}")) {
                    Some(v) => new["metadata"][key] = v.clone(),
                    None => {
                        if let Some(m) = new["metadata"].as_object_mut() {
                            m.remove(key);
                        }
                    }
                }
            }
            if new.pointer("/metadata/managedFields").is_none() {
                if let Some(mf) = old.pointer("/metadata/managedFields") {
                    new["metadata"]["managedFields"] = mf.clone();
                }
            }
            if resource.has_subresource("status") {
                match old.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            if resource.plural == "namespaces" {
                new["spec"] = old.get("spec").cloned().unwrap_or(json!({}));
            }
            if resource.plural == "services" {
                defaults::check_service_update(old, &mut new)?;
            }
            new
        }
    };
    result["apiVersion"] = json!(resource.api_version());
    result["kind"] = json!(resource.kind);
    if let Some(generation) = old.pointer("/metadata/generation").and_then(Value::as_i64) {
        if spec_part(old) != spec_part(&result) {
            result["metadata"]["generation"] = json!(generation + 1);
        }
    }
    if let Some(meta) = result.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), old.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null));
    }
    if deletion_complete(resource, &result) {
        return Ok(Change::Delete(result));
    }
    if without_resource_version(&result) == without_resource_version(old) {
        return Ok(Change::Keep(old.clone()));
    }
    Ok(Change::Put(result))
}

/// Finishes an update: releases a deleted Service's cluster IP; 200 with the object.
pub fn finish(state: &Shared, resource: &ResourceInfo, outcome: Outcome, dry_run: bool) -> Value {
    if let (Outcome::Deleted(object), false) = (&outcome, dry_run) {
        release_service_ips(state, resource, object);
    }
    outcome.into_object()
}

pub fn release_service_ips(state: &Shared, resource: &ResourceInfo, object: &Value) {
    if resource.plural != "services" {
        return;
    }
    if let Some(ips) = object.pointer("/spec/clusterIPs").and_then(Value::as_array) {
        ips.iter().filter_map(Value::as_str).filter(|ip| *ip != "None").for_each(|ip| state.ips.release(ip));
    }
}

pub fn update(state: &Shared, target: &Target, query: &Query, headers: &HeaderMap, body: &[u8]) -> ApiResult<Response> {
    let name = target.name()?.to_string();
    let resource = target.resource;
    let new = parse_object(headers, body)?;
    let sub = target.subresource.as_deref();
    let dry_run = query.dry_run();
    let outcome = state.store.mutate(resource.store_key(), target.store_namespace(), &name, dry_run, |current| {
        let old = current.ok_or_else(|| ApiError::not_found(&resource.qualified_plural(), &name))?;
        update_change(resource, sub, old, new)
    })?;
    let object = finish(state, resource, outcome, dry_run);
    Ok(json_response(StatusCode::OK, &object))
}

pub fn patch(state: &Shared, target: &Target, query: &Query, headers: &HeaderMap, body: &[u8]) -> ApiResult<Response> {
    let name = target.name()?.to_string();
    let resource = target.resource;
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let patch_type = PatchType::from_content_type(content_type)?;
    let patch_body = patch::parse_body(patch_type, body)?;
    let sub = target.subresource.as_deref();
    let dry_run = query.dry_run();
    let manager = query.get("fieldManager").filter(|m| !m.is_empty()).map(String::from);
    if patch_type == PatchType::Apply {
        let Some(manager) = manager else {
            return Err(ApiError::invalid("PatchOptions.meta.k8s.io", "", &[("fieldManager".into(), "Required value: is required for apply patch".into())]));
        };
        if !patch_body.is_object() {
            return Err(ApiError::bad_request("apply patch must be an object"));
        }
        return apply(state, target, &name, &manager, patch_body, dry_run);
    }
    let outcome = state.store.mutate(resource.store_key(), target.store_namespace(), &name, dry_run, |current| {
        let old = current.ok_or_else(|| ApiError::not_found(&resource.qualified_plural(), &name))?;
        let patched = patch::apply_patch(patch_type, old, &patch_body)?;
        update_change(resource, sub, old, patched)
    })?;
    let object = finish(state, resource, outcome, dry_run);
    Ok(json_response(StatusCode::OK, &object))
}

/// Server-side apply: create when missing, else merge the applied configuration in.
fn apply(state: &Shared, target: &Target, name: &str, manager: &str, applied: Value, dry_run: bool) -> ApiResult<Response> {
    let resource = target.resource;
    let sub = target.subresource.as_deref();
    let now = defaults::now();
    let fields = patch::fields_v1(&applied);
    let api_version = resource.api_version();
    if sub.is_none() && state.store.get(resource.store_key(), target.store_namespace(), name).is_none() {
        let mut object = applied.clone();
        object["metadata"]["name"] = json!(name);
        patch::record_manager(&mut object, manager, "Apply", None, fields.clone(), &api_version, &now);
        match create_object(state, target, object, dry_run) {
            Ok(created) => return Ok(json_response(StatusCode::CREATED, &created)),
            Err(e) if e.reason == "AlreadyExists" => {}
            Err(e) => return Err(e),
        }
    }
    let outcome = state.store.mutate(resource.store_key(), target.store_namespace(), name, dry_run, |current| {
        let old = current.ok_or_else(|| ApiError::not_found(&resource.qualified_plural(), name))?;
        let mut merged = old.clone();
        patch::strategic_merge(&mut merged, &applied, "");
        patch::record_manager(&mut merged, manager, "Apply", sub, fields, &api_version, &now);
        update_change(resource, sub, old, merged)
    })?;
    let object = finish(state, resource, outcome, dry_run);
    Ok(json_response(StatusCode::OK, &object))
}

/// `POST .../pods/{name}/binding`: assigns the pod to a node, once (as the scheduler does).
pub fn bind(state: &Shared, target: &Target, body: &[u8]) -> ApiResult<Response> {
    let name = target.name()?.to_string();
    let binding = parse_json(body)?;
    let node = str_at(&binding, "/target/name").filter(|n| !n.is_empty()).map(String::from);
    let Some(node) = node else {
        return Err(ApiError::invalid("Binding", &name, &[("target.name".into(), "Required value".into())]));
    };
    let pods = registry::find("", "v1", "pods").ok_or_else(|| ApiError::internal("pods not registered"))?;
    state.store.mutate(pods.store_key(), target.store_namespace(), &name, false, |current| {
        let old = current.ok_or_else(|| ApiError::not_found("pods", &name))?;
        if str_at(old, "/spec/nodeName").is_some_and(|n| !n.is_empty()) {
            return Err(ApiError::conflict("pods", &name));
        }
        let mut pod = old.clone();
        pod["spec"]["nodeName"] = json!(node);
        Ok(Change::Put(pod))
    })?;
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(json_response(StatusCode::CREATED, &status))
}
