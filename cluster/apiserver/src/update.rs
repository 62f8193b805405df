//! The semantics of writing over an existing object, shared by PUT, PATCH, apply and the
//! subresources: optimistic concurrency, what each subresource may change, immutable
//! metadata, `generation`, defaulting, and deletion once the last finalizer is gone.

use serde_json::{Value, json};

use crate::context::str_at;
use crate::defaults;
use crate::errors::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use crate::store::Change;

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
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_none_or(Value::is_null)
    {
        return false;
    }
    if !is_empty_list(object.pointer("/metadata/finalizers")) {
        return false;
    }
    match resource.plural {
        "namespaces" => is_empty_list(object.pointer("/spec/finalizers")),
        _ => {
            object
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                == 0
        }
    }
}

/// Computes the stored object for an update of `old` with `new` through `subresource`, with
/// optimistic concurrency, immutable metadata, generation and deletion completion.
pub fn update_change(
    resource: &ResourceInfo,
    subresource: Option<&str>,
    old: &Value,
    new: Value,
) -> ApiResult<Change> {
    let name = str_at(old, "/metadata/name")
        .unwrap_or_default()
        .to_string();
    check_name_and_version(resource, &name, old, &new)?;
    let mut result = match subresource {
        Some("status") => {
            let mut result = old.clone();
            result["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            result
        }
        Some("finalize") => finalized(old, &new),
        _ => main_resource_update(resource, old, new)?,
    };
    result["apiVersion"] = json!(resource.api_version());
    result["kind"] = json!(resource.kind);
    if let Some(generation) = old.pointer("/metadata/generation").and_then(Value::as_i64)
        && spec_part(old) != spec_part(&result)
    {
        result["metadata"]["generation"] = json!(generation + 1);
    }
    if let Some(meta) = result.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            old.pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    if deletion_complete(resource, &result) {
        return Ok(Change::Delete(result));
    }
    if without_resource_version(&result) == without_resource_version(old) {
        return Ok(Change::Keep(old.clone()));
    }
    Ok(Change::Put(result))
}

/// kube-apiserver's `checkName` (the body's name and namespace are the URL's) and optimistic
/// concurrency (a resourceVersion in the body must be the stored one).
fn check_name_and_version(
    resource: &ResourceInfo,
    name: &str,
    old: &Value,
    new: &Value,
) -> ApiResult<()> {
    if let Some(body_name) = str_at(new, "/metadata/name").filter(|n| !n.is_empty())
        && body_name != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    // The rest of kube-apiserver's `checkName` (a PUT has refused this already, in its words).
    if let (Some(namespace), Some(body_namespace)) = (
        str_at(old, "/metadata/namespace").filter(|n| !n.is_empty()),
        str_at(new, "/metadata/namespace").filter(|n| !n.is_empty()),
    ) && body_namespace != namespace
    {
        return Err(ApiError::bad_request(format!(
            "the namespace of the object ({body_namespace}) does not match the namespace on the request ({namespace})"
        )));
    }
    if let Some(rv) = str_at(new, "/metadata/resourceVersion").filter(|v| !v.is_empty())
        && Some(rv) != str_at(old, "/metadata/resourceVersion")
    {
        return Err(ApiError::conflict(&resource.qualified_plural(), name));
    }
    Ok(())
}

/// A namespace's `finalize` subresource: only `spec.finalizers` changes.
fn finalized(old: &Value, new: &Value) -> Value {
    let mut result = old.clone();
    let finalizers = new
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or(json!([]));
    if let Some(spec) = result.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("finalizers".into(), finalizers);
    } else {
        result["spec"] = json!({ "finalizers": finalizers });
    }
    result
}

/// An update of the object itself: the server-owned metadata and the status (where it is a
/// subresource) stay as stored; then the kind's update defaults and validation.
fn main_resource_update(resource: &ResourceInfo, old: &Value, mut new: Value) -> ApiResult<Value> {
    if !new.get("metadata").is_some_and(Value::is_object) {
        new["metadata"] = json!({});
    }
    let keep = [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ];
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
    if new.pointer("/metadata/managedFields").is_none()
        && let Some(mf) = old.pointer("/metadata/managedFields")
    {
        new["metadata"]["managedFields"] = mf.clone();
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
        crate::services::check_service_update(old, &mut new)?;
    }
    defaults::drop_disabled_fields(resource, Some(old), &mut new);
    defaults::default_on_update(resource, &mut new);
    crate::validation::validate_update(resource, old, &new)?;
    Ok(new)
}
