//! Small edits of a JSON object that defaulting makes everywhere: set a field when it is
//! unset, reach (creating) a nested object.

use serde_json::{Map, Value, json};

pub(crate) fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

pub(crate) fn object_mut<'a>(
    parent: &'a mut Value,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    object_mut_in(parent.as_object_mut()?, key)
}

/// [`object_mut`] of a map already in hand: the object at `key`, made an empty one when
/// missing or null.
pub(crate) fn object_mut_in<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let entry = map.entry(key.to_string()).or_insert_with(|| json!({}));
    if entry.is_null() {
        *entry = json!({});
    }
    entry.as_object_mut()
}
