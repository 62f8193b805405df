//! A Deployment's status and its Progressing and Available conditions: pure functions of the
//! ReplicaSets and the clock, as `sync.go` (`calculateStatus`, `syncDeploymentStatus`),
//! `progress.go` (`syncRolloutStatus`, `requeueStuckDeployment`) and the condition helpers
//! of `deployment_util.go` compute them, with upstream's reasons and messages.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::util::{available_count, deployment_replicas, max_unavailable, replica_count};

/// Condition types.
pub(crate) const PROGRESSING: &str = "Progressing";
pub(crate) const AVAILABLE: &str = "Available";
const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Progressing reasons (`deployment_util.go`).
pub(crate) const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub(crate) const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub(crate) const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
const RS_UPDATED: &str = "ReplicaSetUpdated";
const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
const TIMED_OUT: &str = "ProgressDeadlineExceeded";
const PAUSED: &str = "DeploymentPaused";
const RESUMED: &str = "DeploymentResumed";

/// `NewDeploymentCondition`: both times now.
pub(crate) fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: &Time,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// `GetDeploymentCondition`.
pub(crate) fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

/// `SetDeploymentCondition`: nothing if status and reason are unchanged; the transition
/// time kept if only the reason changed.
pub(crate) fn set_condition(status: &mut DeploymentStatus, mut new: DeploymentCondition) {
    if let Some(current) = get_condition(status, &new.type_) {
        if current.status == new.status && current.reason == new.reason {
            return;
        }
        if current.status == new.status {
            new.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &new.type_);
    status.conditions.get_or_insert_with(Vec::new).push(new);
}

/// `RemoveDeploymentCondition`.
pub(crate) fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
    }
}

/// `HasProgressDeadline`: set and not "forever".
pub(crate) fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

/// Zero as upstream's `omitempty` int32 leaves it: absent.
fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

fn ready_replicas(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// `calculateStatus`: counts over every set (`updated` from the new one), the conditions
/// carried over, and Available by whether `replicas - maxUnavailable` pods are available.
pub(crate) fn calculate_status(
    d: &Deployment,
    all: &[ReplicaSet],
    new: Option<&ReplicaSet>,
    now: &Time,
) -> DeploymentStatus {
    let previous = d.status.clone().unwrap_or_default();
    let available = available_count(all);
    let unavailable = (replica_count(all) - available).max(0);
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: nonzero(all.iter().map(status_replicas).sum()),
        updated_replicas: nonzero(new.map_or(0, status_replicas)),
        ready_replicas: nonzero(all.iter().map(ready_replicas).sum()),
        available_replicas: nonzero(available),
        unavailable_replicas: nonzero(unavailable),
        collision_count: previous.collision_count,
        conditions: previous.conditions.clone(),
        terminating_replicas: None,
    };
    let minimum = deployment_replicas(d) - max_unavailable(d).unwrap_or(0);
    let available_condition = if available >= minimum {
        condition(
            AVAILABLE,
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        condition(
            AVAILABLE,
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set_condition(&mut status, available_condition);
    status
}

/// `DeploymentComplete`: every replica updated and available, the latest spec observed.
pub(crate) fn is_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let desired = deployment_replicas(d);
    status.updated_replicas.unwrap_or(0) == desired
        && status.replicas.unwrap_or(0) == desired
        && status.available_replicas.unwrap_or(0) == desired
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// `DeploymentProgressing`: more updated, fewer old, more ready or more available pods
/// than the recorded status shows.
fn is_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// `DeploymentTimedOut`: no progress for `progressDeadlineSeconds` since the Progressing
/// condition was last updated.
fn timed_out(d: &Deployment, status: &DeploymentStatus, now: &Time) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(progressing) = get_condition(status, PROGRESSING) else {
        return false;
    };
    match progressing.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => progressing
            .last_update_time
            .as_ref()
            .is_some_and(|from| from.0.as_second() + i64::from(deadline) < now.0.as_second()),
    }
}

/// Who a message speaks of: the new set if there is one, else the Deployment.
fn subject(d: &Deployment, new: Option<&ReplicaSet>) -> String {
    match new.and_then(|rs| rs.metadata.name.as_deref()) {
        Some(name) => format!("ReplicaSet {name:?}"),
        None => format!(
            "Deployment {:?}",
            d.metadata.name.as_deref().unwrap_or_default()
        ),
    }
}

/// `syncRolloutStatus` without the write: the status with Progressing brought up to date
/// (complete, progressing, or past its deadline) and the sets' ReplicaFailure carried over.
pub(crate) fn rollout_status(
    d: &Deployment,
    all: &[ReplicaSet],
    new: Option<&ReplicaSet>,
    now: &Time,
) -> DeploymentStatus {
    let mut status = calculate_status(d, all, new, now);
    if progress_deadline(d).is_none() {
        remove_condition(&mut status, PROGRESSING);
    }
    let current = d
        .status
        .as_ref()
        .and_then(|s| get_condition(s, PROGRESSING))
        .cloned();
    let finished = status.replicas == status.updated_replicas
        && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
    if progress_deadline(d).is_some() && !finished {
        let who = subject(d, new);
        if is_complete(d, &status) {
            let message = format!("{who} has successfully progressed.");
            set_condition(
                &mut status,
                condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message, now),
            );
        } else if is_progressing(d, &status) {
            let mut updated = condition(
                PROGRESSING,
                "True",
                RS_UPDATED,
                format!("{who} is progressing."),
                now,
            );
            if let Some(current) = &current {
                if current.status == "True" {
                    updated.last_transition_time = current.last_transition_time.clone();
                }
                remove_condition(&mut status, PROGRESSING);
            }
            set_condition(&mut status, updated);
        } else if timed_out(d, &status, now) {
            let message = format!("{who} has timed out progressing.");
            set_condition(
                &mut status,
                condition(PROGRESSING, "False", TIMED_OUT, message, now),
            );
        }
    }
    let failure = all.iter().find_map(|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == REPLICA_FAILURE))
    });
    match failure {
        Some(failure) => set_condition(
            &mut status,
            DeploymentCondition {
                type_: REPLICA_FAILURE.into(),
                status: failure.status.clone(),
                reason: failure.reason.clone(),
                message: failure.message.clone(),
                last_update_time: failure.last_transition_time.clone(),
                last_transition_time: failure.last_transition_time.clone(),
            },
        ),
        None => remove_condition(&mut status, REPLICA_FAILURE),
    }
    status
}

/// `requeueStuckDeployment`: seconds until a rollout still in progress passes its deadline.
pub(crate) fn seconds_to_deadline(
    d: &Deployment,
    status: &DeploymentStatus,
    now: &Time,
) -> Option<u64> {
    let deadline = progress_deadline(d)?;
    let progressing = get_condition(status, PROGRESSING)?;
    if progressing.status != "True" || progressing.reason.as_deref() == Some(NEW_RS_AVAILABLE) {
        return None;
    }
    let from = progressing.last_update_time.as_ref()?.0.as_second();
    let left = from + i64::from(deadline) - now.0.as_second();
    // Past the deadline already: look again at once (a second, the shortest requeue).
    Some(u64::try_from(left.max(0)).unwrap_or(0) + 1)
}

/// `checkPausedConditions`: Progressing Unknown "Deployment is paused" / "is resumed",
/// never over a timed-out rollout. `None` when nothing changes.
pub(crate) fn paused_status(d: &Deployment, now: &Time) -> Option<DeploymentStatus> {
    progress_deadline(d)?;
    let mut status = d.status.clone().unwrap_or_default();
    let reason = get_condition(&status, PROGRESSING).and_then(|c| c.reason.clone());
    if reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let shown = reason.as_deref() == Some(PAUSED);
    let (why, message) = match (paused, shown) {
        (true, false) => (PAUSED, "Deployment is paused"),
        (false, true) => (RESUMED, "Deployment is resumed"),
        _ => return None,
    };
    set_condition(
        &mut status,
        condition(PROGRESSING, "Unknown", why, message.into(), now),
    );
    Some(status)
}

#[cfg(test)]
mod tests;
