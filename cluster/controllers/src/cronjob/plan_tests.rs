use k8s_openapi::api::batch::v1::{CronJob, Job};
use serde_json::{Value, json};

use super::*;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn cronjob(spec: Value, status: Value) -> CronJob {
    let mut spec = spec;
    spec["jobTemplate"] = json!({"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
        "containers": [{"name": "c", "image": "busybox:1.28"}]}}}});
    spec["timeZone"] = json!("UTC");
    serde_json::from_value(json!({"metadata": {"name": "hello", "namespace": "default",
        "uid": "cj", "creationTimestamp": "2026-01-01T00:00:10Z"}, "spec": spec, "status": status}))
    .unwrap()
}

fn job(name: &str, condition: Option<&str>, started: &str) -> Job {
    let conditions: Vec<Value> = condition
        .map(|kind| json!({"type": kind, "status": "True"}))
        .into_iter()
        .collect();
    serde_json::from_value(
        json!({"metadata": {"name": name, "namespace": "default", "uid": name},
        "status": {"startTime": started, "conditions": conditions,
            "completionTime": condition.filter(|k| *k == "Complete").map(|_| started)}}),
    )
    .unwrap()
}

fn every_minute(policy: &str) -> Value {
    json!({"schedule": "*/1 * * * *", "concurrencyPolicy": policy,
        "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1})
}

#[test]
fn a_due_schedule_creates_the_job_named_after_its_minute() {
    let plan = plan(
        &cronjob(every_minute("Allow"), json!({})),
        &[],
        at("2026-01-01T00:01:05Z"),
    );
    let (scheduled, _) = plan.create.expect("a job is due");
    assert_eq!(scheduled, at("2026-01-01T00:01:00Z"));
    assert_eq!(job_name("hello", scheduled), "hello-29453761");
    assert_eq!(plan.status.last_schedule_time, Some(Time(scheduled)));
    assert_eq!(plan.requeue, Some(Duration::from_millis(55_100)));
}

#[test]
fn nothing_is_due_before_the_first_minute_or_while_suspended() {
    let early = plan(
        &cronjob(every_minute("Allow"), json!({})),
        &[],
        at("2026-01-01T00:00:50Z"),
    );
    assert!(early.create.is_none());
    let mut suspended = every_minute("Allow");
    suspended["suspend"] = json!(true);
    let plan = plan(
        &cronjob(suspended, json!({})),
        &[],
        at("2026-01-01T00:05:00Z"),
    );
    assert!(plan.create.is_none() && plan.requeue.is_none());
}

#[test]
fn forbid_waits_for_the_running_job_and_replace_deletes_it() {
    let running = job("hello-1", None, "2026-01-01T00:01:00Z");
    let status = json!({"active": [{"name": "hello-1", "uid": "hello-1"}],
        "lastScheduleTime": "2026-01-01T00:01:00Z"});
    let now = at("2026-01-01T00:02:01Z");
    let forbid = plan(
        &cronjob(every_minute("Forbid"), status.clone()),
        &[&running],
        now,
    );
    assert!(forbid.create.is_none());
    assert_eq!(forbid.notes[0].reason, "JobAlreadyActive");
    let replace = plan(
        &cronjob(every_minute("Replace"), status.clone()),
        &[&running],
        now,
    );
    assert!(replace.create.is_some());
    assert_eq!(replace.delete, ["hello-1"]);
    let allow = plan(&cronjob(every_minute("Allow"), status), &[&running], now);
    assert!(allow.create.is_some() && allow.delete.is_empty());
    assert_eq!(allow.status.active.as_ref().map(Vec::len), Some(1));
}

#[test]
fn finished_jobs_leave_active_and_the_oldest_beyond_the_limits_go() {
    let status = json!({"active": [{"name": "hello-4", "uid": "hello-4"}],
        "lastScheduleTime": "2026-01-01T00:04:00Z"});
    let jobs = [
        job("hello-1", Some("Complete"), "2026-01-01T00:01:00Z"),
        job("hello-2", Some("Failed"), "2026-01-01T00:02:00Z"),
        job("hello-3", Some("Complete"), "2026-01-01T00:03:00Z"),
        job("hello-4", Some("Complete"), "2026-01-01T00:04:00Z"),
        job("hello-5", Some("Failed"), "2026-01-01T00:05:00Z"),
        job("hello-0", Some("Complete"), "2026-01-01T00:00:30Z"),
    ];
    let mut spec = every_minute("Allow");
    spec["successfulJobsHistoryLimit"] = json!(2);
    let plan = plan(
        &cronjob(spec, status),
        &jobs.iter().collect::<Vec<_>>(),
        at("2026-01-01T00:04:30Z"),
    );
    assert_eq!(plan.status.active, None);
    assert_eq!(plan.delete, ["hello-0", "hello-1", "hello-2"]);
    assert_eq!(
        plan.status.last_successful_time,
        Some(Time(at("2026-01-01T00:04:00Z")))
    );
    assert_eq!(
        plan.notes[0],
        Note::normal(
            "SawCompletedJob",
            "Saw completed job: hello-4, condition: Complete"
        )
    );
}

#[test]
fn a_start_too_late_for_the_deadline_is_missed() {
    let mut spec = json!({"schedule": "0 * * * *", "concurrencyPolicy": "Allow",
        "startingDeadlineSeconds": 10});
    let missed = plan(
        &cronjob(spec.clone(), json!({})),
        &[],
        at("2026-01-01T01:00:30Z"),
    );
    assert!(missed.create.is_none());
    spec["startingDeadlineSeconds"] = json!(60);
    let late = plan(&cronjob(spec, json!({})), &[], at("2026-01-01T01:00:30Z"));
    assert_eq!(
        late.create.map(|(t, _)| t),
        Some(at("2026-01-01T01:00:00Z"))
    );
}
