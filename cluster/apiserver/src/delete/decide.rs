//! What one DELETE does to the stored object, as kube-apiserver's generic registry decides it
//! (`registry/rest/delete.go` `BeforeDelete`, `registry/generic/registry/store.go` `Delete`,
//! `deletionFinalizersForGarbageCollection`, `markAsDeleting`) and as the namespace registry
//! overrides it (`registry/core/namespace/storage`).

use serde_json::{Value, json};

use super::options::{DeleteOptions, Propagation};
use crate::context::str_at;
use crate::defaults;
use crate::errors::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use crate::store::Change;

/// The finalizer that makes the garbage collector orphan the dependents first.
pub const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer that makes the garbage collector delete the dependents first.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// A resource's `DefaultGarbageCollectionPolicy`, where its strategy has one that matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GcPolicy {
    /// Never set the deletion finalizers (nothing would ever clear them): Events.
    Unsupported,
    /// Background unless the request or the object says otherwise: everything else served
    /// here (apps/v1 workloads say `DeleteDependents`, the others have no policy, which
    /// means the same).
    Background,
    /// Orphan unless the request or the object says otherwise: batch/v1 Jobs, "for back
    /// compatibility" (kubectl asks for Background itself).
    Orphan,
}

fn gc_policy(resource: &ResourceInfo) -> GcPolicy {
    match (resource.group, resource.plural) {
        (_, "events") => GcPolicy::Unsupported,
        ("batch", "jobs") => GcPolicy::Orphan,
        _ => GcPolicy::Background,
    }
}

fn is_set(object: &Value, pointer: &str) -> bool {
    object.pointer(pointer).is_some_and(|v| !v.is_null())
}

fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn conflict(resource: &str, name: &str, message: String) -> ApiError {
    let mut error = ApiError::conflict(resource, name);
    error.message = format!("Operation cannot be fulfilled on {resource} \"{name}\": {message}");
    error
}

/// `BeforeDelete`'s precondition check: the conflict names the kind, as upstream's does.
fn check_preconditions(
    resource: &ResourceInfo,
    current: &Value,
    options: &DeleteOptions,
) -> ApiResult<()> {
    let name = str_at(current, "/metadata/name").unwrap_or_default();
    let kind = if resource.group.is_empty() {
        resource.kind.to_string()
    } else {
        format!("{}.{}", resource.kind, resource.group)
    };
    if let Some(uid) = &options.uid {
        let actual = str_at(current, "/metadata/uid").unwrap_or_default();
        if uid != actual {
            return Err(conflict(
                &kind,
                name,
                format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({actual}). The object might have been deleted and then recreated"
                ),
            ));
        }
    }
    if let Some(rv) = &options.resource_version {
        let actual = str_at(current, "/metadata/resourceVersion").unwrap_or_default();
        if rv != actual {
            return Err(conflict(
                &kind,
                name,
                format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({actual}). The object might have been modified"
                ),
            ));
        }
    }
    Ok(())
}

/// The namespace registry's own precondition check and wording.
fn check_namespace_preconditions(current: &Value, options: &DeleteOptions) -> ApiResult<()> {
    let name = str_at(current, "/metadata/name").unwrap_or_default();
    if let Some(uid) = &options.uid {
        let actual = str_at(current, "/metadata/uid").unwrap_or_default();
        if uid != actual {
            return Err(conflict(
                "namespaces",
                name,
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = &options.resource_version {
        let actual = str_at(current, "/metadata/resourceVersion").unwrap_or_default();
        if rv != actual {
            return Err(conflict(
                "namespaces",
                name,
                format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
    }
    Ok(())
}

/// Upstream's `shouldOrphanDependents`: the request, then the object's own deletion
/// finalizers, then the resource's default (`orphan_by_default`).
fn should_orphan(options: &DeleteOptions, finalizers: &[String], orphan_by_default: bool) -> bool {
    if let Some(orphan) = options.orphan_dependents {
        return orphan;
    }
    if let Some(policy) = options.propagation {
        return policy == Propagation::Orphan;
    }
    for finalizer in finalizers {
        match finalizer.as_str() {
            ORPHAN_FINALIZER => return true,
            FOREGROUND_FINALIZER => return false,
            _ => {}
        }
    }
    orphan_by_default
}

/// Upstream's `shouldDeleteDependents`.
fn should_delete_dependents(options: &DeleteOptions, finalizers: &[String]) -> bool {
    if options.orphan_dependents.is_some() {
        return false;
    }
    if let Some(policy) = options.propagation {
        return policy == Propagation::Foreground;
    }
    for finalizer in finalizers {
        match finalizer.as_str() {
            FOREGROUND_FINALIZER => return true,
            ORPHAN_FINALIZER => return false,
            _ => {}
        }
    }
    false
}

/// `deletionFinalizersForGarbageCollection`: the object's finalizers with the two deletion
/// finalizers set as the options (or the object, or the resource) ask.
fn set_gc_finalizers(resource: &ResourceInfo, object: &mut Value, options: &DeleteOptions) {
    if gc_policy(resource) == GcPolicy::Unsupported {
        return;
    }
    let old = finalizers(object);
    let orphan = should_orphan(options, &old, gc_policy(resource) == GcPolicy::Orphan);
    let foreground = should_delete_dependents(options, &old);
    let mut new: Vec<String> = old
        .iter()
        .filter(|f| *f != ORPHAN_FINALIZER && *f != FOREGROUND_FINALIZER)
        .cloned()
        .collect();
    if orphan {
        new.push(ORPHAN_FINALIZER.into());
    }
    if foreground {
        new.push(FOREGROUND_FINALIZER.into());
    }
    let same = |a: &[String], b: &[String]| a.iter().all(|f| b.contains(f));
    if !(same(&old, &new) && same(&new, &old)) {
        object["metadata"]["finalizers"] = json!(new);
    }
}

fn bump_generation(object: &mut Value) {
    if let Some(generation) = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .filter(|g| *g > 0)
    {
        object["metadata"]["generation"] = json!(generation + 1);
    }
}

/// `markAsDeleting`: an object that cannot be deleted gracefully but has finalizers left is
/// marked now, with grace period 0.
fn mark_as_deleting(object: &mut Value) {
    let existing = str_at(object, "/metadata/deletionTimestamp")
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    if !is_set(object, "/metadata/deletionTimestamp") {
        bump_generation(object);
    }
    if existing.is_none_or(|t| t > jiff::Timestamp::now()) {
        object["metadata"]["deletionTimestamp"] = json!(defaults::now());
    }
    object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
}

fn is_terminal_pod(pod: &Value) -> bool {
    matches!(str_at(pod, "/status/phase"), Some("Succeeded" | "Failed"))
}

/// The pod strategy's `CheckGracefulDelete`: the requested grace period, else the pod's own;
/// 0 for a pod no node runs (unscheduled or finished).
fn pod_grace_period(pod: &Value, options: &DeleteOptions) -> i64 {
    let unscheduled = str_at(pod, "/spec/nodeName").is_none_or(str::is_empty);
    if unscheduled || is_terminal_pod(pod) {
        return 0;
    }
    options
        .grace_period
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(0)
}

/// `BeforeDelete` for pods, the one graceful resource: `None` when a graceful deletion is
/// already pending with a period no longer than the one asked for (nothing changes then);
/// otherwise whether the deletion is graceful, with `object` marked accordingly.
fn before_delete_pod(object: &mut Value, options: &DeleteOptions) -> Option<bool> {
    if is_set(object, "/metadata/deletionTimestamp") {
        let current = object
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if current == 0 {
            // Marked with period 0 already: delete now (or wait for the finalizers).
            return Some(false);
        }
        let period = options.grace_period.filter(|p| *p < current)?;
        // Only a shorter period may be given: the deadline moves back by the difference.
        let deadline = str_at(object, "/metadata/deletionTimestamp")
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .and_then(|t| {
                t.checked_add(jiff::SignedDuration::from_secs(period - current))
                    .ok()
            })
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| defaults::now_plus(period));
        object["metadata"]["deletionTimestamp"] = json!(deadline);
        object["metadata"]["deletionGracePeriodSeconds"] = json!(period);
        return Some(true);
    }
    let period = pod_grace_period(object, options);
    object["metadata"]["deletionTimestamp"] = json!(defaults::now_plus(period));
    object["metadata"]["deletionGracePeriodSeconds"] = json!(period);
    bump_generation(object);
    Some(true)
}

/// The generic registry's `Delete` for one stored object: deleted now (`Change::Delete`),
/// marked for deletion (`Put`), or left as it is (`Keep`).
pub fn decide(
    resource: &ResourceInfo,
    current: &Value,
    options: &DeleteOptions,
) -> ApiResult<Change> {
    if resource.plural == "namespaces" {
        return decide_namespace(resource, current, options);
    }
    check_preconditions(resource, current, options)?;
    let mut object = current.clone();
    let graceful = if resource.plural == "pods" {
        match before_delete_pod(&mut object, options) {
            Some(graceful) => graceful,
            // Finalizers cannot be changed through DeleteOptions while a deletion is pending.
            None => return Ok(Change::Keep(object)),
        }
    } else {
        false
    };
    set_gc_finalizers(resource, &mut object, options);
    Ok(after_finalizers(object, current, graceful))
}

/// The end of `updateForGracefulDeletionAndFinalizers`: objects with finalizers and pods
/// with time left are only marked; the rest go now.
fn after_finalizers(mut object: Value, current: &Value, graceful: bool) -> Change {
    let pending_finalizers = !finalizers(&object).is_empty();
    if !graceful {
        if !pending_finalizers {
            return Change::Delete(object);
        }
        mark_as_deleting(&mut object);
    } else if !pending_finalizers
        && object
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0
    {
        return Change::Delete(object);
    }
    if object == *current {
        Change::Keep(object)
    } else {
        Change::Put(object)
    }
}

/// The namespace registry's `shouldHaveOrphanFinalizer` / `shouldHaveDeleteDependentsFinalizer`.
fn namespace_finalizers(namespace: &mut Value, options: &DeleteOptions) {
    let old = finalizers(namespace);
    let wants = |finalizer: &str, from_options: Option<bool>| {
        from_options.unwrap_or_else(|| old.iter().any(|f| f == finalizer))
    };
    let orphan = wants(
        ORPHAN_FINALIZER,
        options
            .orphan_dependents
            .or(options.propagation.map(|p| p == Propagation::Orphan)),
    );
    let foreground = wants(
        FOREGROUND_FINALIZER,
        options
            .orphan_dependents
            .map(|orphan| !orphan)
            .or(options.propagation.map(|p| p == Propagation::Foreground)),
    );
    let mut new: Vec<String> = old
        .iter()
        .filter(|f| *f != ORPHAN_FINALIZER && *f != FOREGROUND_FINALIZER)
        .cloned()
        .collect();
    if orphan {
        new.push(ORPHAN_FINALIZER.into());
    }
    if foreground {
        new.push(FOREGROUND_FINALIZER.into());
    }
    if new.len() != old.len() || new.iter().any(|f| !old.contains(f)) {
        namespace["metadata"]["finalizers"] = json!(new);
    }
}

/// Namespaces: the first DELETE only turns them Terminating (the namespace controller empties
/// them and clears `spec.finalizers`); later ones delete them once that is done.
fn decide_namespace(
    resource: &ResourceInfo,
    current: &Value,
    options: &DeleteOptions,
) -> ApiResult<Change> {
    check_namespace_preconditions(current, options)?;
    if !is_set(current, "/metadata/deletionTimestamp") {
        let mut namespace = current.clone();
        namespace["metadata"]["deletionTimestamp"] = json!(defaults::now());
        namespace["status"]["phase"] = json!("Terminating");
        namespace_finalizers(&mut namespace, options);
        return Ok(Change::Put(namespace));
    }
    let spec_finalizers = current
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if spec_finalizers {
        return Ok(Change::Keep(current.clone()));
    }
    let mut object = current.clone();
    set_gc_finalizers(resource, &mut object, options);
    Ok(after_finalizers(object, current, false))
}

#[cfg(test)]
mod tests;
