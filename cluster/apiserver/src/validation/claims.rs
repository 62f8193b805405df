//! PersistentVolumeClaim updates, as kube-apiserver's `ValidatePersistentVolumeClaimUpdate`
//! (1.33) checks them: the spec is immutable, except that a bound claim's storage request
//! and volumeAttributesClassName may change, volumeName may be set once (by the binder), and
//! a claim without a class may get one once (the default class, set retroactively).

use k8s_labs_quantity::Quantity;
use serde_json::{Value, json};

use super::diff;
use super::field::{self, Cause, quote};

const IMMUTABLE_SPEC: &str = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";
const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// The problems of an update of claim `old` to `new` (after defaulting; `new` carries the
/// stored status, as updates of the main resource keep it).
pub fn update_problems(old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut old_spec = old.get("spec").cloned().unwrap_or(json!({}));
    let mut new_spec = new.get("spec").cloned().unwrap_or(json!({}));
    if field::str_of(&old_spec, "volumeName").is_empty() {
        old_spec["volumeName"] = new_spec.get("volumeName").cloned().unwrap_or(Value::Null);
    }
    causes.extend(class_changes(old, new, &mut new_spec));
    let bound = new.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
    if bound {
        if let Some(requests) = new_spec
            .pointer_mut("/resources/requests")
            .and_then(Value::as_object_mut)
        {
            let before = old_spec.pointer("/resources/requests/storage").cloned();
            match before {
                Some(storage) => requests.insert("storage".into(), storage),
                None => requests.remove("storage"),
            };
        }
        if new_spec.get("volumeAttributesClassName").is_some() {
            new_spec["volumeAttributesClassName"] = old_spec
                .get("volumeAttributesClassName")
                .cloned()
                .unwrap_or(Value::Null);
        }
    }
    if !diff::semantically_equal(
        &with_exact_quantities(&old_spec),
        &with_exact_quantities(&new_spec),
    ) {
        let report = diff::spec_diff("core.PersistentVolumeClaimSpec", &old_spec, &new_spec);
        causes.push(field::forbidden(
            "spec",
            &format!("{IMMUTABLE_SPEC}\n{report}"),
        ));
    }
    causes.extend(shrink_problem(old, new));
    let mode = |claim: &Value| {
        claim
            .pointer("/spec/volumeMode")
            .and_then(Value::as_str)
            .map(String::from)
    };
    if mode(old) != mode(new) {
        let shown = mode(new).map_or("null".to_string(), |m| quote(&m));
        causes.push(field::invalid("volumeMode", &shown, "field is immutable"));
    }
    causes
}

/// The storage class may be set once on a claim without one: from its beta annotation, or
/// (retroactive default class) from nothing. The annotation itself is immutable. Clears
/// `storageClassName` in `new_spec` when its change is allowed.
fn class_changes(old: &Value, new: &Value, new_spec: &mut Value) -> Vec<Cause> {
    let annotation = |claim: &Value| {
        claim
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
            .and_then(Value::as_str)
            .map(String::from)
    };
    let class = |claim: &Value| {
        claim
            .pointer("/spec/storageClassName")
            .and_then(Value::as_str)
            .map(String::from)
    };
    let (old_annotation, new_annotation) = (annotation(old), annotation(new));
    let (old_class, new_class) = (class(old), class(new));
    let from_annotation = old_annotation.is_some()
        && (new_annotation.is_none() || new_annotation == old_annotation)
        && old_class.is_none()
        && new_class.is_some()
        && new_class == old_annotation;
    if from_annotation {
        new_spec["storageClassName"] = Value::Null;
        return Vec::new();
    }
    let mut causes = Vec::new();
    if old_annotation != new_annotation {
        causes.push(field::invalid(
            format!("metadata.annotations.{BETA_CLASS_ANNOTATION}"),
            &quote(new_annotation.as_deref().unwrap_or_default()),
            "field is immutable",
        ));
    }
    if old_annotation.is_none() && old_class.is_none() && new_class.is_some_and(|c| !c.is_empty()) {
        new_spec["storageClassName"] = Value::Null;
    }
    causes
}

/// A storage request may shrink back towards what is provisioned, never to it or below
/// (RecoverVolumeExpansionFailure, on by default in 1.33).
fn shrink_problem(old: &Value, new: &Value) -> Vec<Cause> {
    let storage = |claim: &Value, pointer: &str| {
        claim
            .pointer(pointer)
            .and_then(Value::as_str)
            .and_then(Quantity::parse)
            .map(Quantity::ceil)
    };
    let old_size = storage(old, "/spec/resources/requests/storage").unwrap_or(0);
    let new_size = storage(new, "/spec/resources/requests/storage").unwrap_or(0);
    let capacity = storage(old, "/status/capacity/storage").unwrap_or(0);
    if new_size < old_size && new_size <= capacity {
        return vec![field::forbidden(
            "spec.resources.requests.storage",
            "field can not be less than status.capacity",
        )];
    }
    Vec::new()
}

/// The spec with its resource quantities in one exact form, so that `1Gi` and `1024Mi` are
/// the same request (as `resource.Quantity` compares).
fn with_exact_quantities(spec: &Value) -> Value {
    let mut copy = spec.clone();
    for list in ["requests", "limits"] {
        let Some(map) = copy
            .pointer_mut(&format!("/resources/{list}"))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for value in map.values_mut() {
            if let Some(quantity) = value.as_str().and_then(Quantity::parse) {
                *value = json!(format!("{quantity:?}"));
            }
        }
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(storage: &str, phase: &str) -> Value {
        json!({"metadata": {"name": "www-web-0"},
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                "resources": {"requests": {"storage": storage}}},
            "status": {"phase": phase, "capacity": {"storage": "1Gi"}}})
    }

    #[test]
    fn bound_claims_may_grow() {
        let old = claim("1Gi", "Bound");
        assert_eq!(
            update_problems(&old, &claim("2Gi", "Bound")),
            Vec::<Cause>::new()
        );
        assert_eq!(
            update_problems(&old, &claim("1024Mi", "Bound")),
            Vec::<Cause>::new()
        );
        let pending = claim("1Gi", "Pending");
        let causes = update_problems(&pending, &claim("2Gi", "Pending"));
        assert_eq!(causes.len(), 1);
        assert!(causes[0].1.starts_with(&format!(
            "Forbidden: {IMMUTABLE_SPEC}\n  core.PersistentVolumeClaimSpec{{"
        )));
        assert_eq!(
            update_problems(&claim("2Gi", "Bound"), &claim("1Gi", "Bound")),
            [(
                "spec.resources.requests.storage".to_string(),
                "Forbidden: field can not be less than status.capacity".to_string()
            )]
        );
    }

    #[test]
    fn the_binder_and_the_default_class_may_fill_in() {
        let old = claim("1Gi", "Pending");
        let mut new = old.clone();
        new["spec"]["volumeName"] = json!("pvc-1");
        new["spec"]["storageClassName"] = json!("standard");
        assert_eq!(update_problems(&old, &new), Vec::<Cause>::new());
        let mut changed = new.clone();
        changed["spec"]["storageClassName"] = json!("fast");
        changed["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        let causes = update_problems(&new, &changed);
        assert_eq!(causes.len(), 1);
        assert!(
            causes[0]
                .1
                .contains("- \tAccessModes: [\"ReadWriteOnce\"],")
        );
        assert!(causes[0].1.contains("+ \tStorageClassName: \"fast\","));
    }
}
