//! Partial object expectations, as chainsaw and kuttl assert: a YAML fragment names only the
//! fields that matter (a StatefulSet's `status.readyReplicas`, a condition's `status`), and
//! the live object matches when it has those values, whatever else it has.
//!
//! Lists of objects are matched by a key, not by position, because the API server does not
//! promise an order: `type` for conditions, `name` for containers, ports and volumes (the
//! first of [`LIST_KEYS`] the expected item has). On a mismatch the actual object is pruned
//! to the expected keys, so the diff shows only what was asked about, with one line per
//! differing path (`status.readyReplicas: expected 3, got 2`).

use std::fmt;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Map, Value};

use super::Mismatch;

/// Fields that identify an item of a list, in the order they are tried.
pub const LIST_KEYS: [&str; 4] = ["name", "type", "key", "ip"];

/// One field where the object differs from the expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct PathError {
    /// Where, e.g. `status.conditions[type=Ready].status`.
    pub path: String,
    /// The expected value.
    pub expected: Value,
    /// The value found, or None when the field or list item is missing.
    pub actual: Option<Value>,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expected = short(&self.expected);
        match &self.actual {
            Some(actual) => write!(
                f,
                "{}: expected {expected}, got {}",
                self.path,
                short(actual)
            ),
            None => write!(f, "{}: expected {expected}, got nothing", self.path),
        }
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// Compares `actual` with the fragment `expected`. Returns the differing paths and `actual`
/// pruned to the keys `expected` has (what the diff shows).
pub fn compare(expected: &Value, actual: &Value) -> (Vec<PathError>, Value) {
    let mut errors = Vec::new();
    let pruned = compare_at("", expected, actual, &mut errors);
    (errors, pruned)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn compare_at(path: &str, expected: &Value, actual: &Value, errors: &mut Vec<PathError>) -> Value {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            let mut pruned = Map::new();
            for (key, expected_value) in expected {
                let path = join(path, key);
                match actual.get(key) {
                    Some(actual_value) => {
                        let value = compare_at(&path, expected_value, actual_value, errors);
                        pruned.insert(key.clone(), value);
                    }
                    None => errors.push(PathError {
                        path,
                        expected: expected_value.clone(),
                        actual: None,
                    }),
                }
            }
            Value::Object(pruned)
        }
        (Value::Array(expected), Value::Array(actual)) => {
            compare_lists(path, expected, actual, errors)
        }
        _ if same_value(expected, actual) => actual.clone(),
        _ => {
            errors.push(PathError {
                path: path.to_string(),
                expected: expected.clone(),
                actual: Some(actual.clone()),
            });
            actual.clone()
        }
    }
}

/// Numbers compare by value (`3` and `3.0`), everything else exactly.
fn same_value(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => expected == actual,
    }
}

/// The key of a list item: the first of [`LIST_KEYS`] it has, with its value.
fn item_key(item: &Value) -> Option<(&'static str, &Value)> {
    let object = item.as_object()?;
    LIST_KEYS
        .iter()
        .find_map(|key| object.get(*key).map(|value| (*key, value)))
}

fn compare_lists(
    path: &str,
    expected: &[Value],
    actual: &[Value],
    errors: &mut Vec<PathError>,
) -> Value {
    let keyed = !expected.is_empty() && expected.iter().all(|item| item_key(item).is_some());
    if keyed {
        let mut pruned = Vec::with_capacity(expected.len());
        for item in expected {
            let Some((key, value)) = item_key(item) else {
                continue;
            };
            let label = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let item_path = format!("{path}[{key}={label}]");
            match actual
                .iter()
                .find(|candidate| candidate.get(key) == Some(value))
            {
                Some(found) => pruned.push(compare_at(&item_path, item, found, errors)),
                None => errors.push(PathError {
                    path: item_path,
                    expected: item.clone(),
                    actual: None,
                }),
            }
        }
        return Value::Array(pruned);
    }
    if expected.len() != actual.len() {
        errors.push(PathError {
            path: format!("{path} (length)"),
            expected: Value::from(expected.len()),
            actual: Some(Value::from(actual.len())),
        });
    }
    let pruned = expected
        .iter()
        .zip(actual)
        .enumerate()
        .map(|(index, (expected, actual))| {
            compare_at(&format!("{path}[{index}]"), expected, actual, errors)
        })
        .collect();
    Value::Array(pruned)
}

/// A value as YAML for people (JSON when it cannot be written as YAML).
pub fn to_yaml(value: &Value) -> String {
    serde_saphyr::to_string(value)
        .unwrap_or_else(|_| serde_json::to_string_pretty(value).unwrap_or_default())
}

/// Claims that `actual` has every field of the YAML fragment `expected`. A fragment that is
/// not YAML is an error of the lab (not a failed claim), so it is reported as such.
pub fn expect_object<T: Serialize>(claim: &str, expected: &str, actual: &T) -> Result<()> {
    let options = serde_saphyr::options! { legacy_octal_numbers: true };
    let expected: Value = serde_saphyr::from_str_with_options(expected, options)
        .map_err(|error| anyhow::anyhow!("{error}"))
        .with_context(|| format!("the expectation of '{claim}' is not valid YAML"))?;
    let actual = serde_json::to_value(actual).context("cannot turn the object into JSON")?;
    expect_value(claim, &expected, &actual)?;
    Ok(())
}

/// Claims that `actual` has every field of `expected` (see [`compare`]).
pub fn expect_value(claim: &str, expected: &Value, actual: &Value) -> Result<(), Mismatch> {
    let (errors, pruned) = compare(expected, actual);
    if errors.is_empty() {
        return Ok(());
    }
    let detail: Vec<String> = errors.iter().map(PathError::to_string).collect();
    Err(Mismatch::new(claim, to_yaml(expected), to_yaml(&pruned)).with_detail(detail.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn statefulset() -> Value {
        json!({
            "metadata": {"name": "web", "uid": "123", "generation": 2},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "sidecar", "image": "busybox:1.28"},
                {"name": "nginx", "image": "nginx", "ports": [{"name": "web", "containerPort": 80}]}
            ]}}},
            "status": {
                "replicas": 3,
                "readyReplicas": 2,
                "conditions": [
                    {"type": "Progressing", "status": "True"},
                    {"type": "Ready", "status": "False", "reason": "PodNotReady"}
                ]
            }
        })
    }

    #[test]
    fn a_fragment_matches_whatever_else_the_object_has() {
        let expected = json!({"spec": {"replicas": 3}, "status": {"replicas": 3.0}});
        let (errors, pruned) = compare(&expected, &statefulset());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            pruned,
            json!({"spec": {"replicas": 3}, "status": {"replicas": 3}})
        );
    }

    #[test]
    fn lists_of_objects_match_by_key_not_position() {
        let expected = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "image": "nginx", "ports": [{"name": "web", "containerPort": 80}]}
        ]}}}});
        let (errors, _) = compare(&expected, &statefulset());
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn mismatches_name_their_paths_with_list_keys() {
        // Paths come in key order (serde_json sorts object keys).
        let expected = json!({"status": {
            "readyReplicas": 3,
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "Available"}]
        }});
        let (errors, pruned) = compare(&expected, &statefulset());
        let lines: Vec<String> = errors.iter().map(PathError::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "status.conditions[type=Ready].status: expected \"True\", got \"False\"",
                "status.conditions[type=Available]: expected {\"type\":\"Available\"}, got nothing",
                "status.readyReplicas: expected 3, got 2",
            ]
        );
        // Pruned to the expected keys: no reason, no Progressing condition, no spec.
        assert_eq!(
            pruned,
            json!({"status": {"readyReplicas": 2, "conditions": [{"type": "Ready", "status": "False"}]}})
        );
    }

    #[test]
    fn scalar_lists_compare_by_position_and_length() {
        let (errors, _) = compare(
            &json!({"args": ["a", "b"]}),
            &json!({"args": ["a", "c", "d"]}),
        );
        let lines: Vec<String> = errors.iter().map(PathError::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "args (length): expected 2, got 3",
                "args[1]: expected \"b\", got \"c\""
            ]
        );
    }

    #[test]
    fn expect_object_reads_yaml_and_shows_a_pruned_diff() {
        let error = expect_object(
            "web is ready",
            "status:\n  readyReplicas: 3\n",
            &statefulset(),
        )
        .unwrap_err();
        let mismatch = error.downcast_ref::<Mismatch>().unwrap();
        let diff = mismatch.diff();
        assert!(diff.contains("-  readyReplicas: 3"), "{diff}");
        assert!(diff.contains("+  readyReplicas: 2"), "{diff}");
        assert!(!diff.contains("uid"), "{diff}");
        assert_eq!(
            mismatch.detail.as_deref(),
            Some("status.readyReplicas: expected 3, got 2")
        );
        let invalid = expect_object("x", "status: [", &statefulset()).unwrap_err();
        assert!(invalid.downcast_ref::<Mismatch>().is_none());
        assert!(format!("{invalid:#}").contains("not valid YAML"));
    }
}
