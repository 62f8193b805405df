//! What one pass of the Job controller decides, from the Job and its pods at a moment: pure
//! decisions, as kube-controller-manager 1.33's `syncJob` and `manageJob` make them
//! (pkg/controller/job/job_controller.go), with its terminal-condition delay: a Job first
//! gets `SuccessCriteriaMet` or `FailureTarget`, and `Complete` or `Failed` (with the same
//! reason and message) once none of its pods is running or terminating.
//!
//! Pods are counted as they are found (succeeded and failed pods stay until the Job is
//! deleted, as nothing here removes finished pods): the Job's `succeeded`/`failed` are the
//! numbers of its pods in those phases, never less than already reported.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::events::Note;
use k8s_labs_podutil::{is_pod_ready, is_pod_terminating};

/// The default `backoffLimit`.
const DEFAULT_BACKOFF_LIMIT: i32 = 6;
/// The first delay before a failed pod is replaced, doubled per failure
/// (`DefaultJobPodFailureBackOff`), and its cap (`MaxJobPodFailureBackOff`).
const POD_FAILURE_BACKOFF: SignedDuration = SignedDuration::from_secs(10);
const MAX_POD_FAILURE_BACKOFF: SignedDuration = SignedDuration::from_secs(600);

/// Reasons and messages of the terminal conditions, as upstream words them.
pub(crate) const BACKOFF_LIMIT_EXCEEDED: (&str, &str) = (
    "BackoffLimitExceeded",
    "Job has reached the specified backoff limit",
);
pub(crate) const DEADLINE_EXCEEDED: (&str, &str) = (
    "DeadlineExceeded",
    "Job was active longer than specified deadline",
);
pub(crate) const COMPLETIONS_REACHED: (&str, &str) = (
    "CompletionsReached",
    "Reached expected number of succeeded pods",
);

/// The decisions of one pass.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// How many pods to create from the template.
    pub create: usize,
    /// The pods to delete (by name): extra ones, or all active ones of a failing Job.
    pub delete: Vec<String>,
    /// The status to write (already counting the pods created and deleted).
    pub status: JobStatus,
    /// Events about the Job (the per-pod ones are recorded as the pods are made).
    pub notes: Vec<Note>,
    /// When to look again although nothing changes (a deadline, a backoff).
    pub requeue: Option<Duration>,
}

/// What the pods of a Job are doing.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Observed {
    pub active: Vec<String>,
    pub succeeded: i32,
    pub failed: i32,
    pub ready: i32,
    pub terminating: i32,
    /// Container restarts of the active pods (restartPolicy OnFailure counts these).
    pub restarts: i32,
    /// When the latest failure after the latest success happened, and how many there were.
    pub failures_since_success: (i32, Option<Timestamp>),
}

/// Counts the Job's pods (`getStatus`, `countReadyPods`, `countTerminatingPods`).
pub(crate) fn observe(pods: &[&Pod]) -> Observed {
    let mut observed = Observed::default();
    let mut last_success = None;
    let mut failures: Vec<Timestamp> = Vec::new();
    for pod in pods {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        match phase {
            Some("Succeeded") => {
                observed.succeeded += 1;
                last_success = last_success.max(finished_at(pod));
            }
            Some("Failed") => {
                observed.failed += 1;
                failures.extend(finished_at(pod));
            }
            _ if is_pod_terminating(pod) => observed.terminating += 1,
            _ => {
                observed
                    .active
                    .push(pod.metadata.name.clone().unwrap_or_default());
                observed.ready += i32::from(is_pod_ready(pod));
                observed.restarts += restarts(pod);
            }
        }
    }
    let after: Vec<Timestamp> = failures
        .into_iter()
        .filter(|at| last_success.is_none_or(|success| *at > success))
        .collect();
    observed.failures_since_success = (count(after.len()), after.into_iter().max());
    observed
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// When a finished pod's last container ended (or when it was created, if none says).
fn finished_at(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref()?;
    status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max()
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |list| list.iter().map(|c| c.restart_count).sum())
}

/// Whether the Job has condition `kind` with status True.
pub(crate) fn has_condition<'a>(job: &'a Job, kind: &str) -> Option<&'a JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind && c.status == "True")
}

/// Complete or Failed: nothing more happens to the Job but its TTL.
pub(crate) fn is_finished(job: &Job) -> bool {
    has_condition(job, "Complete").is_some() || has_condition(job, "Failed").is_some()
}

/// When a finished Job finished: its completion time, or when it failed.
pub(crate) fn finished_time(job: &Job) -> Option<Timestamp> {
    if let Some(time) = job.status.as_ref().and_then(|s| s.completion_time.as_ref()) {
        return Some(time.0);
    }
    has_condition(job, "Failed")
        .or_else(|| has_condition(job, "Complete"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

/// How long until a finished Job's `ttlSecondsAfterFinished` runs out (zero or less: delete
/// it now); None without a TTL or before it finished (`ttlafterfinished` controller).
pub(crate) fn ttl_remaining(job: &Job, now: Timestamp) -> Option<SignedDuration> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = finished_time(job)?;
    Some((finished + SignedDuration::from_secs(i64::from(ttl))).duration_since(now))
}

fn condition(kind: &str, (reason, message): (&str, &str), now: Timestamp) -> JobCondition {
    JobCondition {
        type_: kind.to_string(),
        status: "True".to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The reason and message of a condition.
fn reason_of(condition: &JobCondition) -> (String, String) {
    (
        condition.reason.clone().unwrap_or_default(),
        condition.message.clone().unwrap_or_default(),
    )
}

/// The pass over an unfinished Job (`syncJob`): counts, the interim and terminal conditions,
/// and the pods to create or delete.
pub(crate) fn plan(job: &Job, pods: &[&Pod], now: Timestamp) -> Plan {
    let spec = job.spec.clone().unwrap_or_default();
    let observed = observe(pods);
    let old = job.status.clone().unwrap_or_default();
    let suspended = spec.suspend == Some(true);
    let mut status = JobStatus {
        succeeded: nonzero(observed.succeeded.max(old.succeeded.unwrap_or(0))),
        failed: nonzero(observed.failed.max(old.failed.unwrap_or(0))),
        ready: Some(observed.ready),
        terminating: Some(observed.terminating),
        uncounted_terminated_pods: Some(UncountedTerminatedPods::default()),
        start_time: old.start_time.clone(),
        conditions: old.conditions.clone(),
        ..old.clone()
    };
    if status.start_time.is_none() && !suspended {
        status.start_time = Some(Time(now));
    }
    let mut plan = Plan::default();
    let target = interim_condition(job, &spec, &observed, &status, now);
    if let Some((kind, reason)) = &target
        && has_condition(job, kind).is_none()
    {
        status
            .conditions
            .get_or_insert_with(Vec::new)
            .push(condition(kind, (&reason.0, &reason.1), now));
    }
    match target {
        Some((kind, reason)) => {
            let failing = kind == "FailureTarget";
            if failing {
                plan.delete = observed.active.clone();
            }
            let settled = observed.terminating == 0
                && (failing || observed.active.is_empty())
                && plan.delete.is_empty();
            if settled {
                finish(&mut status, &mut plan, failing, &reason, now);
            }
        }
        None => {
            suspension(suspended, now, &mut status, &mut plan);
            if suspended {
                plan.delete = observed.active.clone();
            } else {
                manage(&spec, &observed, now, &mut plan);
            }
        }
    }
    let active =
        count(observed.active.len() + plan.create).saturating_sub(count(plan.delete.len()));
    status.active = nonzero(active);
    status.terminating = Some(observed.terminating + count(plan.delete.len()));
    if !suspended
        && target_none(job)
        && let Some(deadline) = spec.active_deadline_seconds
    {
        let started = status.start_time.as_ref().map_or(now, |t| t.0);
        let left = (started + SignedDuration::from_secs(deadline)).duration_since(now);
        plan.requeue = earliest(plan.requeue, left);
    }
    plan.status = status;
    plan
}

fn target_none(job: &Job) -> bool {
    has_condition(job, "FailureTarget").is_none()
        && has_condition(job, "SuccessCriteriaMet").is_none()
}

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// The interim condition the Job has or reaches now, with its reason and message: an earlier
/// one stays; otherwise the backoff limit, then the deadline, then success.
fn interim_condition(
    job: &Job,
    spec: &k8s_openapi::api::batch::v1::JobSpec,
    observed: &Observed,
    status: &JobStatus,
    now: Timestamp,
) -> Option<(&'static str, (String, String))> {
    for kind in ["FailureTarget", "SuccessCriteriaMet"] {
        if let Some(existing) = has_condition(job, kind) {
            return Some((kind, reason_of(existing)));
        }
    }
    let owned = |(reason, message): (&str, &str)| (reason.to_string(), message.to_string());
    let backoff_limit = spec.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT);
    let on_failure = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        == Some("OnFailure");
    let failed = status.failed.unwrap_or(0);
    // `pastBackoffLimitOnFailure`: restarts of OnFailure pods count as failures.
    let restarts_exceed = match backoff_limit {
        0 => observed.restarts > 0,
        limit => observed.restarts >= limit,
    };
    if failed > backoff_limit || (on_failure && restarts_exceed) {
        return Some(("FailureTarget", owned(BACKOFF_LIMIT_EXCEEDED)));
    }
    if let (Some(deadline), Some(start)) = (spec.active_deadline_seconds, &status.start_time)
        && spec.suspend != Some(true)
        && now >= start.0 + SignedDuration::from_secs(deadline)
    {
        return Some(("FailureTarget", owned(DEADLINE_EXCEEDED)));
    }
    let succeeded = status.succeeded.unwrap_or(0);
    let complete = match spec.completions {
        Some(completions) => succeeded >= completions && observed.active.is_empty(),
        None => succeeded > 0 && observed.active.is_empty(),
    };
    complete.then(|| ("SuccessCriteriaMet", owned(COMPLETIONS_REACHED)))
}

/// Adds the terminal condition (Failed, or Complete with the completion time) and its event.
fn finish(
    status: &mut JobStatus,
    plan: &mut Plan,
    failing: bool,
    reason: &(String, String),
    now: Timestamp,
) {
    let (kind, note) = if failing {
        let note = Note {
            type_: crate::events::EventType::Warning,
            reason: if reason.0 == DEADLINE_EXCEEDED.0 {
                DEADLINE_EXCEEDED.0
            } else {
                BACKOFF_LIMIT_EXCEEDED.0
            },
            message: reason.1.clone(),
        };
        ("Failed", note)
    } else {
        status.completion_time = Some(Time(now));
        ("Complete", Note::normal("Completed", "Job completed"))
    };
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(condition(kind, (&reason.0, &reason.1), now));
    plan.notes.push(note);
}

/// The `Suspended` condition: True (`JobSuspended`) while suspended; set False
/// (`JobResumed`) on resume, which also restarts the Job's clock, so that
/// `activeDeadlineSeconds` counts only the time it runs.
fn suspension(suspended: bool, now: Timestamp, status: &mut JobStatus, plan: &mut Plan) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let existing = conditions.iter_mut().find(|c| c.type_ == "Suspended");
    let wanted = if suspended { "True" } else { "False" };
    match existing {
        Some(condition) if condition.status == wanted => return,
        None if !suspended => {
            if conditions.is_empty() {
                status.conditions = None;
            }
            return;
        }
        Some(condition) => {
            let (reason, message) = if suspended {
                ("JobSuspended", "Job suspended")
            } else {
                ("JobResumed", "Job resumed")
            };
            *condition = JobCondition {
                status: wanted.to_string(),
                ..self::condition("Suspended", (reason, message), now)
            };
        }
        None => conditions.push(condition(
            "Suspended",
            ("JobSuspended", "Job suspended"),
            now,
        )),
    }
    if suspended {
        plan.notes.push(Note::normal("Suspended", "Job suspended"));
    } else {
        plan.notes.push(Note::normal("Resumed", "Job resumed"));
        status.start_time = Some(Time(now));
    }
}

/// `manageJob` for a running Job: as many active pods as parallelism and the completions
/// left allow, after the backoff of recent failures.
fn manage(
    spec: &k8s_openapi::api::batch::v1::JobSpec,
    observed: &Observed,
    now: Timestamp,
    plan: &mut Plan,
) {
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let active = count(observed.active.len());
    let succeeded = observed.succeeded;
    let want = match spec.completions {
        Some(completions) => parallelism.min((completions - succeeded).max(0)),
        None if succeeded > 0 => active,
        None => parallelism,
    };
    if active > want {
        // The newest go first: they have done the least work.
        let extra = usize::try_from(active - want).unwrap_or(0);
        plan.delete = observed.active.iter().rev().take(extra).cloned().collect();
        return;
    }
    if active == want {
        return;
    }
    let (failures, last_failure) = observed.failures_since_success;
    if failures > 0
        && let Some(last) = last_failure
    {
        let exponent = u32::try_from(failures - 1).unwrap_or(0).min(16);
        let delay = POD_FAILURE_BACKOFF
            .checked_mul(1 << exponent)
            .unwrap_or(MAX_POD_FAILURE_BACKOFF)
            .min(MAX_POD_FAILURE_BACKOFF);
        let left = (last + delay).duration_since(now);
        if left > SignedDuration::ZERO {
            plan.requeue = earliest(plan.requeue, left);
            return;
        }
    }
    plan.create = usize::try_from(want - active).unwrap_or(0);
}

/// The earlier of a pending requeue and one in `left` (at least a second away).
fn earliest(current: Option<Duration>, left: SignedDuration) -> Option<Duration> {
    let left = Duration::try_from(left.max(SignedDuration::from_secs(1))).ok()?;
    Some(current.map_or(left, |c| c.min(left)))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
