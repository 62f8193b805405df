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

use crate::pod_state::{is_running_and_ready, is_terminal, is_terminating};
use crate::statefulset::identity::{REVISION_LABEL, parse_ordinal};

/// One step the controller takes now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetAction {
    /// Create the claims and then the pod of this ordinal.
    CreatePod(i32),
    /// Delete this pod (failed, condemned by a scale-down, or of an old revision).
    DeletePod { name: String, ordinal: i32 },
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
            None => actions.push(SetAction::CreatePod(ordinal)),
            Some(pod) if is_terminating(pod) => {}
            Some(pod) if is_terminal(pod) => actions.push(SetAction::DeletePod {
                name: pod.metadata.name.clone().unwrap_or_default(),
                ordinal,
            }),
            Some(pod) if is_running_and_ready(pod) => continue,
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
        if !is_terminating(pod) {
            actions.push(SetAction::DeletePod {
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
/// the partition are kept), once every pod in range is Running and Ready.
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
    if strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
        return Vec::new();
    }
    let partition = strategy
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let all_ready = range.clone().all(|ordinal| {
        pods.get(&ordinal)
            .is_some_and(|pod| is_running_and_ready(pod))
    });
    if !all_ready {
        return Vec::new();
    }
    for ordinal in range.clone().rev().filter(|ordinal| *ordinal >= partition) {
        if let Some(pod) = pods.get(&ordinal)
            && revision_of(pod) != Some(update_revision)
        {
            return vec![SetAction::DeletePod {
                name: pod.metadata.name.clone().unwrap_or_default(),
                ordinal,
            }];
        }
    }
    Vec::new()
}

/// The status to report for the set's current pods (`updateStatus` in Kubernetes).
///
/// `now_seconds` (Unix time) decides availability when `minReadySeconds` is set.
pub(crate) fn status(
    set: &StatefulSet,
    pods: &[Pod],
    update_revision: &str,
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

    let replicas = pods.len();
    let all_updated = pods
        .iter()
        .all(|pod| is_terminating(pod) || revision_of(pod) == Some(update_revision));
    let desired = ordinal_range(set).len();
    let current_revision = match previous.current_revision.as_deref() {
        Some(current) if !(current.is_empty() || all_updated && replicas == desired) => {
            current.to_string()
        }
        _ => update_revision.to_string(),
    };
    let count = |predicate: &dyn Fn(&Pod) -> bool| {
        i32::try_from(pods.iter().filter(|pod| predicate(pod)).count()).unwrap_or(i32::MAX)
    };
    StatefulSetStatus {
        observed_generation: set.metadata.generation,
        replicas: i32::try_from(replicas).unwrap_or(i32::MAX),
        ready_replicas: Some(count(&|pod| is_running_and_ready(pod))),
        available_replicas: Some(count(&|pod| {
            is_available(pod, min_ready_seconds, now_seconds)
        })),
        current_replicas: Some(count(&|pod| {
            !is_terminating(pod) && revision_of(pod) == Some(current_revision.as_str())
        })),
        updated_replicas: Some(count(&|pod| {
            !is_terminating(pod) && revision_of(pod) == Some(update_revision)
        })),
        current_revision: Some(current_revision.clone()),
        update_revision: Some(update_revision.to_string()),
        collision_count: Some(previous.collision_count.unwrap_or(0)),
        conditions: previous.conditions,
    }
}

/// Running and Ready for at least `min_ready_seconds` (Kubernetes' `IsPodAvailable`).
pub(crate) fn is_available(pod: &Pod, min_ready_seconds: i32, now_seconds: i64) -> bool {
    if !is_running_and_ready(pod) {
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
