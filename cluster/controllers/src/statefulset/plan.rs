//! What a StatefulSet needs done next, and the status it reports: pure decisions.
//!
//! Mirrors `stateful_set_control.go` (`updateStatefulSet`): with `OrderedReady`, pods are
//! created one at a time in ordinal order, each only once its predecessors are Running and
//! Ready, and condemned pods are removed from the highest ordinal down, one at a time, each
//! only once it is gone; with `Parallel`, all of that happens at once. A Failed (or
//! Succeeded) pod is deleted so that it is recreated under the same name. With the
//! `RollingUpdate` strategy, pods of an old revision are replaced from the highest ordinal
//! down, one at a time, once every pod is Running and Ready.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::Pod;

use crate::statefulset::identity::{REVISION_LABEL, parse_ordinal};
use k8s_labs_podutil::{is_pod_running_and_ready, is_pod_terminal, is_pod_terminating};

/// One step the controller takes now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetAction {
    /// Create the claims and then the pod of this ordinal.
    Create(i32),
    /// Delete this pod (condemned by a scale-down, or of an old revision).
    Delete { name: String, ordinal: i32 },
    /// Delete this Failed (`failed`) or Succeeded pod, so that it is created again.
    Recreate { name: String, failed: bool },
}

/// Desired replicas (default 1) and the first ordinal (default 0).
pub(crate) fn ordinal_range(set: &StatefulSet) -> std::ops::Range<i32> {
    let spec = set.spec.as_ref();
    let replicas = spec.and_then(|spec| spec.replicas).unwrap_or(1).max(0);
    let start = spec
        .and_then(|spec| spec.ordinals.as_ref())
        .and_then(|ordinals| ordinals.start)
        .unwrap_or(0)
        .max(0);
    start..start.saturating_add(replicas)
}

fn is_parallel(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|spec| spec.pod_management_policy.as_deref())
        == Some("Parallel")
}

fn revision_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(REVISION_LABEL))
        .map(String::as_str)
}

/// The pods of the set keyed by ordinal (pods with other names are not the set's).
fn by_ordinal<'a>(set_name: &str, pods: &'a [Pod]) -> BTreeMap<i32, &'a Pod> {
    pods.iter()
        .filter_map(|pod| {
            let ordinal = parse_ordinal(set_name, pod.metadata.name.as_deref()?)?;
            Some((ordinal, pod))
        })
        .collect()
}

/// The actions to take now, given the set's own pods and the revision of its template.
pub(crate) fn plan(set: &StatefulSet, pods: &[Pod], update_revision: &str) -> Vec<SetAction> {
    let set_name = set.metadata.name.as_deref().unwrap_or_default();
    let parallel = is_parallel(set);
    let pods = by_ordinal(set_name, pods);
    let range = ordinal_range(set);
    let mut actions = Vec::new();

    for ordinal in range.clone() {
        match pods.get(&ordinal) {
            None => actions.push(SetAction::Create(ordinal)),
            Some(pod) if is_pod_terminating(pod) => {}
            Some(pod) if is_pod_terminal(pod) => actions.push(SetAction::Recreate {
                name: pod.metadata.name.clone().unwrap_or_default(),
                failed: pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"),
            }),
            Some(pod) if is_pod_running_and_ready(pod) => continue,
            Some(_) => {}
        }
        if !parallel {
            // Monotonic: nothing further until this ordinal is Running and Ready.
            return actions;
        }
    }

    let condemned = pods
        .iter()
        .rev()
        .filter(|(ordinal, _)| !range.contains(ordinal));
    for (ordinal, pod) in condemned {
        if !is_pod_terminating(pod) {
            actions.push(SetAction::Delete {
                name: pod.metadata.name.clone().unwrap_or_default(),
                ordinal: *ordinal,
            });
        }
        if !parallel {
            // One at a time: wait for this one to be gone before the next.
            return actions;
        }
    }
    if !actions.is_empty() {
        return actions;
    }

    rolling_update(set, &pods, &range, update_revision)
}

/// RollingUpdate: replace the highest-ordinal pod not on `update_revision` (ordinals below
/// the partition are kept), once every pod in range is Running and Ready. OnDelete replaces
/// nothing: a pod gets the new template when it is deleted.
fn rolling_update(
    set: &StatefulSet,
    pods: &BTreeMap<i32, &Pod>,
    range: &std::ops::Range<i32>,
    update_revision: &str,
) -> Vec<SetAction> {
    let strategy = set
        .spec
        .as_ref()
        .and_then(|spec| spec.update_strategy.as_ref());
    if strategy_type(set) == "OnDelete" {
        return Vec::new();
    }
    let partition = strategy
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let all_ready = range.clone().all(|ordinal| {
        pods.get(&ordinal)
            .is_some_and(|pod| is_pod_running_and_ready(pod))
    });
    if !all_ready {
        return Vec::new();
    }
    // The partition counts from the first ordinal (`updateMin` indexes the replicas).
    let update_min = range.start.saturating_add(partition.max(0));
    for ordinal in range.clone().rev().filter(|ordinal| *ordinal >= update_min) {
        if let Some(pod) = pods.get(&ordinal)
            && revision_of(pod) != Some(update_revision)
        {
            return vec![SetAction::Delete {
                name: pod.metadata.name.clone().unwrap_or_default(),
                ordinal,
            }];
        }
    }
    Vec::new()
}

/// The revisions and collision count a status reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RevisionNames<'a> {
    pub current: &'a str,
    pub update: &'a str,
    pub collision_count: i32,
}

/// The status to report for the set's current pods (`computeReplicaStatus` and
/// `completeRollingUpdate` in Kubernetes): once every pod is on the update revision and ready,
/// a RollingUpdate is complete and the update revision becomes the current one.
///
/// `now_seconds` (Unix time) decides availability when `minReadySeconds` is set.
pub(crate) fn status(
    set: &StatefulSet,
    pods: &[Pod],
    revisions: RevisionNames<'_>,
    now_seconds: i64,
) -> StatefulSetStatus {
    let previous = set.status.clone().unwrap_or_default();
    let min_ready_seconds = set
        .spec
        .as_ref()
        .and_then(|spec| spec.min_ready_seconds)
        .unwrap_or(0);
    let set_name = set.metadata.name.as_deref().unwrap_or_default();
    let pods: Vec<&Pod> = by_ordinal(set_name, pods).into_values().collect();
    let count = |predicate: &dyn Fn(&Pod) -> bool| {
        i32::try_from(pods.iter().filter(|pod| predicate(pod)).count()).unwrap_or(i32::MAX)
    };
    let on = |revision: &str| {
        count(&|pod: &Pod| !is_pod_terminating(pod) && revision_of(pod) == Some(revision))
    };
    let replicas = count(&|_| true);
    let ready_replicas = count(&|pod| is_pod_running_and_ready(pod));
    let updated_replicas = on(revisions.update);
    let rolling = strategy_type(set) == "RollingUpdate";
    let complete = rolling && updated_replicas == replicas && ready_replicas == replicas;
    let (current_revision, current_replicas) = if complete {
        (revisions.update, updated_replicas)
    } else {
        (revisions.current, on(revisions.current))
    };
    StatefulSetStatus {
        observed_generation: set.metadata.generation,
        replicas,
        ready_replicas: Some(ready_replicas),
        available_replicas: Some(count(&|pod| {
            is_available(pod, min_ready_seconds, now_seconds)
        })),
        current_replicas: Some(current_replicas),
        updated_replicas: Some(updated_replicas),
        current_revision: Some(current_revision.to_string()),
        update_revision: Some(revisions.update.to_string()),
        collision_count: Some(revisions.collision_count),
        conditions: previous.conditions,
    }
}

/// `spec.updateStrategy.type`, `RollingUpdate` when unset (the API server's default).
fn strategy_type(set: &StatefulSet) -> &str {
    set.spec
        .as_ref()
        .and_then(|spec| spec.update_strategy.as_ref())
        .and_then(|strategy| strategy.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

/// Running and Ready for at least `min_ready_seconds` (Kubernetes' `IsPodAvailable`).
pub(crate) fn is_available(pod: &Pod, min_ready_seconds: i32, now_seconds: i64) -> bool {
    if !is_pod_running_and_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    ready_since(pod).is_some_and(|since| now_seconds - since >= i64::from(min_ready_seconds))
}

/// Unix time at which the pod's Ready condition last changed.
pub(crate) fn ready_since(pod: &Pod) -> Option<i64> {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Ready"))
        .and_then(|ready| ready.last_transition_time.as_ref())
        .map(|time| time.0.as_second())
}

#[cfg(test)]
mod tests;
