//! Field errors as apimachinery's `field.Error` prints them, and Go's `%q` / `%#v` renderings
//! of the values they quote: kubectl shows these texts to the learner verbatim
//! (`spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: ...`), so
//! they are built here the one way the server builds them.

use serde_json::{Map, Value};

/// One field error: the field path and the body `ErrorBody` prints
/// (`Invalid value: "x": detail`). [`crate::errors::ApiError::invalid_in`] reads its type
/// back from the body's first words.
pub type Cause = (String, String);

/// `field.Invalid`: `value` is already rendered (see [`quote`], [`string_map`], ...).
pub fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Cause {
    let body = if detail.is_empty() {
        format!("Invalid value: {value}")
    } else {
        format!("Invalid value: {value}: {detail}")
    };
    (field.into(), body)
}

/// `field.Required`.
pub fn required(field: impl Into<String>, detail: &str) -> Cause {
    (field.into(), with_detail("Required value", detail))
}

/// `field.Forbidden`.
pub fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
    (field.into(), with_detail("Forbidden", detail))
}

/// `field.Duplicate`: `value` is already rendered.
pub fn duplicate(field: impl Into<String>, value: &str) -> Cause {
    (field.into(), format!("Duplicate value: {value}"))
}

/// `field.NotSupported`: the value and the quoted list of what is supported.
pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Cause {
    let listed: Vec<String> = supported.iter().map(|s| quote(s)).collect();
    (
        field.into(),
        format!(
            "Unsupported value: {value}: supported values: {}",
            listed.join(", ")
        ),
    )
}

/// `field.TooLong` with a byte limit (the value is never printed).
pub fn too_long(field: impl Into<String>, limit: usize) -> Cause {
    (
        field.into(),
        format!("Too long: may not be more than {limit} bytes"),
    )
}

fn with_detail(kind: &str, detail: &str) -> String {
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

/// Go's `%q` of a string (`strconv.Quote`): printable characters as they are, the usual
/// backslash escapes, other control characters as `\x..` / `\u....`.
pub fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{b}' => quoted.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                quoted.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Go's `%#v` of a `map[string]string` (keys sorted, as fmt prints maps); `None` is the nil
/// map.
pub fn string_map(map: Option<&Map<String, Value>>) -> String {
    let Some(map) = map else {
        return "map[string]string(nil)".to_string();
    };
    let mut pairs: Vec<(&String, String)> = map
        .iter()
        .map(|(k, v)| (k, quote(v.as_str().unwrap_or_default())))
        .collect();
    pairs.sort();
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{v}", quote(k)))
        .collect();
    format!("map[string]string{{{}}}", inner.join(", "))
}

/// Go's `%#v` of a `[]string`; `None` is the nil slice.
pub fn string_slice<'a>(items: Option<impl IntoIterator<Item = &'a str>>) -> String {
    let Some(items) = items else {
        return "[]string(nil)".to_string();
    };
    let quoted: Vec<String> = items.into_iter().map(quote).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Go's `%#v` of a pointer field inside a struct: `(*T)(nil)`, or an address. The address a
/// Go server prints changes with every request, so a fixed one stands in for it.
pub fn pointer(type_name: &str, present: bool) -> String {
    if present {
        format!("(*{type_name})(0xc000100000)")
    } else {
        format!("(*{type_name})(nil)")
    }
}

/// A string field of a JSON object, "" when absent (Go's zero value).
pub fn str_of<'a>(object: &'a Value, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// An integer field of a JSON object, 0 when absent (Go's zero value).
pub fn int_of(object: &Value, key: &str) -> i64 {
    object.get(key).and_then(Value::as_i64).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_values_as_go_does() {
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("tab\there\u{1}é"), "\"tab\\there\\x01é\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("a\nb\u{1b}"), "\"a\\nb\\x1b\"");
        let labels = json!({"tier": "web", "app": "nginx"});
        assert_eq!(
            string_map(labels.as_object()),
            "map[string]string{\"app\":\"nginx\", \"tier\":\"web\"}"
        );
        assert_eq!(string_map(None), "map[string]string(nil)");
        assert_eq!(string_slice(Some(["10.96.0.7"])), "[]string{\"10.96.0.7\"}");
        assert_eq!(string_slice(None::<[&str; 0]>), "[]string(nil)");
    }

    #[test]
    fn bodies_are_error_body_texts() {
        assert_eq!(
            invalid("metadata.name", &quote("a b"), "bad").1,
            "Invalid value: \"a b\": bad"
        );
        assert_eq!(required("spec.selector", "").1, "Required value");
        assert_eq!(
            not_supported("spec.x", &quote("Never"), &["Always"]).1,
            "Unsupported value: \"Never\": supported values: \"Always\""
        );
        assert_eq!(
            too_long("metadata.annotations", 262144).1,
            "Too long: may not be more than 262144 bytes"
        );
    }
}
