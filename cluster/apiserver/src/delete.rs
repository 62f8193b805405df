//! Deletion as kube-apiserver does it: DeleteOptions (`propagationPolicy`, the older
//! `orphanDependents`, grace period, preconditions, dryRun); the garbage collector's deletion
//! finalizers (`orphan`, `foregroundDeletion`) set as the policy asks, and an object with
//! finalizers only marked (deletionTimestamp) until they are gone; pods bound to a node
//! terminating gracefully (the node agent deletes them with grace period 0 once the containers
//! are dead); namespaces turning Terminating until their `spec.finalizers` are cleared through
//! `/finalize`. The decisions are in [`decide`], the options in [`options`].

mod decide;
pub mod options;

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use crate::context::{Query, Shared, Target, str_at};
use crate::convert::{storage, to_view};
use crate::errors::{ApiError, ApiResult, json_response};
use crate::handlers::{finish, mutate_existing};
use crate::registry::ResourceInfo;
use crate::store::Outcome;
use options::DeleteOptions;

/// Whether the resource's registry answers a completed DELETE with the deleted object
/// (`ReturnDeletedObject`); the others answer a `Status` naming it.
fn returns_deleted_object(resource: &'static ResourceInfo) -> bool {
    matches!(
        storage(resource).plural,
        "pods"
            | "services"
            | "namespaces"
            | "persistentvolumes"
            | "persistentvolumeclaims"
            | "serviceaccounts"
    )
}

/// `finalizeDelete`'s `Status`: name, group, uid, and the resource (not the kind) as `kind`.
fn deleted_status(resource: &ResourceInfo, object: &Value) -> Value {
    let mut details = json!({
        "name": str_at(object, "/metadata/name").unwrap_or_default(),
        "kind": resource.plural,
        "uid": str_at(object, "/metadata/uid").unwrap_or_default(),
    });
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

/// The answer to a DELETE: 200, or 202 when the object was only marked and the client set
/// `orphanDependents: false` (kube-apiserver keeps that quirk for old clients).
fn respond(
    resource: &'static ResourceInfo,
    object: Value,
    deleted: bool,
    options: &DeleteOptions,
) -> Response {
    let code = if !deleted && options.orphan_dependents == Some(false) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    if deleted && !returns_deleted_object(resource) {
        return json_response(code, &deleted_status(resource, &object));
    }
    json_response(code, &object)
}

/// DELETE on one object: gone now, or marked until its finalizers (or its grace period) let
/// it go.
pub fn delete(state: &Shared, target: &Target, query: &Query, body: &[u8]) -> ApiResult<Response> {
    let name = target.name()?.to_string();
    let resource = target.resource;
    let options = options::parse(query, body)?;
    let outcome = mutate_existing(state, target, &name, options.dry_run, |current| {
        decide::decide(resource, current, &options)
    })?;
    let deleted = matches!(outcome, Outcome::Deleted(_));
    let object = finish(state, resource, outcome, options.dry_run);
    Ok(respond(resource, object, deleted, &options))
}

/// DELETE on a collection: each object matching the selectors is deleted as by its own
/// DELETE; the answer lists them as they were before.
pub fn delete_collection(
    state: &Shared,
    target: &Target,
    query: &Query,
    body: &[u8],
) -> ApiResult<Response> {
    let resource = target.resource;
    let options = options::parse(query, body)?;
    let (labels, fields) = crate::paging::options::decode_selectors(query, target.resource)?;
    let (items, revision) = state
        .store
        .list(resource.store_key(), target.namespace.as_deref());
    let mut listed = Vec::new();
    for item in items
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
    {
        let name = str_at(&item, "/metadata/name").unwrap_or_default();
        let ns = str_at(&item, "/metadata/namespace").unwrap_or_default();
        let result =
            state
                .store
                .mutate(
                    resource.store_key(),
                    ns,
                    name,
                    options.dry_run,
                    |current| match current {
                        Some(current) => decide::decide(resource, current, &options),
                        None => Err(ApiError::not_found(&resource.qualified_plural(), name)),
                    },
                );
        match result {
            Ok(outcome) => {
                finish(state, resource, outcome, options.dry_run);
            }
            // Gone meanwhile: deleted by someone else, as wanted.
            Err(error) if error.code == 404 => {}
            Err(error) => return Err(error),
        }
        listed.push(to_view(resource, item));
    }
    let list = json!({
        "kind": resource.list_kind(),
        "apiVersion": resource.api_version(),
        "metadata": { "resourceVersion": revision.to_string() },
        "items": listed,
    });
    Ok(json_response(StatusCode::OK, &list))
}
