//! The `/scale` subresource of workloads: an autoscaling/v1 `Scale` view of the parent's
//! replicas; writing it changes the parent's `spec.replicas` (what `kubectl scale` does).

use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::context::{Query, Shared, Target, str_at};
use crate::errors::{ApiError, ApiResult, json_response};
use crate::handlers::{parse_object, parse_patch, update_change, update_existing};
use crate::patch;
use crate::selectors::selector_to_string;

/// The Scale object for a workload.
pub fn to_scale(parent: &Value) -> Value {
    let meta = |key: &str| {
        parent
            .pointer(&format!("/metadata/{key}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta("name"),
            "namespace": meta("namespace"),
            "uid": meta("uid"),
            "resourceVersion": meta("resourceVersion"),
            "creationTimestamp": meta("creationTimestamp"),
        },
        "spec": { "replicas": parent.pointer("/spec/replicas").cloned().unwrap_or(json!(0)) },
        "status": {
            "replicas": parent.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": parent.pointer("/spec/selector").map(selector_to_string).unwrap_or_default(),
        },
    })
}

pub fn get(state: &Shared, target: &Target) -> ApiResult<Response> {
    let parent = crate::handlers::get(state, target)?;
    Ok(json_response(StatusCode::OK, &to_scale(&parent)))
}

/// Writes a Scale (from PUT, or the result of a patch of the current Scale) to the parent.
fn write(
    state: &Shared,
    target: &Target,
    dry_run: bool,
    make_scale: impl FnOnce(&Value) -> ApiResult<Value>,
) -> ApiResult<Response> {
    let name = target.name()?.to_string();
    let resource = target.resource;
    // `/scale` is a subresource: Pod Security admission leaves it alone, so no warnings.
    let (parent, _) = update_existing(state, target, &name, dry_run, |old| {
        let scale = make_scale(&to_scale(old))?;
        if let Some(rv) = str_at(&scale, "/metadata/resourceVersion").filter(|v| !v.is_empty())
            && Some(rv) != str_at(old, "/metadata/resourceVersion")
        {
            return Err(ApiError::conflict(&resource.qualified_plural(), &name));
        }
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale",
                &name,
                &[(
                    "spec.replicas".into(),
                    format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                )],
            ));
        }
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(replicas);
        update_change(resource, None, old, new)
    })?;
    Ok(json_response(StatusCode::OK, &to_scale(&parent)))
}

pub fn update(
    state: &Shared,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    let scale = parse_object(headers, body)?;
    write(state, target, query.dry_run(), |_| Ok(scale))
}

pub fn patch(
    state: &Shared,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    let (patch_type, patch_body) = parse_patch(headers, body)?;
    write(state, target, query.dry_run(), |current| {
        patch::apply_patch(patch_type, current, &patch_body)
    })
}
