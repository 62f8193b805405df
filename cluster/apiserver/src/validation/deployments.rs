//! Deployments, as kube-apiserver's `ValidateDeploymentSpec` (pkg/apis/apps/validation,
//! 1.33) checks them: the selector must select the template's labels, the strategy must be
//! Recreate or RollingUpdate with sensible fenceposts (never both 0), and the counts must
//! not be negative; the selector of apps/v1 cannot change on update.

use serde_json::Value;

use super::field::{self, Cause, quote};
use super::statefulsets::{
    long_running_template_problems, nonnegative, selector_and_template_problems,
};

/// The problems of a Deployment's spec (after defaulting).
pub fn spec_problems(object: &Value) -> Vec<Cause> {
    let null = Value::Null;
    let spec = object.get("spec").unwrap_or(&null);
    let mut causes = nonnegative(spec.get("replicas"), "spec.replicas");
    causes.extend(selector_and_template_problems(spec, "deployment"));
    causes.extend(long_running_template_problems(spec, "ReplicaSet"));
    causes.extend(strategy_problems(spec.get("strategy").unwrap_or(&null)));
    causes.extend(nonnegative(
        spec.get("minReadySeconds"),
        "spec.minReadySeconds",
    ));
    causes.extend(nonnegative(
        spec.get("revisionHistoryLimit"),
        "spec.revisionHistoryLimit",
    ));
    if let Some(deadline) = spec.get("progressDeadlineSeconds").and_then(Value::as_i64) {
        causes.extend(nonnegative(
            spec.get("progressDeadlineSeconds"),
            "spec.progressDeadlineSeconds",
        ));
        if deadline <= field::int_of(spec, "minReadySeconds") {
            causes.push(field::invalid(
                "spec.progressDeadlineSeconds",
                &deadline.to_string(),
                "must be greater than minReadySeconds",
            ));
        }
    }
    causes
}

/// `ValidateDeploymentUpdate` of apps/v1: the new spec, and the selector unchanged.
pub fn update_problems(old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = spec_problems(new);
    let selector = |object: &Value| object.pointer("/spec/selector").cloned();
    if !super::diff::semantically_equal(
        &selector(old).unwrap_or(Value::Null),
        &selector(new).unwrap_or(Value::Null),
    ) {
        causes.push(field::invalid(
            "spec.selector",
            &selector_value(new.pointer("/spec/selector")),
            "field is immutable",
        ));
    }
    causes
}

/// Go's `%#v` of a `metav1.LabelSelector` as `ValidateImmutableField` prints it (the
/// pointer followed; `String` is on the pointer, so the struct is printed).
fn selector_value(selector: Option<&Value>) -> String {
    let match_labels = field::string_map(
        selector
            .and_then(|s| s.get("matchLabels"))
            .and_then(Value::as_object),
    );
    let expressions = match selector
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array)
    {
        Some(list) => {
            let terms: Vec<String> = list.iter().map(requirement_value).collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", terms.join(", "))
        }
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
    };
    format!("v1.LabelSelector{{MatchLabels:{match_labels}, MatchExpressions:{expressions}}}")
}

/// Go's `%#v` of one `metav1.LabelSelectorRequirement`.
fn requirement_value(term: &Value) -> String {
    let values = term
        .get("values")
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(Value::as_str));
    format!(
        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
        quote(field::str_of(term, "key")),
        quote(field::str_of(term, "operator")),
        field::string_slice(values)
    )
}

/// `ValidateDeploymentStrategy` and `ValidateRollingUpdateDeployment`.
fn strategy_problems(strategy: &Value) -> Vec<Cause> {
    let rolling = strategy.get("rollingUpdate").filter(|r| !r.is_null());
    match field::str_of(strategy, "type") {
        "Recreate" => match rolling {
            Some(_) => vec![field::forbidden(
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'",
            )],
            None => Vec::new(),
        },
        "RollingUpdate" => match rolling {
            Some(rolling) => rolling_update_problems(rolling),
            None => vec![field::required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )],
        },
        other => vec![(
            "spec.strategy".into(),
            format!(
                "Unsupported value: apps.DeploymentStrategy{{Type:{}, RollingUpdate:{}}}: supported values: \"Recreate\", \"RollingUpdate\"",
                quote(other),
                field::pointer("apps.RollingUpdateDeployment", rolling.is_some())
            ),
        )],
    }
}

/// Go's `%#v` of an `intstr.IntOrString` (its `String` method is on the pointer).
fn int_or_string_value(value: &Value) -> String {
    match value {
        Value::String(text) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            quote(text)
        ),
        other => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            other.as_i64().unwrap_or(0)
        ),
    }
}

/// The value of an int-or-percent (`getIntOrPercentValue`; an invalid percent is 0), and
/// whether it is a percent.
fn int_or_percent(value: &Value) -> (i64, bool) {
    match value {
        Value::String(text) => (
            text.strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            true,
        ),
        other => (other.as_i64().unwrap_or(0), false),
    }
}

fn rolling_update_problems(rolling: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let zero = Value::from(0);
    let unavailable = rolling.get("maxUnavailable").unwrap_or(&zero);
    let surge = rolling.get("maxSurge").unwrap_or(&zero);
    for (value, path) in [
        (unavailable, "spec.strategy.rollingUpdate.maxUnavailable"),
        (surge, "spec.strategy.rollingUpdate.maxSurge"),
    ] {
        causes.extend(positive_int_or_percent(value, path));
    }
    if int_or_percent(unavailable).0 == 0 && int_or_percent(surge).0 == 0 {
        causes.push(field::invalid(
            "spec.strategy.rollingUpdate.maxUnavailable",
            &int_or_string_value(unavailable),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    if let (percent, true) = int_or_percent(unavailable)
        && percent > 100
    {
        causes.push(field::invalid(
            "spec.strategy.rollingUpdate.maxUnavailable",
            &int_or_string_value(unavailable),
            "must not be greater than 100%",
        ));
    }
    causes
}

/// `ValidatePositiveIntOrPercent`: a percent must look like `N%`, an int must not be
/// negative.
fn positive_int_or_percent(value: &Value, path: &str) -> Vec<Cause> {
    match value {
        Value::String(text) => {
            let digits = text.strip_suffix('%').unwrap_or_default();
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return Vec::new();
            }
            vec![field::invalid(
                path,
                &int_or_string_value(value),
                "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            )]
        }
        other => nonnegative(Some(other), path),
    }
}

#[cfg(test)]
#[path = "deployments_tests.rs"]
mod tests;
