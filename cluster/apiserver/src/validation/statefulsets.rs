//! StatefulSets, as kube-apiserver's `ValidateStatefulSetSpec` and
//! `ValidateStatefulSetUpdate` (pkg/apis/apps/validation, 1.33) check them: the selector
//! must select the template's labels, the update strategy must be one it knows, and an
//! update may change only replicas, ordinals, the template, the update strategy, the PVC
//! retention policy and minReadySeconds.

use serde_json::{Map, Value};

use super::diff;
use super::field::{self, Cause, quote};
use super::names;
use super::objectmeta;
use crate::selectors::{LabelSelector, selector_to_string};

/// The problems of a StatefulSet's spec (after defaulting).
pub fn spec_problems(object: &Value) -> Vec<Cause> {
    let null = Value::Null;
    let spec = object.get("spec").unwrap_or(&null);
    let mut causes = Vec::new();
    match field::str_of(spec, "podManagementPolicy") {
        "" => causes.push(field::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => causes.push(field::invalid(
            "spec.podManagementPolicy",
            &quote(other),
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    causes.extend(update_strategy_problems(spec));
    causes.extend(retention_policy_problems(spec));
    for (key, path) in [
        ("replicas", "spec.replicas"),
        ("minReadySeconds", "spec.minReadySeconds"),
        ("revisionHistoryLimit", "spec.revisionHistoryLimit"),
    ] {
        causes.extend(nonnegative(spec.get(key), path));
    }
    if let Some(ordinals) = spec.get("ordinals") {
        causes.extend(nonnegative(ordinals.get("start"), "spec.ordinals.start"));
    }
    causes.extend(selector_and_template_problems(spec, "statefulset"));
    causes.extend(long_running_template_problems(spec, "StatefulSet"));
    causes
}

/// The template of a workload whose pods run for good (StatefulSet, ReplicaSet, and so
/// Deployment): restartPolicy Always, no activeDeadlineSeconds. `kind` is named in the
/// message as upstream's validation names it.
pub(super) fn long_running_template_problems(spec: &Value, kind: &str) -> Vec<Cause> {
    let null = Value::Null;
    let template_spec = spec.pointer("/template/spec").unwrap_or(&null);
    let mut causes = Vec::new();
    match field::str_of(template_spec, "restartPolicy") {
        "Always" => {}
        other => causes.push(field::not_supported(
            "spec.template.spec.restartPolicy",
            &quote(other),
            &["Always"],
        )),
    }
    if template_spec
        .get("activeDeadlineSeconds")
        .is_some_and(|v| !v.is_null())
    {
        causes.push(field::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    causes
}

/// `ValidateNonnegativeField`.
pub(super) fn nonnegative(value: Option<&Value>, path: &str) -> Vec<Cause> {
    match value.and_then(Value::as_i64) {
        Some(n) if n < 0 => vec![field::invalid(
            path,
            &n.to_string(),
            "must be greater than or equal to 0",
        )],
        _ => Vec::new(),
    }
}

fn update_strategy_problems(spec: &Value) -> Vec<Cause> {
    let null = Value::Null;
    let strategy = spec.get("updateStrategy").unwrap_or(&null);
    let rolling = strategy.get("rollingUpdate").filter(|r| !r.is_null());
    match field::str_of(strategy, "type") {
        "" => vec![field::required("spec.updateStrategy", "")],
        "OnDelete" => match rolling {
            Some(rolling) => vec![field::invalid(
                "spec.updateStrategy.rollingUpdate",
                &rolling_update_value(rolling),
                "only allowed for updateStrategy 'RollingUpdate'",
            )],
            None => Vec::new(),
        },
        "RollingUpdate" => rolling
            .map(|r| {
                nonnegative(
                    r.get("partition"),
                    "spec.updateStrategy.rollingUpdate.partition",
                )
            })
            .unwrap_or_default(),
        other => vec![field::invalid(
            "spec.updateStrategy",
            &format!(
                "apps.StatefulSetUpdateStrategy{{Type:{}, RollingUpdate:{}}}",
                quote(other),
                field::pointer("apps.RollingUpdateStatefulSetStrategy", rolling.is_some())
            ),
            "must be 'RollingUpdate' or 'OnDelete'",
        )],
    }
}

/// Go's `%#v` of the internal `apps.RollingUpdateStatefulSetStrategy`. `maxUnavailable` is
/// behind the MaxUnavailableStatefulSet gate, off in 1.33, so it is always dropped (nil).
fn rolling_update_value(rolling: &Value) -> String {
    format!(
        "apps.RollingUpdateStatefulSetStrategy{{Partition:{}, MaxUnavailable:{}}}",
        field::int_of(rolling, "partition"),
        field::pointer("intstr.IntOrString", false)
    )
}

fn retention_policy_problems(spec: &Value) -> Vec<Cause> {
    let Some(policy) = spec
        .get("persistentVolumeClaimRetentionPolicy")
        .filter(|p| !p.is_null())
    else {
        return Vec::new();
    };
    let mut causes = Vec::new();
    for key in ["whenDeleted", "whenScaled"] {
        let value = field::str_of(policy, key);
        if !matches!(value, "Retain" | "Delete") {
            causes.push(field::not_supported(
                format!("spec.persistentVolumeClaimRetentionPolicy.{key}"),
                &quote(value),
                &["Retain", "Delete"],
            ));
        }
    }
    causes
}

/// The selector is required, valid and not empty, and selects the template's labels; the
/// template's own labels and annotations are valid (reported, as upstream does, at
/// `spec.template.labels` and `spec.template.annotations`). `kind` names the workload in
/// the empty-selector message (`statefulset`, `deployment`).
pub(super) fn selector_and_template_problems(spec: &Value, kind: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let selector = spec.get("selector").filter(|s| !s.is_null());
    let Some(selector) = selector else {
        causes.push(field::required("spec.selector", ""));
        causes.extend(template_metadata_problems(spec));
        return causes;
    };
    causes.extend(label_selector_problems(selector, "spec.selector"));
    let terms = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .map_or(0, Map::len)
        + selector
            .get("matchExpressions")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
    if terms == 0 {
        causes.push(field::invalid(
            "spec.selector",
            &label_selector_value(selector),
            &format!("empty selector is invalid for {kind}"),
        ));
    }
    let template = spec.get("template").cloned().unwrap_or(Value::Null);
    let labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    // An empty selector selects nothing here, as `labels.Selector.Empty()` is skipped upstream.
    if terms > 0
        && let Ok(parsed) = LabelSelector::parse(&selector_to_string(selector))
        && !parsed.matches(&template)
    {
        causes.push(field::invalid(
            "spec.template.metadata.labels",
            &field::string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    causes.extend(template_metadata_problems(spec));
    causes
}

fn template_metadata_problems(spec: &Value) -> Vec<Cause> {
    let metadata = spec.pointer("/template/metadata");
    let mut causes = objectmeta::labels(
        metadata.and_then(|m| m.get("labels")),
        "spec.template.labels",
    );
    causes.extend(objectmeta::annotations(
        metadata.and_then(|m| m.get("annotations")),
        "spec.template.annotations",
    ));
    causes
}

/// `ValidateLabelSelector`: valid match labels, and expressions with a known operator, a
/// valid key and values where (and only where) the operator takes them.
pub fn label_selector_problems(selector: &Value, path: &str) -> Vec<Cause> {
    let mut causes =
        objectmeta::labels(selector.get("matchLabels"), &format!("{path}.matchLabels"));
    let expressions = selector.get("matchExpressions").and_then(Value::as_array);
    for (index, expression) in expressions.into_iter().flatten().enumerate() {
        let at = format!("{path}.matchExpressions[{index}]");
        let values: Vec<&str> = expression
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match field::str_of(expression, "operator") {
            "In" | "NotIn" if values.is_empty() => causes.push(field::required(
                format!("{at}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => causes.push(field::forbidden(
                format!("{at}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => causes.push(field::invalid(
                format!("{at}.operator"),
                &quote(other),
                "not a valid selector operator",
            )),
        }
        let key = field::str_of(expression, "key");
        for problem in names::qualified_name(key) {
            causes.push(field::invalid(format!("{at}.key"), &quote(key), &problem));
        }
        for (value_index, value) in values.iter().enumerate() {
            for problem in names::label_value(value) {
                causes.push(field::invalid(
                    format!("{at}.values[{value_index}]"),
                    &quote(value),
                    &problem,
                ));
            }
        }
    }
    causes
}

/// Go's `%#v` of a `metav1.LabelSelector` without terms (its `String` method is on the
/// pointer, so `%#v` prints the struct).
fn label_selector_value(selector: &Value) -> String {
    let match_labels = match selector.get("matchLabels").and_then(Value::as_object) {
        Some(map) => field::string_map(Some(map)),
        None => field::string_map(None),
    };
    // Only printed for a selector without terms, so a list here is an empty one.
    let expressions = match selector.get("matchExpressions").and_then(Value::as_array) {
        Some(_) => "[]v1.LabelSelectorRequirement{}",
        None => "[]v1.LabelSelectorRequirement(nil)",
    };
    format!("v1.LabelSelector{{MatchLabels:{match_labels}, MatchExpressions:{expressions}}}")
}

/// The spec fields an update may change.
const MUTABLE: &[&str] = &[
    "replicas",
    "template",
    "updateStrategy",
    "minReadySeconds",
    "ordinals",
    "persistentVolumeClaimRetentionPolicy",
];

/// `ValidateStatefulSetUpdate`: the new spec is valid, and nothing but [`MUTABLE`] changed.
pub fn update_problems(old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = spec_problems(new);
    let fixed = |object: &Value| -> Value {
        let mut spec = object.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(map) = spec.as_object_mut() {
            MUTABLE.iter().for_each(|key| {
                map.remove(*key);
            });
        }
        spec
    };
    if !diff::semantically_equal(&fixed(old), &fixed(new)) {
        causes.push(field::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
    causes
}

#[cfg(test)]
#[path = "statefulsets_tests.rs"]
mod tests;
