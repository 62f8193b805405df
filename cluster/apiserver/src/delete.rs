//! Deletion as kube-apiserver does it: objects with finalizers are only marked
//! (deletionTimestamp) until the finalizers are gone; pods bound to a node terminate
//! gracefully (the node agent deletes them with grace period 0 once the containers are dead);
//! namespaces turn Terminating until their `spec.finalizers` are cleared through `/finalize`.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use crate::context::{Query, Shared, Target, str_at};
use crate::defaults;
use crate::errors::{ApiError, ApiResult, json_response};
use crate::handlers::{deletion_complete, finish, mutate_existing};
use crate::registry::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{Change, Outcome};

/// The parts of DeleteOptions this server honours.
#[derive(Debug, Default)]
struct DeleteOptions {
    grace_period: Option<i64>,
    uid: Option<String>,
    resource_version: Option<String>,
    dry_run: bool,
}

fn parse_options(query: &Query, body: &[u8]) -> ApiResult<DeleteOptions> {
    let mut options = DeleteOptions {
        grace_period: query.get("gracePeriodSeconds").and_then(|g| g.parse().ok()),
        dry_run: query.dry_run(),
        ..Default::default()
    };
    if body.iter().any(|b| !b.is_ascii_whitespace()) {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
        if let Some(g) = value.get("gracePeriodSeconds").and_then(Value::as_i64) {
            options.grace_period = Some(g);
        }
        options.uid = str_at(&value, "/preconditions/uid").map(String::from);
        options.resource_version =
            str_at(&value, "/preconditions/resourceVersion").map(String::from);
        if value
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All"))
        {
            options.dry_run = true;
        }
    }
    Ok(options)
}

fn is_terminal_pod(pod: &Value) -> bool {
    matches!(str_at(pod, "/status/phase"), Some("Succeeded" | "Failed"))
}

/// Decides what a DELETE does to `current`.
fn decide(resource: &ResourceInfo, current: &Value, options: &DeleteOptions) -> ApiResult<Change> {
    let name = str_at(current, "/metadata/name").unwrap_or_default();
    if let Some(uid) = &options.uid {
        let actual = str_at(current, "/metadata/uid").unwrap_or_default();
        if uid != actual {
            let mut e = ApiError::conflict(&resource.qualified_plural(), name);
            e.message = format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
            );
            return Err(e);
        }
    }
    if let Some(rv) = &options.resource_version {
        let actual = str_at(current, "/metadata/resourceVersion").unwrap_or_default();
        if rv != actual {
            let mut e = ApiError::conflict(&resource.qualified_plural(), name);
            e.message = format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
            );
            return Err(e);
        }
    }
    let mut object = current.clone();
    let already_deleting = current
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    let graceful_pod = resource.plural == "pods"
        && str_at(current, "/spec/nodeName").is_some_and(|n| !n.is_empty())
        && !is_terminal_pod(current);
    let grace = if graceful_pod {
        options
            .grace_period
            .or_else(|| {
                current
                    .pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30)
            .max(0)
    } else {
        0
    };
    if already_deleting {
        let current_grace = current
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if grace < current_grace {
            object["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            object["metadata"]["deletionTimestamp"] = json!(defaults::now_plus(grace));
        }
    } else {
        object["metadata"]["deletionTimestamp"] = json!(defaults::now_plus(grace));
        object["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        if resource.plural == "namespaces" {
            object["status"]["phase"] = json!("Terminating");
        }
    }
    if deletion_complete(resource, &object) {
        return Ok(Change::Delete(object));
    }
    if object == *current {
        return Ok(Change::Keep(object));
    }
    Ok(Change::Put(object))
}

/// DELETE on one object: 200 with the object when it is gone, 202 when it is only marked.
pub fn delete(state: &Shared, target: &Target, query: &Query, body: &[u8]) -> ApiResult<Response> {
    let name = target.name()?.to_string();
    let resource = target.resource;
    let options = parse_options(query, body)?;
    let outcome = mutate_existing(state, target, &name, options.dry_run, |current| {
        decide(resource, current, &options)
    })?;
    let code = if matches!(outcome, Outcome::Deleted(_)) {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let object = finish(state, resource, outcome, options.dry_run);
    Ok(json_response(code, &object))
}

/// DELETE on a collection: deletes every object matching the selectors, returns them.
pub fn delete_collection(
    state: &Shared,
    target: &Target,
    query: &Query,
    body: &[u8],
) -> ApiResult<Response> {
    let resource = target.resource;
    let options = parse_options(query, body)?;
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())?;
    let (items, _) = state
        .store
        .list(resource.store_key(), target.namespace.as_deref());
    let mut deleted = Vec::new();
    for item in items
        .iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
    {
        let name = str_at(item, "/metadata/name").unwrap_or_default();
        let ns = str_at(item, "/metadata/namespace").unwrap_or_default();
        let result =
            state
                .store
                .mutate(
                    resource.store_key(),
                    ns,
                    name,
                    options.dry_run,
                    |current| match current {
                        Some(current) => decide(resource, current, &options),
                        None => Err(ApiError::not_found(&resource.qualified_plural(), name)),
                    },
                );
        if let Ok(outcome) = result {
            deleted.push(finish(state, resource, outcome, options.dry_run));
        }
    }
    let list = json!({
        "kind": resource.list_kind(),
        "apiVersion": resource.api_version(),
        "metadata": { "resourceVersion": state.store.revision().to_string() },
        "items": deleted,
    });
    Ok(json_response(StatusCode::OK, &list))
}
