//! Jobs and CronJobs, as kube-apiserver's `ValidateJob`, `ValidateJobUpdate`,
//! `ValidateCronJobCreate` and `ValidateCronJobUpdate` (pkg/apis/batch/validation, 1.33)
//! check the rules learners meet: counts that may not be negative, a restart policy of
//! OnFailure or Never, a selector that selects the template (generated from the Job's uid
//! unless `manualSelector`), a parseable schedule in a known time zone, and what an update may
//! not change.

use serde_json::Value;

use super::diff;
use super::field::{self, Cause, quote};
use super::statefulsets::{label_selector_problems, nonnegative};
use crate::defaults::{
    CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
};
use crate::selectors::{LabelSelector, selector_to_string};

/// The problems of a Job (after defaulting and selector generation).
pub fn job_problems(object: &Value) -> Vec<Cause> {
    let mut causes = generated_selector_problems(object);
    let null = Value::Null;
    let spec = object.get("spec").unwrap_or(&null);
    causes.extend(job_spec_problems(spec, "spec"));
    match spec.get("selector").filter(|s| !s.is_null()) {
        None => causes.push(field::required("spec.selector", "")),
        Some(selector) => {
            causes.extend(label_selector_problems(selector, "spec.selector"));
            let template = spec.get("template").unwrap_or(&null);
            if let Ok(parsed) = LabelSelector::parse(&selector_to_string(selector))
                && !parsed.matches(template)
            {
                let labels = template
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object);
                causes.push(field::invalid(
                    "spec.template.metadata.labels",
                    &field::string_map(labels),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    causes
}

/// `validateGeneratedSelector`: a generated selector's labels are on the template, with the
/// Job's uid and name.
fn generated_selector_problems(object: &Value) -> Vec<Cause> {
    if object.pointer("/spec/manualSelector") == Some(&Value::Bool(true))
        || object.pointer("/spec/selector").is_none_or(Value::is_null)
    {
        return Vec::new();
    }
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (uid, name) = (text("/metadata/uid"), text("/metadata/name"));
    let mut causes = Vec::new();
    if uid.is_empty() {
        causes.push(field::required("metadata.uid", ""));
    }
    let labels = object
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object);
    // `ValidateHasLabel` for the prefixed labels; the legacy ones only have to be selected.
    for (key, expected) in [(CONTROLLER_UID_LABEL, uid), (JOB_NAME_LABEL, name)] {
        let path = format!("spec.template.metadata.labels[{key}]");
        match labels.and_then(|l| l.get(key)).and_then(Value::as_str) {
            None => causes.push(field::required(path, expected)),
            Some(actual) if actual != expected => causes.push(field::invalid(
                path,
                &field::string_map(labels),
                &format!("must be '{expected}'"),
            )),
            Some(_) => {}
        }
    }
    let expected = serde_json::json!({"metadata": {"labels": {
        CONTROLLER_UID_LABEL: uid, JOB_NAME_LABEL: name,
        LEGACY_CONTROLLER_UID_LABEL: uid, LEGACY_JOB_NAME_LABEL: name,
    }}});
    if let Some(selector) = object.pointer("/spec/selector")
        && let Ok(parsed) = LabelSelector::parse(&selector_to_string(selector))
        && !parsed.matches(&expected)
    {
        causes.push(field::invalid(
            "spec.selector",
            &selector.to_string(),
            "`selector` not auto-generated",
        ));
    }
    causes
}

/// `validateJobSpec`: the spec of a Job or of a CronJob's job template, at `path`.
fn job_spec_problems(spec: &Value, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        causes.extend(nonnegative(spec.get(key), &format!("{path}.{key}")));
    }
    match spec.get("completionMode").and_then(Value::as_str) {
        None | Some("NonIndexed") => {}
        Some("Indexed") => {
            if spec.get("completions").is_none_or(Value::is_null) {
                causes.push(field::required(
                    format!("{path}.completions"),
                    "when completion mode is Indexed",
                ));
            }
        }
        Some(other) => causes.push(field::not_supported(
            format!("{path}.completionMode"),
            &quote(other),
            &["NonIndexed", "Indexed"],
        )),
    }
    if let Some(policy) = spec.get("podReplacementPolicy").and_then(Value::as_str)
        && !matches!(policy, "Failed" | "TerminatingOrFailed")
    {
        causes.push(field::not_supported(
            format!("{path}.podReplacementPolicy"),
            &quote(policy),
            &["Failed", "TerminatingOrFailed"],
        ));
    }
    let template_path = format!("{path}.template");
    if let Some(pod_spec) = spec.pointer("/template/spec") {
        causes.extend(super::pods::spec_problems(
            pod_spec,
            &format!("{template_path}.spec"),
            true,
        ));
    }
    let restart_path = format!("{template_path}.spec.restartPolicy");
    match field::str_of(
        spec.pointer("/template/spec").unwrap_or(&Value::Null),
        "restartPolicy",
    ) {
        "OnFailure" | "Never" => {}
        "" | "Always" => causes.push(field::required(
            restart_path,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        other => causes.push(field::not_supported(
            restart_path,
            &quote(other),
            &["OnFailure", "Never"],
        )),
    }
    causes
}

/// `ValidateJobUpdate`: the new Job is valid, and what may not change did not. The template
/// may change only while the Job is suspended (as upstream allows for its scheduling
/// directives and, for a suspended Job that never started, the whole template).
pub fn job_update_problems(old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = job_problems(new);
    let suspended = new.pointer("/spec/suspend") == Some(&Value::Bool(true));
    let mut fixed = vec![
        "selector",
        "completionMode",
        "podFailurePolicy",
        "successPolicy",
    ];
    if new.pointer("/spec/completionMode").and_then(Value::as_str) != Some("Indexed") {
        fixed.push("completions");
    }
    if !suspended {
        fixed.push("template");
    }
    for key in fixed {
        let (before, after) = (
            old.pointer(&format!("/spec/{key}")),
            new.pointer(&format!("/spec/{key}")),
        );
        let (before, after) = (
            before.cloned().unwrap_or(Value::Null),
            after.cloned().unwrap_or(Value::Null),
        );
        if !diff::semantically_equal(&before, &after) {
            causes.push(field::invalid(
                format!("spec.{key}"),
                &after.to_string(),
                "field is immutable",
            ));
        }
    }
    causes
}

/// The most a CronJob's name may have: its Jobs add `-` and 10 digits, within 63.
const MAX_CRONJOB_NAME: usize = 52;

/// `ValidateCronJobCreate` beyond the metadata.
pub fn cronjob_create_problems(object: &Value) -> Vec<Cause> {
    let mut causes = cronjob_spec_problems(object, None);
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.len() > MAX_CRONJOB_NAME {
        causes.push(field::invalid(
            "metadata.name",
            &quote(name),
            "must be no more than 52 characters",
        ));
    }
    causes
}

/// `ValidateCronJobUpdate` beyond the metadata (the name limit applies only to new ones).
pub fn cronjob_update_problems(old: &Value, new: &Value) -> Vec<Cause> {
    cronjob_spec_problems(new, Some(old))
}

/// `validateCronJobSpec`.
fn cronjob_spec_problems(object: &Value, old: Option<&Value>) -> Vec<Cause> {
    let null = Value::Null;
    let spec = object.get("spec").unwrap_or(&null);
    let mut causes = Vec::new();
    let schedule = field::str_of(spec, "schedule");
    if schedule.is_empty() {
        causes.push(field::required("spec.schedule", ""));
    } else {
        if let Err(problem) = parse_schedule(schedule) {
            causes.push(field::invalid("spec.schedule", &quote(schedule), &problem));
        }
        if schedule.contains("TZ") {
            causes.push(field::invalid(
                "spec.schedule",
                &quote(schedule),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    causes.extend(nonnegative(
        spec.get("startingDeadlineSeconds"),
        "spec.startingDeadlineSeconds",
    ));
    let time_zone = spec.get("timeZone").and_then(Value::as_str);
    let old_zone = old
        .and_then(|o| o.pointer("/spec/timeZone"))
        .and_then(Value::as_str);
    if old.is_none() || old_zone != time_zone {
        causes.extend(time_zone.and_then(time_zone_problem));
    }
    match field::str_of(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => causes.push(field::required("spec.concurrencyPolicy", "")),
        other => causes.push(field::not_supported(
            "spec.concurrencyPolicy",
            &quote(other),
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let job_spec = spec.pointer("/jobTemplate/spec").unwrap_or(&null);
    causes.extend(job_spec_problems(job_spec, "spec.jobTemplate.spec"));
    if let Some(selector) = job_spec.get("selector").filter(|s| !s.is_null()) {
        causes.push(field::invalid(
            "spec.jobTemplate.spec.selector",
            &selector.to_string(),
            "`selector` will be auto-generated",
        ));
    }
    if job_spec.get("manualSelector") == Some(&Value::Bool(true)) {
        causes.push(field::not_supported(
            "spec.jobTemplate.spec.manualSelector",
            "true",
            &["nil", "false"],
        ));
    }
    for key in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        causes.extend(nonnegative(spec.get(key), &format!("spec.{key}")));
    }
    causes
}

/// Parses a schedule as the CronJob controller reads it: the standard five fields (robfig's
/// `ParseStandard`) or a descriptor such as `@hourly`. The error is the parser's.
pub fn parse_schedule(schedule: &str) -> Result<croner::Cron, String> {
    let trimmed = schedule.trim();
    let standard = if trimmed.eq_ignore_ascii_case("@midnight") {
        "@daily"
    } else {
        trimmed
    };
    let fields: Vec<&str> = standard.split_whitespace().collect();
    if !standard.starts_with('@') && fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(standard)
        .map_err(|error| error.to_string())
}

/// `validateTimeZone`: a non-empty IANA name that the time zone database knows.
fn time_zone_problem(zone: &str) -> Option<Cause> {
    let path = "spec.timeZone";
    if zone.is_empty() {
        return Some(field::invalid(
            path,
            "\"\"",
            "timeZone must be nil or non-empty string",
        ));
    }
    let part_ok = |part: &str| {
        !matches!(part, "." | "..")
            && !part.starts_with('-')
            && (1..=14).contains(&part.len())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
    };
    if !zone.split('/').all(part_ok) {
        return Some(field::invalid(
            path,
            &quote(zone),
            &format!("unknown time zone {zone}"),
        ));
    }
    if zone.eq_ignore_ascii_case("local") {
        return Some(field::invalid(
            path,
            &quote(zone),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    jiff::tz::TimeZone::get(zone)
        .err()
        .map(|_| field::invalid(path, &quote(zone), &format!("unknown time zone {zone}")))
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
