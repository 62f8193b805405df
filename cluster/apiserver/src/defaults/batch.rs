//! Defaults of the batch/v1 kinds, as kube-apiserver 1.33 applies them: `SetDefaults_Job` and
//! `SetDefaults_CronJob` (pkg/apis/batch/v1/defaults.go) on every write, and on create the
//! selector that the Job strategy generates (`generateSelectorIfNeeded`,
//! pkg/registry/batch/job/strategy.go): the pods of a Job are selected by its uid, and carry
//! its name and uid as labels, under the `batch.kubernetes.io/` prefix and the legacy names.

use serde_json::{Map, Value, json};

use super::json::{object_mut, object_mut_in, set_default};
use super::pod::default_pod_spec;

/// The label with the Job's uid that its selector matches.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// The label with the Job's name on its pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The same labels without prefix, which kube-apiserver still sets for old clients.
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// `SetDefaults_Job` and the pod template's defaults (every write), but for the labels taken
/// from the template ([`labels_from_template`]).
pub fn default_job(object: &mut Value) {
    if let Some(spec) = object_mut(object, "spec") {
        let unset = |spec: &Map<String, Value>, key: &str| spec.get(key).is_none_or(Value::is_null);
        if unset(spec, "completions") && unset(spec, "parallelism") {
            spec.insert("completions".into(), json!(1));
        }
        set_default(spec, "parallelism", json!(1));
        let backoff_limit = if unset(spec, "backoffLimitPerIndex") {
            6
        } else {
            i64::from(i32::MAX)
        };
        set_default(spec, "backoffLimit", json!(backoff_limit));
        set_default(spec, "completionMode", json!("NonIndexed"));
        set_default(spec, "suspend", json!(false));
        let replacement = if unset(spec, "podFailurePolicy") {
            "TerminatingOrFailed"
        } else {
            "Failed"
        };
        set_default(spec, "podReplacementPolicy", json!(replacement));
        set_default(spec, "manualSelector", json!(false));
    }
    if let Some(spec) = object.pointer_mut("/spec/template/spec") {
        default_pod_spec(spec);
    }
}

/// A Job without labels takes its template's (`SetDefaults_Job`), after the selector was
/// generated on create: upstream's Job shares its template's label map, which the strategy
/// then extends, so the generated labels show on the Job too.
pub fn labels_from_template(object: &mut Value) {
    let template_labels = object
        .pointer("/spec/template/metadata/labels")
        .filter(|labels| labels.as_object().is_some_and(|map| !map.is_empty()))
        .cloned();
    let Some(template_labels) = template_labels else {
        return;
    };
    let Some(metadata) = object_mut(object, "metadata") else {
        return;
    };
    let empty = metadata
        .get("labels")
        .and_then(Value::as_object)
        .is_none_or(|map| map.is_empty());
    if empty {
        metadata.insert("labels".into(), template_labels);
    }
}

/// The Job strategy's `PrepareForCreate`: unless `manualSelector` is true, the template gets
/// the name and uid labels (those the user set are left for validation to judge) and the
/// selector matches the uid.
pub fn generate_job_selector(object: &mut Value) {
    if object.pointer("/spec/manualSelector") == Some(&json!(true)) {
        return;
    }
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (name, uid) = (text("/metadata/name"), text("/metadata/uid"));
    let Some(template) = object
        .get_mut("spec")
        .and_then(|spec| object_mut(spec, "template"))
    else {
        return;
    };
    let labels = object_mut_in(template, "metadata").and_then(|m| object_mut_in(m, "labels"));
    if let Some(labels) = labels {
        for (key, value) in [
            (LEGACY_JOB_NAME_LABEL, &name),
            (JOB_NAME_LABEL, &name),
            (LEGACY_CONTROLLER_UID_LABEL, &uid),
            (CONTROLLER_UID_LABEL, &uid),
        ] {
            labels.entry(key).or_insert_with(|| json!(value));
        }
    }
    let Some(selector) = object
        .get_mut("spec")
        .and_then(|spec| object_mut(spec, "selector"))
    else {
        return;
    };
    if let Some(match_labels) = object_mut_in(selector, "matchLabels") {
        match_labels
            .entry(CONTROLLER_UID_LABEL)
            .or_insert_with(|| json!(uid));
    }
}

/// `SetDefaults_CronJob` and the job template's pod defaults (every write). The job
/// template's own spec is not defaulted: `SetDefaults_Job` is for Jobs, which the controller
/// creates from it.
pub fn default_cronjob(object: &mut Value) {
    if let Some(spec) = object_mut(object, "spec") {
        set_default(spec, "concurrencyPolicy", json!("Allow"));
        set_default(spec, "suspend", json!(false));
        set_default(spec, "successfulJobsHistoryLimit", json!(3));
        set_default(spec, "failedJobsHistoryLimit", json!(1));
    }
    if let Some(spec) = object.pointer_mut("/spec/jobTemplate/spec/template/spec") {
        default_pod_spec(spec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::prepare_create;
    use crate::registry::find;

    fn job(spec: Value) -> Value {
        json!({"metadata": {"name": "pi"}, "spec": spec})
    }

    fn template() -> Value {
        json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.28"}]}})
    }

    #[test]
    fn a_job_gets_upstreams_defaults_and_a_generated_selector() {
        let mut object = job(json!({"template": template()}));
        prepare_create(
            find("batch", "v1", "jobs").unwrap(),
            &mut object,
            Some("default"),
        )
        .unwrap();
        let spec = &object["spec"];
        assert_eq!(
            (
                &spec["completions"],
                &spec["parallelism"],
                &spec["backoffLimit"]
            ),
            (&json!(1), &json!(1), &json!(6))
        );
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["manualSelector"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        let uid = object["metadata"]["uid"].as_str().unwrap().to_string();
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {CONTROLLER_UID_LABEL: uid}})
        );
        let labels = json!({CONTROLLER_UID_LABEL: uid, JOB_NAME_LABEL: "pi",
            LEGACY_CONTROLLER_UID_LABEL: uid, LEGACY_JOB_NAME_LABEL: "pi"});
        assert_eq!(spec["template"]["metadata"]["labels"], labels);
        assert_eq!(object["metadata"]["labels"], labels);
        assert_eq!(spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    }

    #[test]
    fn a_job_without_labels_takes_its_templates_with_the_generated_ones() {
        let mut template = template();
        template["metadata"] = json!({"labels": {"app": "pi"}});
        let mut object = job(json!({"template": template}));
        prepare_create(
            find("batch", "v1", "jobs").unwrap(),
            &mut object,
            Some("default"),
        )
        .unwrap();
        let labels = object["metadata"]["labels"].as_object().unwrap();
        assert_eq!(labels.len(), 5);
        assert_eq!(labels["app"], "pi");
        assert_eq!(labels[JOB_NAME_LABEL], "pi");
    }

    #[test]
    fn parallelism_alone_leaves_completions_unset_and_manual_selectors_are_kept() {
        let mut object = job(json!({"parallelism": 2, "manualSelector": true,
            "selector": {"matchLabels": {"a": "b"}}, "template": template()}));
        prepare_create(
            find("batch", "v1", "jobs").unwrap(),
            &mut object,
            Some("default"),
        )
        .unwrap();
        assert!(object["spec"].get("completions").is_none());
        assert_eq!(
            object["spec"]["selector"],
            json!({"matchLabels": {"a": "b"}})
        );
        assert!(object["spec"]["template"].get("metadata").is_none());
    }

    #[test]
    fn a_cronjob_gets_its_policies_and_history_limits() {
        let mut object = json!({"metadata": {"name": "c"}, "spec": {"schedule": "* * * * *",
            "jobTemplate": {"spec": {"template": template()}}}});
        prepare_create(
            find("batch", "v1", "cronjobs").unwrap(),
            &mut object,
            Some("default"),
        )
        .unwrap();
        let spec = &object["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Allow");
        assert_eq!(spec["suspend"], false);
        assert_eq!(
            (
                &spec["successfulJobsHistoryLimit"],
                &spec["failedJobsHistoryLimit"]
            ),
            (&json!(3), &json!(1))
        );
        assert!(spec["jobTemplate"]["spec"].get("backoffLimit").is_none());
    }
}
