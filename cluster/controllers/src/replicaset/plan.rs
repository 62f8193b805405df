//! How many pods to create or which to delete, and the status to report: pure decisions.
//!
//! Mirrors `replica_set.go` (`manageReplicas`, `getPodsToDelete`) and
//! `replica_set_utils.go` (`calculateStatus`).
//!
//! Which pods go first on scale-down follows `controller.ActivePodsWithRanks`, simplified:
//! 1. not scheduled (no `nodeName`) before scheduled;
//! 2. Pending before Unknown before Running;
//! 3. not Ready before Ready;
//! 4. lower `controller.kubernetes.io/pod-deletion-cost` before higher;
//! 5. more of the set's active pods on the same node before fewer ("doubled up");
//! 6. Ready more recently before Ready for longer (upstream compares on a logarithmic
//!    scale; here the plain time is compared);
//! 7. more container restarts before fewer;
//! 8. newer before older (creationTimestamp).

use std::cmp::Ordering;
use std::collections::HashMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;

use k8s_labs_podutil::is_pod_ready;

/// Annotation with which users say which pods to remove first on scale-down.
const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// The condition a set reports while creating or deleting pods fails.
pub(crate) const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Desired replicas (default 1).
pub(crate) fn desired_replicas(set: &ReplicaSet) -> usize {
    let replicas = set
        .spec
        .as_ref()
        .and_then(|spec| spec.replicas)
        .unwrap_or(1);
    usize::try_from(replicas).unwrap_or(0)
}

/// What to do about the number of pods.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scale {
    Create(usize),
    /// Delete these pods (by name), best candidates first.
    Delete(Vec<String>),
    Nothing,
}

/// Compares the set's active pods with `replicas` (`manageReplicas`).
pub(crate) fn scale(set: &ReplicaSet, pods: &[&Pod]) -> Scale {
    let desired = desired_replicas(set);
    match pods.len().cmp(&desired) {
        Ordering::Less => Scale::Create(desired - pods.len()),
        Ordering::Greater => Scale::Delete(
            deletion_order(pods)
                .into_iter()
                .take(pods.len() - desired)
                .filter_map(|pod| pod.metadata.name.clone())
                .collect(),
        ),
        Ordering::Equal => Scale::Nothing,
    }
}

/// The pods ordered best-to-delete first (see the module documentation).
pub(crate) fn deletion_order<'a>(pods: &[&'a Pod]) -> Vec<&'a Pod> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for pod in pods {
        *per_node.entry(node_name(pod)).or_default() += 1;
    }
    let mut ordered = pods.to_vec();
    ordered.sort_by(|a, b| {
        let scheduled = |pod: &Pod| !node_name(pod).is_empty();
        scheduled(a)
            .cmp(&scheduled(b))
            .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
            .then_with(|| is_pod_ready(a).cmp(&is_pod_ready(b)))
            .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
            .then_with(|| per_node[node_name(b)].cmp(&per_node[node_name(a)]))
            .then_with(|| newest(ready_since(b)).cmp(&newest(ready_since(a))))
            .then_with(|| restarts(b).cmp(&restarts(a)))
            .then_with(|| newest(created(b)).cmp(&newest(created(a))))
    });
    ordered
}

/// An unknown time sorts as the newest (upstream: "empty time < newer < older").
fn newest(time: Option<i64>) -> i64 {
    time.unwrap_or(i64::MAX)
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|spec| spec.node_name.as_deref())
        .unwrap_or_default()
}

fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Running") => 2,
        Some("Unknown") => 1,
        _ => 0,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(POD_DELETION_COST))
        .and_then(|cost| cost.parse().ok())
        .unwrap_or(0)
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|status| status.container_statuses.as_ref())
        .map(|statuses| statuses.iter().map(|s| s.restart_count).sum())
        .unwrap_or(0)
}

fn created(pod: &Pod) -> Option<i64> {
    pod.metadata
        .creation_timestamp
        .as_ref()
        .map(|time| time.0.as_millisecond())
}

/// Unix time (seconds) at which a Ready pod's Ready condition last changed.
pub(crate) fn ready_since(pod: &Pod) -> Option<i64> {
    if !is_pod_ready(pod) {
        return None;
    }
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Ready"))
        .and_then(|ready| ready.last_transition_time.as_ref())
        .map(|time| time.0.as_second())
}

fn min_ready_seconds(set: &ReplicaSet) -> i64 {
    i64::from(
        set.spec
            .as_ref()
            .and_then(|spec| spec.min_ready_seconds)
            .unwrap_or(0),
    )
}

/// Ready for at least `minReadySeconds` (`podutil.IsPodAvailable`: Ready, not Running+Ready).
pub(crate) fn is_available(pod: &Pod, min_ready_seconds: i64, now_seconds: i64) -> bool {
    if !is_pod_ready(pod) {
        return false;
    }
    min_ready_seconds <= 0
        || ready_since(pod).is_some_and(|since| now_seconds - since >= min_ready_seconds)
}

/// Seconds until the next Ready pod becomes available, if one is waiting for that.
pub(crate) fn next_availability_in(set: &ReplicaSet, pods: &[&Pod], now: i64) -> Option<u64> {
    let min_ready = min_ready_seconds(set);
    if min_ready <= 0 {
        return None;
    }
    pods.iter()
        .filter_map(|pod| ready_since(pod))
        .map(|since| since + min_ready - now)
        .filter(|remaining| *remaining > 0)
        .min()
        .and_then(|seconds| u64::try_from(seconds).ok())
}

/// The status for the set's active pods (`calculateStatus`). `failure` is the message of a
/// failed create/delete (`ReplicaFailure` condition, reason `FailedCreate`/`FailedDelete`),
/// cleared when pods are managed without error.
pub(crate) fn status(
    set: &ReplicaSet,
    pods: &[&Pod],
    failure: Option<(&str, String)>,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> ReplicaSetStatus {
    let previous = set.status.clone().unwrap_or_default();
    let template_labels = set
        .spec
        .as_ref()
        .and_then(|spec| spec.template.as_ref())
        .and_then(|template| template.metadata.as_ref())
        .and_then(|meta| meta.labels.clone())
        .unwrap_or_default();
    let count = |predicate: &dyn Fn(&Pod) -> bool| {
        i32::try_from(pods.iter().filter(|pod| predicate(pod)).count()).unwrap_or(i32::MAX)
    };
    let min_ready = min_ready_seconds(set);
    let now_seconds = now.0.as_second();

    let mut conditions: Vec<ReplicaSetCondition> = previous.conditions.unwrap_or_default();
    let existing = conditions.iter().position(|c| c.type_ == REPLICA_FAILURE);
    match (failure, existing) {
        (Some((reason, message)), None) => conditions.push(ReplicaSetCondition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: Some(now.clone()),
        }),
        (Some(_), Some(_)) => {}
        (None, Some(index)) => {
            conditions.remove(index);
        }
        (None, None) => {}
    }

    ReplicaSetStatus {
        replicas: count(&|_| true),
        fully_labeled_replicas: Some(count(&|pod| {
            let labels = pod.metadata.labels.as_ref();
            template_labels
                .iter()
                .all(|(key, value)| labels.and_then(|labels| labels.get(key)) == Some(value))
        })),
        ready_replicas: Some(count(&is_pod_ready)),
        available_replicas: Some(count(&|pod| is_available(pod, min_ready, now_seconds))),
        observed_generation: set.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
        terminating_replicas: previous.terminating_replicas,
    }
}

#[cfg(test)]
mod tests;
