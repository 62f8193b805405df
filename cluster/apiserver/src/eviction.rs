//! `pods/eviction`: a policy/v1 Eviction deletes its pod with the Eviction's `deleteOptions`
//! and is answered 201 with a Success Status, as kube-apiserver's `EvictionREST.Create` does
//! for a pod that no PodDisruptionBudget covers. This server serves no PodDisruptionBudgets,
//! so no eviction is ever refused for one. `kubectl drain` evicts through it.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use crate::context::{Query, Shared, Target};
use crate::errors::{ApiError, ApiResult, json_response};

/// Evicts the pod `target` names (its subresource is `eviction`).
pub fn create(state: &Shared, target: &Target, query: &Query, body: &[u8]) -> ApiResult<Response> {
    let eviction = if crate::protobuf::is_protobuf(body) {
        crate::protobuf::decode_eviction(body)?
    } else {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| ApiError::bad_request(format!("the Eviction is not valid JSON: {e}")))?
    };
    if eviction["metadata"]["name"].as_str() != Some(target.name()?) {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let mut options = match &eviction["deleteOptions"] {
        Value::Object(options) => options.clone(),
        _ => serde_json::Map::new(),
    };
    // `propagateDryRun`: the request's dryRun applies when the Eviction names none.
    let dry_run: Vec<&str> = query
        .0
        .iter()
        .filter(|(key, _)| key == "dryRun")
        .map(|(_, value)| value.as_str())
        .collect();
    if !dry_run.is_empty() && !options.contains_key("dryRun") {
        options.insert("dryRun".into(), json!(dry_run));
    }
    let pod = Target {
        subresource: None,
        ..target.clone()
    };
    let options = serde_json::to_vec(&Value::Object(options))
        .map_err(|e| ApiError::internal(format!("encoding the DeleteOptions: {e}")))?;
    crate::delete::delete(state, &pod, &Query(Vec::new()), &options)?;
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    Ok(json_response(StatusCode::CREATED, &status))
}
