//! What changed in a spec, for the immutable-spec errors that end in a diff
//! (`pod updates may not change fields other than ...` followed by `cmp.Diff(old, new)`).
//!
//! go-cmp's report prints Go structs and deliberately varies its whitespace from run to run
//! so that nobody matches it exactly; what a learner needs from it is which fields changed.
//! So this prints go-cmp's shape (a `- `/`+ ` line pair per changed field, Go field names,
//! `... // N identical fields`) with the values as JSON.

use serde_json::{Map, Value};

/// The `cmp.Diff` report of two specs of Go type `type_name` (e.g. `core.PodSpec`).
pub fn spec_diff(type_name: &str, old: &Value, new: &Value) -> String {
    let empty = Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut lines = vec![format!("  {type_name}{{")];
    let mut identical = 0;
    for key in keys {
        let (before, after) = (present(old.get(key)), present(new.get(key)));
        if before == after {
            identical += 1;
            continue;
        }
        if identical > 0 {
            lines.push(identical_line(identical));
            identical = 0;
        }
        let name = go_field_name(key);
        if let Some(before) = before {
            lines.push(format!("- \t{name}: {before},"));
        }
        if let Some(after) = after {
            lines.push(format!("+ \t{name}: {after},"));
        }
    }
    if identical > 0 {
        lines.push(identical_line(identical));
    }
    lines.push("  }".to_string());
    lines.join("\n")
}

fn identical_line(count: usize) -> String {
    let noun = if count == 1 { "field" } else { "fields" };
    format!("  \t... // {count} identical {noun}")
}

/// A field's value as printed, or None when it is unset (null, absent, or an empty list,
/// which Kubernetes' semantic equality does not tell from unset).
fn present(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::Array(items) if items.is_empty() => None,
        other => Some(other.to_string()),
    }
}

/// The Go field name of a JSON key: `serviceAccountName` is `ServiceAccountName`, and the
/// few that start with an initialism are spelled as Go spells them.
fn go_field_name(key: &str) -> String {
    match key {
        "dnsPolicy" => return "DNSPolicy".to_string(),
        "dnsConfig" => return "DNSConfig".to_string(),
        "os" => return "OS".to_string(),
        _ => {}
    }
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Whether two values are equal as Kubernetes' semantic equality sees them: null, absent
/// and empty lists are all unset.
pub fn semantically_equal(a: &Value, b: &Value) -> bool {
    normalized(a) == normalized(b)
}

fn normalized(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null() && !v.as_array().is_some_and(Vec::is_empty))
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shows_the_changed_fields() {
        let old =
            json!({"containers": [{"name": "c"}], "dnsPolicy": "ClusterFirst", "hostname": "a"});
        let new = json!({"containers": [{"name": "c"}], "dnsPolicy": "Default", "hostname": "a", "volumes": []});
        assert_eq!(
            spec_diff("core.PodSpec", &old, &new),
            "  core.PodSpec{\n  \t... // 1 identical field\n- \tDNSPolicy: \"ClusterFirst\",\n+ \tDNSPolicy: \"Default\",\n  \t... // 2 identical fields\n  }"
        );
    }

    #[test]
    fn unset_equals_empty() {
        assert!(semantically_equal(
            &json!({"a": null, "b": [], "c": {"d": 1}}),
            &json!({"c": {"d": 1}})
        ));
        assert!(!semantically_equal(&json!({"a": {}}), &json!({})));
    }
}
