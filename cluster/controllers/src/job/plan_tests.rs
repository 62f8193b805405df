use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::*;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn job(spec: Value, status: Value) -> Job {
    let mut spec = spec;
    spec["template"] = json!({"spec": {"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox:1.28"}]}});
    serde_json::from_value(
        json!({"metadata": {"name": "j", "namespace": "default", "uid": "u"},
        "spec": spec, "status": status}),
    )
    .unwrap()
}

fn pod(name: &str, phase: &str, finished: i64) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default",
            "creationTimestamp": at(0).to_string()},
        "status": {"phase": phase, "containerStatuses": [{"name": "c", "image": "i",
            "imageID": "", "ready": false, "restartCount": 0,
            "state": if phase == "Running" { json!({"running": {}}) } else {
                json!({"terminated": {"exitCode": 0, "finishedAt": at(finished).to_string()}}) }}]},
    }))
    .unwrap()
}

fn types(plan: &Plan) -> Vec<String> {
    plan.status
        .conditions
        .iter()
        .flatten()
        .map(|c| format!("{}={}", c.type_, c.reason.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn a_new_job_starts_parallelism_pods_and_its_clock() {
    let job = job(
        json!({"completions": 3, "parallelism": 2, "backoffLimit": 6}),
        json!({}),
    );
    let plan = plan(&job, &[], at(5));
    assert_eq!((plan.create, plan.delete.len()), (2, 0));
    assert_eq!(plan.status.active, Some(2));
    assert_eq!(plan.status.start_time, Some(Time(at(5))));
    assert_eq!(
        plan.status.uncounted_terminated_pods,
        Some(UncountedTerminatedPods::default())
    );
}

#[test]
fn no_more_pods_than_completions_left() {
    let job = job(
        json!({"completions": 3, "parallelism": 2}),
        json!({"startTime": at(0).to_string()}),
    );
    let pods = [
        pod("a", "Succeeded", 3),
        pod("b", "Succeeded", 4),
        pod("c", "Running", 0),
    ];
    let plan = plan(&job, &pods.iter().collect::<Vec<_>>(), at(5));
    assert_eq!(plan.create, 0);
    assert_eq!(
        (plan.status.succeeded, plan.status.active),
        (Some(2), Some(1))
    );
    assert!(types(&plan).is_empty());
}

#[test]
fn reaching_completions_meets_the_criteria_then_completes() {
    let job = job(
        json!({"completions": 2, "parallelism": 2}),
        json!({"startTime": at(0).to_string()}),
    );
    let pods = [pod("a", "Succeeded", 3), pod("b", "Succeeded", 4)];
    let plan = plan(&job, &pods.iter().collect::<Vec<_>>(), at(5));
    assert_eq!(
        types(&plan),
        [
            "SuccessCriteriaMet=CompletionsReached",
            "Complete=CompletionsReached"
        ]
    );
    assert_eq!(plan.status.completion_time, Some(Time(at(5))));
    assert_eq!(plan.notes, [Note::normal("Completed", "Job completed")]);
    assert_eq!(plan.status.active, None);
}

#[test]
fn failures_beyond_the_backoff_limit_fail_the_job() {
    let job = job(
        json!({"completions": 1, "parallelism": 1, "backoffLimit": 1}),
        json!({"startTime": at(0).to_string()}),
    );
    let pods = [pod("a", "Failed", 3), pod("b", "Failed", 20)];
    let plan = plan(&job, &pods.iter().collect::<Vec<_>>(), at(25));
    assert_eq!(
        types(&plan),
        [
            "FailureTarget=BackoffLimitExceeded",
            "Failed=BackoffLimitExceeded"
        ]
    );
    let failed = plan.status.conditions.as_ref().unwrap()[1].clone();
    assert_eq!(
        failed.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    assert_eq!(plan.notes[0].reason, "BackoffLimitExceeded");
    assert_eq!(plan.status.failed, Some(2));
    assert_eq!(plan.status.completion_time, None);
}

#[test]
fn a_failed_pod_is_replaced_after_its_backoff() {
    let job = job(
        json!({"completions": 1, "parallelism": 1, "backoffLimit": 3}),
        json!({"startTime": at(0).to_string()}),
    );
    let pods = [pod("a", "Failed", 10)];
    let early = plan(&job, &pods.iter().collect::<Vec<_>>(), at(15));
    assert_eq!(early.create, 0);
    assert_eq!(early.requeue, Some(Duration::from_secs(5)));
    let later = plan(&job, &pods.iter().collect::<Vec<_>>(), at(20));
    assert_eq!(later.create, 1);
}

#[test]
fn a_job_past_its_deadline_deletes_its_pods_before_it_fails() {
    let job = job(
        json!({"completions": 1, "parallelism": 1, "activeDeadlineSeconds": 30}),
        json!({"startTime": at(0).to_string()}),
    );
    let pods = [pod("a", "Running", 0)];
    let plan = plan(&job, &pods.iter().collect::<Vec<_>>(), at(31));
    assert_eq!(types(&plan), ["FailureTarget=DeadlineExceeded"]);
    assert_eq!(plan.delete, ["a"]);
    assert_eq!(
        (plan.status.active, plan.status.terminating),
        (None, Some(1))
    );
    let running = plan_at_start(&job);
    assert_eq!(running.requeue, Some(Duration::from_secs(30)));
}

fn plan_at_start(job: &Job) -> Plan {
    plan(job, &[], at(0))
}

#[test]
fn a_finished_job_expires_after_its_ttl() {
    let mut finished = job(
        json!({"ttlSecondsAfterFinished": 100}),
        json!({
        "completionTime": at(10).to_string(),
        "conditions": [{"type": "Complete", "status": "True"}]}),
    );
    assert!(is_finished(&finished));
    assert_eq!(
        ttl_remaining(&finished, at(60)),
        Some(SignedDuration::from_secs(50))
    );
    finished.spec.as_mut().unwrap().ttl_seconds_after_finished = None;
    assert_eq!(ttl_remaining(&finished, at(60)), None);
}

#[test]
fn a_suspended_job_deletes_its_pods_and_restarts_its_clock_on_resume() {
    let mut suspended = job(
        json!({"completions": 1, "parallelism": 1, "suspend": true}),
        json!({}),
    );
    let pods = [pod("a", "Running", 0)];
    let paused = plan(&suspended, &pods.iter().collect::<Vec<_>>(), at(5));
    assert_eq!(paused.delete, ["a"]);
    assert_eq!(types(&paused), ["Suspended=JobSuspended"]);
    assert_eq!(paused.status.start_time, None);
    assert_eq!(paused.notes, [Note::normal("Suspended", "Job suspended")]);
    suspended.status = Some(paused.status);
    suspended.spec.as_mut().unwrap().suspend = Some(false);
    let resumed = plan(&suspended, &[], at(50));
    assert_eq!(types(&resumed), ["Suspended=JobResumed"]);
    assert_eq!(
        resumed.status.conditions.as_ref().unwrap()[0].status,
        "False"
    );
    assert_eq!(resumed.status.start_time, Some(Time(at(50))));
    assert_eq!(resumed.create, 1);
}
