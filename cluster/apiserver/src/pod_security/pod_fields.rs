//! Reading a pod's JSON and phrasing what the checks found, shared by the checks and named
//! after upstream's helpers where they mirror them. Absent or `null` is Go's nil; a field of
//! the wrong type counts as absent.

use serde_json::Value;

/// The init containers, containers and ephemeral containers of a spec, in upstream's
/// `visitContainers` order.
pub(super) fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .filter_map(|list| spec.get(list).and_then(Value::as_array))
        .flatten()
}

/// A container's name ("" when missing).
pub(super) fn name(container: &Value) -> &str {
    text(container, "/name").unwrap_or_default()
}

/// A boolean field; `None` when absent, null or not a boolean (Go's nil pointer).
pub(super) fn flag(value: &Value, pointer: &str) -> Option<bool> {
    value.pointer(pointer).and_then(Value::as_bool)
}

/// A string field; `None` when absent, null or not a string.
pub(super) fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Whether a field is set (present and not null): Go's `!= nil` on a pointer field.
pub(super) fn is_set(value: &Value, pointer: &str) -> bool {
    value.pointer(pointer).is_some_and(|v| !v.is_null())
}

/// The strings of an array field (other items skipped).
pub(super) fn strings<'a>(value: &'a Value, pointer: &str) -> Vec<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Upstream's `joinQuote`: `"a", "b"`.
pub(super) fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let joined: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", joined.join("\", \""))
}

/// Upstream's `pluralize`.
pub(super) fn pluralize(
    singular: &'static str,
    plural: &'static str,
    count: usize,
) -> &'static str {
    if count == 1 { singular } else { plural }
}

/// `container "a"` or `containers "a", "b"`.
pub(super) fn containers_phrase<S: AsRef<str>>(names: &[S]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// Who set a forbidden value, as upstream words it: `pod`, `container "a"`,
/// `pod and containers "a", "b"`; empty when nobody did.
pub(super) fn setters<S: AsRef<str>>(pod: bool, containers: &[S]) -> String {
    let mut setters = Vec::new();
    if pod {
        setters.push("pod".to_string());
    }
    if !containers.is_empty() {
        setters.push(containers_phrase(containers));
    }
    setters.join(" and ")
}

/// Whether the pod declares it runs on Windows (`spec.os.name`), which some restricted checks
/// leave alone since 1.25.
pub(super) fn is_windows(spec: &Value) -> bool {
    text(spec, "/os/name") == Some("windows")
}
