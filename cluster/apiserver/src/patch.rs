//! The four patch types of the Kubernetes API: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902), strategic merge patch (merge patch that merges known lists by key) and
//! server-side apply (approximated as a strategic merge of the applied configuration plus a
//! `managedFields` entry per field manager; conflicts between managers are not detected).

use serde_json::{Map, Value, json};

use crate::errors::{ApiError, ApiResult};

/// The patch type, from the request's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> ApiResult<PatchType> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        match media {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// How many YAML events aliases may replay in one body. go-yaml, which kube-apiserver reads
/// YAML with, refuses "excessive aliasing" early (once aliases make 99 % of a document); with
/// saphyr's default of a million, an alias bomb of a few hundred bytes cost most of a second
/// of CPU before it was refused. A tenth of that still lets anchors in a manifest of a
/// thousand nodes expand a hundredfold.
const MAX_ALIAS_EXPANSION: usize = 100_000;

/// Parses a patch body that is JSON, or YAML for apply patches.
pub fn parse_body(patch_type: PatchType, body: &[u8]) -> ApiResult<Value> {
    if patch_type == PatchType::Apply {
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::bad_request(format!("apply patch is not UTF-8: {e}")))?;
        let mut options = serde_saphyr::Options::default();
        options.legacy_octal_numbers = true;
        options.alias_limits.max_total_replayed_events = MAX_ALIAS_EXPANSION;
        return serde_saphyr::from_str_with_options::<Value>(text, options)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))
}

/// Applies a non-apply patch to `target` and returns the result.
pub fn apply_patch(patch_type: PatchType, target: &Value, patch: &Value) -> ApiResult<Value> {
    let mut result = target.clone();
    match patch_type {
        PatchType::Merge => json_patch::merge(&mut result, patch),
        PatchType::Json => {
            let operations: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut result, &operations).map_err(|e| {
                ApiError::invalid(
                    "",
                    "",
                    &[(
                        "".into(),
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )],
                )
            })?;
        }
        PatchType::Strategic | PatchType::Apply => strategic_merge(&mut result, patch, ""),
    }
    Ok(result)
}

/// The merge key of a list field, for the lists Kubernetes merges by key. `ports` is keyed by
/// containerPort in pods and by port in services; the items tell which.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "volumeDevices" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "hostAliases" => Some("ip"),
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                Some("containerPort")
            } else {
                Some("port")
            }
        }
        _ => None,
    }
}

/// Fields that merge as sets of primitives rather than being replaced.
fn is_primitive_set(field: &str) -> bool {
    field == "finalizers"
}

/// Strategic merge of `patch` into `target`; `field` is the name of the field being merged.
pub fn strategic_merge(target: &mut Value, patch: &Value, field: &str) {
    match (target, patch) {
        (Value::Object(target_map), Value::Object(patch_map)) => {
            if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut replacement = patch_map.clone();
                replacement.remove("$patch");
                *target_map = replacement;
                return;
            }
            let retain: Option<Vec<String>> = patch_map
                .get("$retainKeys")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                });
            for (key, value) in patch_map {
                if key.starts_with("$setElementOrder/") || key == "$retainKeys" || key == "$patch" {
                    continue;
                }
                if let Some(list_field) = key.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(items)), Value::Array(remove)) =
                        (target_map.get_mut(list_field), value)
                    {
                        items.retain(|i| !remove.contains(i));
                    }
                    continue;
                }
                if value.is_null() {
                    target_map.remove(key);
                    continue;
                }
                match target_map.get_mut(key) {
                    Some(existing) if !existing.is_null() => strategic_merge(existing, value, key),
                    _ => {
                        let mut fresh = Value::Null;
                        strategic_merge(&mut fresh, value, key);
                        target_map.insert(key.clone(), fresh);
                    }
                }
            }
            if let Some(keys) = retain {
                target_map.retain(|k, _| keys.iter().any(|r| r == k));
            }
        }
        (Value::Array(target_items), Value::Array(patch_items)) => {
            if let Some(key) = merge_key(field, patch_items) {
                merge_keyed_list(target_items, patch_items, key);
            } else if is_primitive_set(field) {
                for item in patch_items {
                    if !target_items.contains(item) {
                        target_items.push(item.clone());
                    }
                }
            } else {
                *target_items = patch_items.iter().map(strip_directives).collect();
            }
        }
        (target, patch) => *target = strip_directives(patch),
    }
}

fn merge_keyed_list(target: &mut Vec<Value>, patch: &[Value], key: &str) {
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *target = patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(strip_directives)
            .collect();
        return;
    }
    for item in patch {
        let id = item.get(key);
        let position = id.and_then(|id| target.iter().position(|t| t.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                target.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut target[i], item, ""),
            (None, false) => target.push(strip_directives(item)),
        }
    }
}

/// A copy of a patch fragment without `$patch`-style directives and null fields.
fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// An approximate `fieldsV1` for an applied configuration: every field it sets, with keyed
/// list items as `k:{...}` and other list items as `v:` values or whole-list ownership.
pub fn fields_v1(value: &Value) -> Value {
    fn walk(value: &Value, field: &str) -> Value {
        match value {
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    if field.is_empty() && (k == "apiVersion" || k == "kind") {
                        continue;
                    }
                    if k == "metadata" && field.is_empty() {
                        let mut meta = Map::new();
                        for (mk, mv) in v.as_object().into_iter().flatten() {
                            if mk == "name" || mk == "namespace" {
                                continue;
                            }
                            meta.insert(format!("f:{mk}"), walk(mv, mk));
                        }
                        if !meta.is_empty() {
                            out.insert("f:metadata".into(), Value::Object(meta));
                        }
                        continue;
                    }
                    out.insert(format!("f:{k}"), walk(v, k));
                }
                Value::Object(out)
            }
            Value::Array(items) => match merge_key(field, items) {
                Some(key) => {
                    let mut out = Map::new();
                    for item in items {
                        if let Some(id) = item.get(key) {
                            let mut fields = walk(item, "");
                            if let Some(m) = fields.as_object_mut() {
                                m.insert(".".into(), json!({}));
                            }
                            out.insert(format!("k:{}", json!({ key: id })), fields);
                        }
                    }
                    Value::Object(out)
                }
                None if is_primitive_set(field) => {
                    let mut out = Map::new();
                    for item in items {
                        out.insert(format!("v:{item}"), json!({}));
                    }
                    Value::Object(out)
                }
                None => json!({}),
            },
            _ => json!({}),
        }
    }
    walk(value, "")
}

/// The `fieldsV1` of the last Apply by `manager` (through `subresource`), if any.
pub fn applied_fields(object: &Value, manager: &str, subresource: Option<&str>) -> Option<Value> {
    object
        .pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|e| {
            e.get("manager").and_then(Value::as_str) == Some(manager)
                && e.get("operation").and_then(Value::as_str) == Some("Apply")
                && e.get("subresource").and_then(Value::as_str) == subresource
        })
        .and_then(|e| e.get("fieldsV1").cloned())
}

/// Removes from `object` what a manager applied before (`old`) and no longer applies
/// (`new`), as server-side apply does. Fields shared with other managers are not tracked
/// here, so they are removed too.
pub fn remove_unapplied(object: &mut Value, old: &Value, new: &Value) {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return;
    };
    for (key, old_child) in old {
        let new_child = new.get(key);
        if let Some(field) = key.strip_prefix("f:") {
            let Some(map) = object.as_object_mut() else {
                continue;
            };
            match new_child {
                None => {
                    map.remove(field);
                }
                Some(new_child) => {
                    if let Some(child) = map.get_mut(field) {
                        remove_unapplied(child, old_child, new_child);
                    }
                }
            }
        } else if let Some(id) = key.strip_prefix("k:") {
            let Ok(Value::Object(id)) = serde_json::from_str::<Value>(id) else {
                continue;
            };
            let Some(items) = object.as_array_mut() else {
                continue;
            };
            let matches = |item: &Value| id.iter().all(|(k, v)| item.get(k) == Some(v));
            match new_child {
                None => items.retain(|item| !matches(item)),
                Some(new_child) => {
                    if let Some(item) = items.iter_mut().find(|item| matches(item)) {
                        remove_unapplied(item, old_child, new_child);
                    }
                }
            }
        } else if let Some(value) = key.strip_prefix("v:") {
            let (Ok(value), None) = (serde_json::from_str::<Value>(value), new_child) else {
                continue;
            };
            if let Some(items) = object.as_array_mut() {
                items.retain(|item| *item != value);
            }
        }
    }
}

/// Records (or replaces) the `managedFields` entry of `manager` in `object`.
pub fn record_manager(
    object: &mut Value,
    manager: &str,
    operation: &str,
    subresource: Option<&str>,
    fields: Value,
    api_version: &str,
    now: &str,
) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let entries = metadata.entry("managedFields").or_insert_with(|| json!([]));
    if !entries.is_array() {
        *entries = json!([]);
    }
    let Some(list) = entries.as_array_mut() else {
        return;
    };
    let same_entry = |e: &Value| {
        e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some(operation)
            && e.get("subresource").and_then(Value::as_str) == subresource
    };
    // Re-applying the same fields changes nothing, so the object (and its events) stay put.
    if list
        .iter()
        .any(|e| same_entry(e) && e.get("fieldsV1") == Some(&fields))
    {
        return;
    }
    list.retain(|e| !same_entry(e));
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if let Some(sub) = subresource {
        entry["subresource"] = json!(sub);
    }
    list.push(entry);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_env_by_name() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]},
            {"name": "b", "image": "y"}
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "a", "env": [{"name": "B", "value": "2"}]},
            {"name": "b", "$patch": "delete"},
            {"name": "c", "image": "z"}
        ]}});
        strategic_merge(&mut pod, &patch, "");
        assert_eq!(
            pod,
            json!({"spec": {"containers": [
                {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "c", "image": "z"}
            ]}})
        );
    }

    #[test]
    fn strategic_merge_replaces_unkeyed_lists_and_deletes_nulls() {
        let mut obj = json!({"spec": {"args": ["a", "b"], "x": 1, "y": 2}});
        strategic_merge(&mut obj, &json!({"spec": {"args": ["c"], "x": null}}), "");
        assert_eq!(obj, json!({"spec": {"args": ["c"], "y": 2}}));
    }

    #[test]
    fn retain_keys_drops_other_keys() {
        let mut obj =
            json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}});
        strategic_merge(
            &mut obj,
            &json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}),
            "",
        );
        assert_eq!(obj, json!({"strategy": {"type": "Recreate"}}));
    }

    #[test]
    fn fields_no_longer_applied_are_removed() {
        let before = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "x", "image": "i"}, {"name": "y", "image": "j"}], "replicas": 3}});
        let after = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "x", "image": "i"}]}});
        let mut live = before.clone();
        live["status"] = json!({"ready": 1});
        remove_unapplied(&mut live, &fields_v1(&before), &fields_v1(&after));
        assert_eq!(
            live,
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "x", "image": "i"}]}, "status": {"ready": 1}})
        );
    }

    /// `anchors` lists of 200 strings, each under an anchor and aliased ten times (saphyr,
    /// like go-yaml, refuses more aliases than ten per anchor): each alias replays 202 events.
    fn aliased_lists(anchors: usize) -> String {
        let strings = vec!["x"; 200].join(",");
        let mut yaml = String::new();
        for anchor in 0..anchors {
            let aliases = vec![format!("*a{anchor}"); 10].join(",");
            yaml.push_str(&format!(
                "a{anchor}: &a{anchor} [{strings}]\nb{anchor}: [{aliases}]\n"
            ));
        }
        yaml
    }

    #[test]
    fn aliases_expand_within_a_bound_far_below_an_alias_bombs() {
        // 10 × 10 × 202 = 20 200 events replayed: as a manifest's anchors might.
        let v = parse_body(PatchType::Apply, aliased_lists(10).as_bytes()).unwrap();
        assert_eq!(v["b9"][9][199], json!("x"));
        // 202 000 events replayed: under saphyr's default limit (a million), over ours.
        let error = parse_body(PatchType::Apply, aliased_lists(100).as_bytes());
        let error = error.unwrap_err();
        assert_eq!(error.code, 400);
        assert!(
            error.message.starts_with("error decoding YAML: "),
            "{}",
            error.message
        );
    }

    #[test]
    fn apply_body_parses_yaml_with_legacy_octal() {
        let v = parse_body(PatchType::Apply, b"a: 0644\nb: x\n").unwrap();
        assert_eq!(v, json!({"a": 420, "b": "x"}));
    }
}
