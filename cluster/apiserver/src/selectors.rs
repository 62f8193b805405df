//! Label and field selectors, parsed from the `labelSelector` / `fieldSelector` query
//! parameters with the grammar of k8s.io/apimachinery's `labels.Parse` and `fields.Parse`.

use serde_json::Value;

use crate::errors::{ApiError, ApiResult};

#[derive(Debug, Clone, PartialEq)]
enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<LabelRequirement>);

/// Splits at commas that are not inside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_set(key: &str, rest: &str, original: &str) -> ApiResult<Vec<String>> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| invalid_selector(original, key))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn invalid_selector(selector: &str, near: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: invalid selector {selector:?} near {near:?}"
    ))
}

impl LabelRequirement {
    /// labels.NewRequirement's checks: the key a qualified name, every value a label value
    /// (a parse error first when there is no key, as the lexer finds none).
    fn validate(&self) -> ApiResult<()> {
        use crate::validation::names::{label_value, qualified_name};
        let (key, operator, values): (&str, &str, &[String]) = match self {
            LabelRequirement::Equals(k, v) => (k, "=", std::slice::from_ref(v)),
            LabelRequirement::NotEquals(k, v) => (k, "!=", std::slice::from_ref(v)),
            LabelRequirement::In(k, vs) => (k, "in", vs),
            LabelRequirement::NotIn(k, vs) => (k, "notin", vs),
            LabelRequirement::Exists(k) => (k, "", &[]),
            LabelRequirement::DoesNotExist(k) => (k, "", &[]),
        };
        if key.is_empty() {
            return Err(ApiError::bad_request(format!(
                "found '{operator}', expected: identifier"
            )));
        }
        let mut errors = Vec::new();
        let key_problems = qualified_name(key);
        if !key_problems.is_empty() {
            errors.push(format!(
                "key: Invalid value: {key:?}: {}",
                key_problems.join("; ")
            ));
        }
        for (index, value) in values.iter().enumerate() {
            let problems = label_value(value);
            if !problems.is_empty() {
                errors.push(format!(
                    "values[{index}][{key}]: Invalid value: {value:?}: {}",
                    problems.join("; ")
                ));
            }
        }
        match errors.as_slice() {
            [] => Ok(()),
            [one] => Err(ApiError::bad_request(format!(
                "unable to parse requirement: {one}"
            ))),
            many => Err(ApiError::bad_request(format!(
                "unable to parse requirement: [{}]",
                many.join(", ")
            ))),
        }
    }
}

impl LabelSelector {
    pub fn parse(text: &str) -> ApiResult<LabelSelector> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let requirement = if let Some(key) = part.strip_prefix('!') {
                LabelRequirement::DoesNotExist(key.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                LabelRequirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                LabelRequirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                LabelRequirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                LabelRequirement::NotIn(k.trim().into(), parse_set(k, rest, text)?)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                LabelRequirement::In(k.trim().into(), parse_set(k, rest, text)?)
            } else if part
                .chars()
                .all(|c| c.is_alphanumeric() || "-_./".contains(c))
            {
                LabelRequirement::Exists(part.to_string())
            } else {
                return Err(invalid_selector(text, part));
            };
            requirement.validate()?;
            requirements.push(requirement);
        }
        Ok(LabelSelector(requirements))
    }

    /// Whether an object's labels satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|requirement| match requirement {
            LabelRequirement::Equals(k, v) => label(k) == Some(v.as_str()),
            LabelRequirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            LabelRequirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelRequirement::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelRequirement::Exists(k) => label(k).is_some(),
            LabelRequirement::DoesNotExist(k) => label(k).is_none(),
        })
    }
}

/// A parsed field selector: `path=value` / `path!=value` terms on dotted field paths such as
/// `metadata.name`, `spec.nodeName`, `status.phase`, `involvedObject.uid`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(text: &str) -> ApiResult<FieldSelector> {
        let mut terms = Vec::new();
        for part in split_top_level(text) {
            let term = if let Some((k, v)) = part.split_once("!=") {
                (k.trim().to_string(), false, v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==") {
                (k.trim().to_string(), true, v.trim().to_string())
            } else if let Some((k, v)) = part.split_once('=') {
                (k.trim().to_string(), true, v.trim().to_string())
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: {text:?}: invalid selector: '{part}'; can't understand '{part}'"
                )));
            };
            terms.push(term);
        }
        Ok(FieldSelector(terms))
    }

    /// The field labels the selector names (`metadata.name`, `spec.nodeName`).
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(label, _, _)| label.as_str())
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, equal, wanted)| {
            let pointer = format!("/{}", path.replace('.', "/"));
            let actual = match object.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *wanted) == *equal
        })
    }

    /// The name asked for by `metadata.name=x`, used to watch a single object.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A label selector object (`matchLabels` / `matchExpressions`) as the string form, e.g.
/// "app=nginx", as the Scale subresource reports it in `status.selector`.
pub fn selector_to_string(selector: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(expressions) = selector.get("matchExpressions").and_then(Value::as_array) {
        for e in expressions {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default()
            {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_grammar() {
        let pod = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let yes = [
            "app=web",
            "app==web",
            "app!=db",
            "app in (web, db)",
            "tier notin (back)",
            "app",
            "!missing",
            "app=web,tier=front",
            "",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&pod), "{s}");
        }
        let no = [
            "app=db",
            "app!=web",
            "app in (db)",
            "tier notin (front)",
            "missing",
            "!app",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&pod), "{s}");
        }
    }

    #[test]
    fn field_selector_on_nested_paths() {
        let pod = json!({"metadata": {"name": "a"}, "spec": {"nodeName": "n1"}});
        assert!(
            FieldSelector::parse("metadata.name=a,spec.nodeName=n1")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            FieldSelector::parse("spec.nodeName!=")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("status.phase=Running")
                .unwrap()
                .matches(&pod)
        );
    }
}
