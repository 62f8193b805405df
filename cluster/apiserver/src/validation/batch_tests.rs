use serde_json::{Value, json};

use super::*;
use crate::defaults::prepare_create;
use crate::registry::find;
use crate::validation::validate_create;

fn created(plural: &str, object: Value) -> Value {
    let mut object = object;
    prepare_create(
        find("batch", "v1", plural).unwrap(),
        &mut object,
        Some("default"),
    )
    .unwrap();
    object
}

fn job(restart_policy: Option<&str>) -> Value {
    let mut pod = json!({"containers": [{"name": "c", "image": "busybox:1.28"}]});
    if let Some(policy) = restart_policy {
        pod["restartPolicy"] = json!(policy);
    }
    created(
        "jobs",
        json!({"metadata": {"name": "pi"}, "spec": {"template": {"spec": pod}}}),
    )
}

fn messages(causes: &[Cause]) -> Vec<String> {
    causes.iter().map(|(f, b)| format!("{f}: {b}")).collect()
}

#[test]
fn a_defaulted_job_with_never_or_on_failure_is_valid() {
    assert!(job_problems(&job(Some("Never"))).is_empty());
    assert!(job_problems(&job(Some("OnFailure"))).is_empty());
}

#[test]
fn restart_policy_must_be_on_failure_or_never() {
    assert_eq!(
        messages(&job_problems(&job(None))),
        [
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
        ]
    );
    let error =
        validate_create(find("batch", "v1", "jobs").unwrap(), &job(Some("Always"))).unwrap_err();
    assert_eq!(
        error.message,
        "Job.batch \"pi\" is invalid: spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
    );
}

#[test]
fn counts_may_not_be_negative_and_the_generated_labels_must_match() {
    let mut object = job(Some("Never"));
    object["spec"]["backoffLimit"] = json!(-1);
    object["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] =
        json!("other");
    let found = messages(&job_problems(&object));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with(
        "spec.template.metadata.labels[batch.kubernetes.io/job-name]: Invalid value: map[string]string{"
    ));
    assert!(found[0].ends_with("}: must be 'pi'"), "{}", found[0]);
    assert_eq!(
        found[1],
        "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"
    );
    let mut foreign = job(Some("Never"));
    foreign["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
    foreign["spec"]["template"]["metadata"]["labels"]["app"] = json!("x");
    assert_eq!(
        messages(&job_problems(&foreign)),
        [
            "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"x\"}}: `selector` not auto-generated"
        ]
    );
}

#[test]
fn a_running_jobs_template_and_selector_are_immutable() {
    let old = job(Some("Never"));
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:1.36");
    let found = messages(&job_update_problems(&old, &new));
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("spec.template: Invalid value: "));
    assert!(found[0].ends_with(": field is immutable"));
    new["spec"]["suspend"] = json!(true);
    assert!(job_update_problems(&old, &new).is_empty());
    let mut parallel = old.clone();
    parallel["spec"]["parallelism"] = json!(5);
    assert!(job_update_problems(&old, &parallel).is_empty());
}

fn cronjob(schedule: &str, zone: Option<&str>) -> Value {
    let mut object = json!({"metadata": {"name": "hello"}, "spec": {"schedule": schedule,
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
            "containers": [{"name": "c", "image": "busybox:1.28"}]}}}}}});
    if let Some(zone) = zone {
        object["spec"]["timeZone"] = json!(zone);
    }
    created("cronjobs", object)
}

#[test]
fn schedules_are_five_fields_or_a_descriptor_in_a_known_zone() {
    for schedule in ["*/1 * * * *", "0 9 * * MON-FRI", "@hourly", "@midnight"] {
        assert!(
            cronjob_create_problems(&cronjob(schedule, Some("Europe/Paris"))).is_empty(),
            "{schedule}"
        );
    }
    assert_eq!(
        messages(&cronjob_create_problems(&cronjob("* * *", None))),
        ["spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]"]
    );
    assert_eq!(
        messages(&cronjob_create_problems(&cronjob(
            "* * * * *",
            Some("Mars/Olympus")
        ))),
        ["spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus"]
    );
    assert!(!cronjob_create_problems(&cronjob("61 * * * *", None)).is_empty());
}

#[test]
fn cronjob_names_leave_room_for_the_job_suffix() {
    let mut object = cronjob("@daily", None);
    object["metadata"]["name"] = json!("a".repeat(53));
    assert_eq!(
        messages(&cronjob_create_problems(&object)),
        [format!(
            "metadata.name: Invalid value: \"{}\": must be no more than 52 characters",
            "a".repeat(53)
        )]
    );
    assert!(cronjob_update_problems(&object, &object).is_empty());
}
