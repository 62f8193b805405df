//! `metadata` as kube-apiserver's `ValidateObjectMeta` checks it (apimachinery's
//! `api/validation/objectmeta.go` plus the finalizer rule of `pkg/apis/core/validation`):
//! name and generateName, labels, annotations, owner references and finalizers, on create;
//! the same but the name (which cannot change) on update, and no finalizer added to an object
//! that is being deleted.

use serde_json::{Map, Value};

use super::field::{self, Cause, quote};
use super::names::{self, NameRule};

/// apimachinery's `TotalAnnotationSizeLimitB`: keys and values together, 256 KiB.
const ANNOTATIONS_SIZE_LIMIT: usize = 256 * 1024;

/// The finalizers every kind knows without a domain (`helper.IsStandardFinalizerName`).
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// The problems of a new object's metadata. `rule` names the resource's objects (see
/// [`names::rule_for`]).
pub fn validate_create(metadata: Option<&Value>, rule: NameRule) -> Vec<Cause> {
    let empty = Value::Object(Map::new());
    let metadata = metadata.unwrap_or(&empty);
    let mut causes = Vec::new();
    let generate_name = field::str_of(metadata, "generateName");
    if !generate_name.is_empty() {
        for problem in rule(generate_name, true) {
            causes.push(field::invalid(
                "metadata.generateName",
                &quote(generate_name),
                &problem,
            ));
        }
    }
    let name = field::str_of(metadata, "name");
    if name.is_empty() {
        causes.push(field::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for problem in rule(name, false) {
            causes.push(field::invalid("metadata.name", &quote(name), &problem));
        }
    }
    causes.extend(common(metadata));
    causes
}

/// The problems of an updated object's metadata. The name, namespace, uid and timestamps are
/// kept from the stored object before this runs, so they cannot differ.
pub fn validate_update(old: Option<&Value>, new: Option<&Value>) -> Vec<Cause> {
    let empty = Value::Object(Map::new());
    let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    let mut causes = Vec::new();
    if old.get("deletionTimestamp").is_some_and(|t| !t.is_null()) {
        let before = finalizers(old);
        let mut added: Vec<&str> = finalizers(new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        added.sort_unstable();
        added.dedup();
        if !added.is_empty() {
            causes.push(field::forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    field::string_slice(Some(added))
                ),
            ));
        }
    }
    causes.extend(common(new));
    causes
}

/// What create and update both check, in upstream's order.
fn common(metadata: &Value) -> Vec<Cause> {
    let mut causes = labels(metadata.get("labels"), "metadata.labels");
    causes.extend(annotations(
        metadata.get("annotations"),
        "metadata.annotations",
    ));
    causes.extend(owner_references(metadata.get("ownerReferences")));
    causes.extend(finalizer_names(metadata));
    causes
}

/// `ValidateLabels`: every key a qualified name, every value a label value. Go walks the map
/// in random order; here keys go in sorted order so that the answer is stable.
pub fn labels(labels: Option<&Value>, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (key, value) in sorted(labels) {
        for problem in names::qualified_name(key) {
            causes.push(field::invalid(path, &quote(key), &problem));
        }
        let value = value.as_str().unwrap_or_default();
        for problem in names::label_value(value) {
            causes.push(field::invalid(path, &quote(value), &problem));
        }
    }
    causes
}

/// `ValidateAnnotations`: keys are qualified names (in any case), and keys and values
/// together stay within 256 KiB.
pub fn annotations(annotations: Option<&Value>, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut total = 0;
    for (key, value) in sorted(annotations) {
        for problem in names::qualified_name(&key.to_lowercase()) {
            causes.push(field::invalid(path, &quote(key), &problem));
        }
        total += key.len() + value.as_str().map_or(0, str::len);
    }
    if total > ANNOTATIONS_SIZE_LIMIT {
        causes.push(field::too_long(path, ANNOTATIONS_SIZE_LIMIT));
    }
    causes
}

fn sorted(map: Option<&Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// `ValidateOwnerReferences`: apiVersion (with a version), kind, name and uid are required,
/// Events may not own anything, and at most one reference is the controller.
fn owner_references(references: Option<&Value>) -> Vec<Cause> {
    const PATH: &str = "metadata.ownerReferences";
    let references: &[Value] = references
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let mut causes = Vec::new();
    let mut first_controller: Option<String> = None;
    for reference in references {
        let api_version = field::str_of(reference, "apiVersion");
        let kind = field::str_of(reference, "kind");
        // `schema.FromAPIVersionAndKind`: the version is what follows the group's '/'.
        let version = match api_version.matches('/').count() {
            0 => api_version,
            1 => api_version.split_once('/').map_or("", |(_, v)| v),
            _ => "",
        };
        let required = [
            (
                "apiVersion",
                version,
                api_version,
                "version must not be empty",
            ),
            ("kind", kind, kind, "kind must not be empty"),
            (
                "name",
                field::str_of(reference, "name"),
                "",
                "name must not be empty",
            ),
            (
                "uid",
                field::str_of(reference, "uid"),
                "",
                "uid must not be empty",
            ),
        ];
        for (key, checked, shown, message) in required {
            if checked.is_empty() {
                causes.push(field::invalid(
                    format!("{PATH}.{key}"),
                    &quote(shown),
                    message,
                ));
            }
        }
        if api_version == "v1" && kind == "Event" {
            causes.push(field::invalid(
                PATH,
                &owner_reference_value(reference),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if reference.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{kind}/{}", field::str_of(reference, "name"));
            match &first_controller {
                Some(first) => causes.push(field::invalid(
                    PATH,
                    &owner_references_value(references),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    causes
}

/// Go's `%#v` of a `metav1.OwnerReference`.
fn owner_reference_value(reference: &Value) -> String {
    format!(
        "v1.OwnerReference{{APIVersion:{}, Kind:{}, Name:{}, UID:{}, Controller:{}, BlockOwnerDeletion:{}}}",
        quote(field::str_of(reference, "apiVersion")),
        quote(field::str_of(reference, "kind")),
        quote(field::str_of(reference, "name")),
        quote(field::str_of(reference, "uid")),
        field::pointer(
            "bool",
            reference.get("controller").is_some_and(Value::is_boolean)
        ),
        field::pointer(
            "bool",
            reference
                .get("blockOwnerDeletion")
                .is_some_and(Value::is_boolean)
        ),
    )
}

fn owner_references_value(references: &[Value]) -> String {
    let items: Vec<String> = references.iter().map(owner_reference_value).collect();
    format!("[]v1.OwnerReference{{{}}}", items.join(", "))
}

fn finalizers(metadata: &Value) -> Vec<&str> {
    metadata
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Finalizer names, checked twice as kube-apiserver does: as qualified names at
/// `metadata.finalizers` (apimachinery), then per index with kube's rule that a name without
/// a domain must be a standard one (`validateKubeFinalizerName`).
fn finalizer_names(metadata: &Value) -> Vec<Cause> {
    const PATH: &str = "metadata.finalizers";
    let list = finalizers(metadata);
    let mut causes = Vec::new();
    for name in &list {
        for problem in names::qualified_name(name) {
            causes.push(field::invalid(PATH, &quote(name), &problem));
        }
    }
    if list.contains(&"orphan") && list.contains(&"foregroundDeletion") {
        causes.push(field::invalid(
            PATH,
            &field::string_slice(Some(list.iter().copied())),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    for (index, name) in list.iter().enumerate() {
        let path = format!("{PATH}[{index}]");
        for problem in names::qualified_name(name) {
            causes.push(field::invalid(path.clone(), &quote(name), &problem));
        }
        if !name.contains('/') && !STANDARD_FINALIZERS.contains(name) {
            causes.push(field::invalid(
                path,
                &quote(name),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;
    use serde_json::json;

    fn create(metadata: Value) -> Vec<Cause> {
        let rule = names::rule_for(find("", "v1", "configmaps").unwrap());
        validate_create(Some(&metadata), rule)
    }

    #[test]
    fn names_and_generate_names() {
        assert!(create(json!({"name": "c"})).is_empty());
        let causes = create(json!({"name": "a b"}));
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].0, "metadata.name");
        assert!(
            causes[0]
                .1
                .starts_with("Invalid value: \"a b\": a lowercase RFC 1123 subdomain")
        );
        assert_eq!(
            create(json!({}))[0],
            (
                "metadata.name".to_string(),
                "Required value: name or generateName is required".to_string()
            )
        );
        let causes = create(json!({"generateName": "Web-", "name": "Web-x7k2p"}));
        let fields: Vec<&str> = causes.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(fields, ["metadata.generateName", "metadata.name"]);
    }

    #[test]
    fn labels_annotations_and_finalizers() {
        let causes = create(json!({"name": "c", "labels": {"a b": "ok", "app": "x y"}}));
        let values: Vec<&str> = causes.iter().map(|c| c.1.as_str()).collect();
        assert!(values[0].starts_with("Invalid value: \"a b\": name part must consist"));
        assert!(values[1].starts_with("Invalid value: \"x y\": a valid label must be"));
        assert!(causes.iter().all(|c| c.0 == "metadata.labels"));
        // Annotation keys may be upper case; the total size is bounded.
        assert!(create(json!({"name": "c", "annotations": {"Example.com/Key": "v"}})).is_empty());
        let big = json!({"name": "c", "annotations": {"k": "v".repeat(256 * 1024)}});
        assert_eq!(create(big), [too_long_annotations()]);
        let causes =
            create(json!({"name": "c", "finalizers": ["example.com/f", "kubernetes", "mine"]}));
        assert_eq!(
            causes,
            [(
                "metadata.finalizers[2]".to_string(),
                "Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified".to_string()
            )]
        );
    }

    fn too_long_annotations() -> Cause {
        (
            "metadata.annotations".to_string(),
            "Too long: may not be more than 262144 bytes".to_string(),
        )
    }

    #[test]
    fn owner_references_need_identity_and_one_controller() {
        let owner = |name: &str| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": "u", "controller": true});
        assert!(create(json!({"name": "c", "ownerReferences": [owner("a")]})).is_empty());
        let causes = create(
            json!({"name": "c", "ownerReferences": [{"apiVersion": "apps/", "kind": "ReplicaSet"}]}),
        );
        assert_eq!(
            causes,
            [
                (
                    "metadata.ownerReferences.apiVersion".to_string(),
                    "Invalid value: \"apps/\": version must not be empty".to_string()
                ),
                (
                    "metadata.ownerReferences.name".to_string(),
                    "Invalid value: \"\": name must not be empty".to_string()
                ),
                (
                    "metadata.ownerReferences.uid".to_string(),
                    "Invalid value: \"\": uid must not be empty".to_string()
                ),
            ]
        );
        let causes = create(json!({"name": "c", "ownerReferences": [owner("a"), owner("b")]}));
        assert_eq!(causes.len(), 1);
        assert!(causes[0].1.starts_with(
            "Invalid value: []v1.OwnerReference{v1.OwnerReference{APIVersion:\"apps/v1\""
        ));
        assert!(causes[0].1.ends_with(
            "Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/a and ReplicaSet/b"
        ));
    }

    #[test]
    fn no_new_finalizers_while_deleting() {
        let old = json!({"name": "c", "deletionTimestamp": "2025-01-01T00:00:00Z", "finalizers": ["a/b"]});
        let new = json!({"name": "c", "finalizers": ["a/b", "x/y"]});
        assert_eq!(
            validate_update(Some(&old), Some(&new)),
            [(
                "metadata.finalizers".to_string(),
                "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"x/y\"}".to_string()
            )]
        );
        let removing = json!({"name": "c", "finalizers": []});
        assert!(validate_update(Some(&old), Some(&removing)).is_empty());
    }
}
