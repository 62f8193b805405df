//! Printers of the batch/v1 kinds, ported from kube-apiserver's printers.go (`printJob`,
//! `printCronJob`).

use jiff::Timestamp;
use serde_json::{Value, json};

use super::Doc::{Field, Text};
use super::duration::human_duration;
use super::{
    AGE, CONTAINERS, Column, IMAGES, NAME, Printed, age, array, column, container_cells,
    format_label_selector, int, name, since, text, timestamp, wide,
};

const SELECTOR: Column = wide("Selector", "string", Field("JobSpec.selector"));

pub(super) const JOB_COLUMNS: &[Column] = &[
    NAME,
    column("Status", "string", Text("Status of the job.")),
    column("Completions", "string", Field("JobStatus.succeeded")),
    column(
        "Duration",
        "string",
        Text("Time required to complete the job."),
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

/// Whether the Job has condition `kind` with status True (`hasJobCondition`).
fn has_condition(job: &Value, kind: &str) -> bool {
    array(job, "/status/conditions")
        .iter()
        .any(|c| text(c, "/type") == kind && text(c, "/status") == "True")
}

/// `printJob`'s STATUS: the first of Complete, Failed, Terminating, Suspended, FailureTarget
/// that holds, else Running.
fn job_status(job: &Value) -> &'static str {
    if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if job
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

/// `printJob`'s COMPLETIONS: `succeeded/completions`, or for a Job without completions
/// `succeeded/1`, `of <parallelism>` when more than one pod runs at once.
fn completions(job: &Value) -> String {
    let succeeded = int(job, "/status/succeeded");
    match job.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => match int(job, "/spec/parallelism") {
            parallelism if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
            _ => format!("{succeeded}/1"),
        },
    }
}

/// `printJob`'s DURATION: from the start to the completion, or to now while it runs.
fn duration(job: &Value, now: Timestamp) -> String {
    let Some(start) = timestamp(job, "/status/startTime") else {
        return String::new();
    };
    let end = timestamp(job, "/status/completionTime").unwrap_or(now);
    human_duration(end.duration_since(start))
}

pub(super) fn print_job(job: &Value, now: Timestamp) -> Printed {
    let [names, images] = container_cells(job);
    vec![
        name(job),
        json!(job_status(job)),
        json!(completions(job)),
        json!(duration(job, now)),
        age(job, now),
        names,
        images,
        json!(format_label_selector(job.pointer("/spec/selector"))),
    ]
    .into()
}

pub(super) const CRON_JOB_COLUMNS: &[Column] = &[
    NAME,
    column("Schedule", "string", Field("CronJobSpec.schedule")),
    column("Timezone", "string", Field("CronJobSpec.timeZone")),
    column("Suspend", "boolean", Field("CronJobSpec.suspend")),
    column("Active", "integer", Field("CronJobStatus.active")),
    column(
        "Last Schedule",
        "string",
        Field("CronJobStatus.lastScheduleTime"),
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

/// `printBoolPtr`: "True", "False" or "<unset>".
fn bool_cell(value: Option<&Value>) -> &'static str {
    match value.and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

pub(super) fn print_cron_job(cronjob: &Value, now: Timestamp) -> Printed {
    let template = &cronjob["spec"]["jobTemplate"];
    let [names, images] = container_cells(template);
    let last_schedule = match timestamp(cronjob, "/status/lastScheduleTime") {
        Some(_) => since(cronjob, "/status/lastScheduleTime", now),
        None => "<none>".to_string(),
    };
    let zone = match text(cronjob, "/spec/timeZone") {
        "" if cronjob.pointer("/spec/timeZone").is_none_or(Value::is_null) => "<none>",
        zone => zone,
    };
    vec![
        name(cronjob),
        json!(text(cronjob, "/spec/schedule")),
        json!(zone),
        json!(bool_cell(cronjob.pointer("/spec/suspend"))),
        json!(array(cronjob, "/status/active").len()),
        json!(last_schedule),
        age(cronjob, now),
        names,
        images,
        json!(format_label_selector(template.pointer("/spec/selector"))),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn jobs_show_status_completions_and_duration() {
        let job = json!({"metadata": {"name": "pi", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"completions": 3, "parallelism": 2, "template": {"spec": {"containers": [
                {"name": "c", "image": "busybox:1.28"}]}}},
            "status": {"succeeded": 3, "startTime": "2026-01-01T00:00:00Z",
                "completionTime": "2026-01-01T00:00:14Z",
                "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                    {"type": "Complete", "status": "True"}]}});
        let printed = print_job(&job, at("2026-01-01T00:01:00Z"));
        assert_eq!(
            printed.cells[..5],
            [
                json!("pi"),
                json!("Complete"),
                json!("3/3"),
                json!("14s"),
                json!("60s")
            ]
        );
        let running = json!({"metadata": {"name": "w"}, "spec": {"parallelism": 2},
            "status": {"conditions": [{"type": "FailureTarget", "status": "True"}]}});
        let printed = print_job(&running, at("2026-01-01T00:01:00Z"));
        assert_eq!(
            printed.cells[1..4],
            [json!("FailureTarget"), json!("0/1 of 2"), json!("")]
        );
    }

    #[test]
    fn cronjobs_show_schedule_zone_suspend_and_last_schedule() {
        let cronjob = json!({"metadata": {"name": "hello", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"schedule": "*/1 * * * *", "suspend": false, "jobTemplate": {"spec": {
                "template": {"spec": {"containers": [{"name": "c", "image": "busybox:1.28"}]}}}}},
            "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": "2026-01-01T00:02:00Z"}});
        let printed = print_cron_job(&cronjob, at("2026-01-01T00:02:30Z"));
        assert_eq!(
            printed.cells[..7],
            [
                json!("hello"),
                json!("*/1 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("30s"),
                json!("2m30s")
            ]
        );
        assert_eq!(printed.cells[7..9], [json!("c"), json!("busybox:1.28")]);
    }
}
