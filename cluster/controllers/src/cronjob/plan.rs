//! What one pass of the CronJob controller decides, from the CronJob, the Jobs it controls and
//! the time: pure decisions, as kube-controller-manager 1.33's `syncCronJob` and
//! `cleanupFinishedJobs` (pkg/controller/cronjob/cronjob_controllerv2.go) make them.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::schedule::{self, MAX_MISSED, Schedule};
use crate::events::Note;

/// The decisions of one pass.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// The status to write (the Job to create is added to `active` once it exists).
    pub status: CronJobStatus,
    /// The scheduled time of the Job to create now, with the schedule that names it.
    pub create: Option<(Timestamp, Schedule)>,
    /// Jobs to delete in the background: the running ones a `Replace` policy replaces, and
    /// finished ones beyond the history limits.
    pub delete: Vec<String>,
    pub notes: Vec<Note>,
    /// When the schedule fires next.
    pub requeue: Option<Duration>,
}

/// The name of the Job for a scheduled time: `<cronjob>-<minutes since the epoch>`.
pub(crate) fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// Complete or Failed, with the condition's type.
fn finished(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    ["Complete", "Failed"].into_iter().find(|kind| {
        conditions
            .iter()
            .any(|c| c.type_ == *kind && c.status == "True")
    })
}

/// Whether the Job is Complete or Failed.
pub(crate) fn is_finished(job: &Job) -> bool {
    finished(job).is_some()
}

/// A reference to `job` for `status.active`.
pub(crate) fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".to_string()),
        kind: Some("Job".to_string()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// The pass over a CronJob and the Jobs it controls, at `now`.
pub(crate) fn plan(cronjob: &CronJob, jobs: &[&Job], now: Timestamp) -> Plan {
    let mut plan = Plan {
        status: track_jobs(cronjob, jobs),
        ..Plan::default()
    };
    plan.notes = saw_completed(cronjob, jobs);
    plan.delete = over_history_limits(cronjob, jobs);
    let spec = cronjob.spec.clone().unwrap_or_default();
    if cronjob.metadata.deletion_timestamp.is_some() || spec.suspend == Some(true) {
        return plan;
    }
    let zone = match schedule::zone(spec.time_zone.as_deref()) {
        Ok(zone) => zone,
        Err(error) => {
            let zone = spec.time_zone.unwrap_or_default();
            plan.notes.push(Note::warning(
                "UnknownTimeZone",
                format!("invalid timeZone: {zone:?}: {error}"),
            ));
            return plan;
        }
    };
    let schedule = match schedule::parse(&spec.schedule, zone) {
        Ok(schedule) => schedule,
        Err(error) => {
            plan.notes.push(Note::warning(
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {error}", spec.schedule),
            ));
            return plan;
        }
    };
    plan.requeue = schedule.next_after(now).and_then(|next| {
        Duration::try_from(next.duration_since(now) + SignedDuration::from_millis(100)).ok()
    });
    schedule_now(cronjob, &spec, schedule, now, &mut plan);
    plan
}

/// `status.active` without the Jobs that finished or are gone, with running Jobs it controls
/// that it lost track of; `lastSuccessfulTime` from the latest completed one.
fn track_jobs(cronjob: &CronJob, jobs: &[&Job]) -> CronJobStatus {
    let mut status = cronjob.status.clone().unwrap_or_default();
    let running: Vec<&Job> = jobs
        .iter()
        .copied()
        .filter(|j| finished(j).is_none())
        .collect();
    let mut active: Vec<ObjectReference> = status
        .active
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| running.iter().any(|j| j.metadata.uid == r.uid))
        .collect();
    for job in &running {
        if !active.iter().any(|r| r.uid == job.metadata.uid) {
            active.push(reference(job));
        }
    }
    status.active = (!active.is_empty()).then_some(active);
    for job in jobs.iter().filter(|j| finished(j) == Some("Complete")) {
        let completed = job.status.as_ref().and_then(|s| s.completion_time.clone());
        if completed.as_ref().map(|t| t.0) > status.last_successful_time.as_ref().map(|t| t.0) {
            status.last_successful_time = completed;
        }
    }
    status
}

/// `SawCompletedJob` for each Job in `status.active` that has finished.
fn saw_completed(cronjob: &CronJob, jobs: &[&Job]) -> Vec<Note> {
    let active = cronjob.status.as_ref().and_then(|s| s.active.as_ref());
    jobs.iter()
        .filter(|job| active.is_some_and(|list| list.iter().any(|r| r.uid == job.metadata.uid)))
        .filter_map(|job| {
            let kind = finished(job)?;
            let name = job.metadata.name.clone().unwrap_or_default();
            Some(Note::normal(
                "SawCompletedJob",
                format!("Saw completed job: {name}, condition: {kind}"),
            ))
        })
        .collect()
}

/// The oldest finished Jobs beyond `successfulJobsHistoryLimit` and
/// `failedJobsHistoryLimit` (`removeOldestJobs`, by start time).
fn over_history_limits(cronjob: &CronJob, jobs: &[&Job]) -> Vec<String> {
    let spec = cronjob.spec.clone().unwrap_or_default();
    let mut doomed = Vec::new();
    for (kind, limit) in [
        ("Complete", spec.successful_jobs_history_limit),
        ("Failed", spec.failed_jobs_history_limit),
    ] {
        let Some(limit) = limit.and_then(|l| usize::try_from(l).ok()) else {
            continue;
        };
        let mut done: Vec<&Job> = jobs
            .iter()
            .copied()
            .filter(|j| finished(j) == Some(kind))
            .collect();
        done.sort_by_key(|j| {
            let started = j
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0);
            (started, j.metadata.name.clone())
        });
        let extra = done.len().saturating_sub(limit);
        doomed.extend(
            done.iter()
                .take(extra)
                .filter_map(|j| j.metadata.name.clone()),
        );
    }
    doomed
}

/// Whether a Job is due now and may start: the most recent scheduled time not yet acted on,
/// within `startingDeadlineSeconds`, not already running, and allowed by the concurrency
/// policy (`Replace` deletes the running ones).
fn schedule_now(
    cronjob: &CronJob,
    spec: &k8s_openapi::api::batch::v1::CronJobSpec,
    schedule: Schedule,
    now: Timestamp,
    plan: &mut Plan,
) {
    let created = cronjob
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let mut earliest = plan
        .status
        .last_schedule_time
        .as_ref()
        .map_or(created, |t| t.0);
    if let Some(deadline) = spec.starting_deadline_seconds {
        earliest = earliest.max(now - SignedDuration::from_secs(deadline));
    }
    let (Some(scheduled), missed) = schedule.most_recent(earliest, now) else {
        return;
    };
    if missed > MAX_MISSED {
        plan.notes.push(Note::warning(
            "TooManyMissedTimes",
            format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"),
        ));
    }
    if let Some(deadline) = spec.starting_deadline_seconds
        && scheduled + SignedDuration::from_secs(deadline) < now
    {
        plan.notes.push(Note::warning(
            "MissSchedule",
            format!(
                "Missed scheduled time to start a job: {}",
                schedule.local_rfc3339(scheduled)
            ),
        ));
        return;
    }
    let name = job_name(
        cronjob.metadata.name.as_deref().unwrap_or_default(),
        scheduled,
    );
    let active = plan.status.active.clone().unwrap_or_default();
    if active
        .iter()
        .any(|r| r.name.as_deref() == Some(name.as_str()))
    {
        return;
    }
    match spec.concurrency_policy.as_deref() {
        Some("Forbid") if !active.is_empty() => {
            plan.notes.push(Note::normal(
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            ));
            return;
        }
        Some("Replace") => {
            plan.delete
                .extend(active.iter().filter_map(|r| r.name.clone()));
            plan.status.active = None;
        }
        _ => {}
    }
    plan.status.last_schedule_time = Some(Time(scheduled));
    plan.create = Some((scheduled, schedule));
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
