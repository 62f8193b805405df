//! The default StorageClass and which class a claim asks for.
//!
//! The controller manager creates StorageClass `standard` at start if it is missing, as
//! installing kind's local-path-provisioner does, so that a claim without a class (the
//! tutorial's `volumeClaimTemplates`) gets a volume as on kind or k3s.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The name of the class the controller manager creates.
pub(crate) const DEFAULT_CLASS: &str = "standard";
/// The provisioner name of this cluster's volumes (a directory per volume on the node);
/// claims of classes with other provisioners are left to those.
pub(crate) const PROVISIONER: &str = "k8s-labs.io/local-path";
/// Marks the class used for claims that name none.
pub(crate) const IS_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// The beta annotation that, when present, names the claim's class instead of the field
/// (`GetPersistentVolumeClaimClass`). The older alpha annotation
/// (`volume.alpha.kubernetes.io/storage-class`) means nothing to current Kubernetes.
const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// StorageClass `standard`: default, our provisioner, `Delete`, `Immediate`.
pub(crate) fn default_storage_class() -> StorageClass {
    StorageClass {
        metadata: ObjectMeta {
            name: Some(DEFAULT_CLASS.to_string()),
            annotations: Some(BTreeMap::from([(
                IS_DEFAULT_CLASS.to_string(),
                "true".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        provisioner: PROVISIONER.to_string(),
        reclaim_policy: Some("Delete".to_string()),
        volume_binding_mode: Some("Immediate".to_string()),
        ..StorageClass::default()
    }
}

fn is_default(class: &StorageClass) -> bool {
    class
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(IS_DEFAULT_CLASS))
        .is_some_and(|value| value == "true")
}

/// The default class's name; with several defaults the newest wins (as the
/// DefaultStorageClass admission plugin decides since Kubernetes 1.26; ties by name).
pub(crate) fn default_class_name(classes: &[StorageClass]) -> Option<String> {
    classes
        .iter()
        .filter(|class| is_default(class))
        .max_by(|a, b| {
            let created = |c: &StorageClass| c.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(a)
                .cmp(&created(b))
                .then_with(|| b.metadata.name.cmp(&a.metadata.name))
        })
        .and_then(|class| class.metadata.name.clone())
}

/// The class a claim asks for: the beta annotation, else `spec.storageClassName`.
/// `None` means "unset" (the default class applies); `Some("")` means "no class".
pub(crate) fn claim_class(claim: &PersistentVolumeClaim) -> Option<&str> {
    if let Some(class) = claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(BETA_CLASS_ANNOTATION))
    {
        return Some(class);
    }
    claim
        .spec
        .as_ref()
        .and_then(|spec| spec.storage_class_name.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn class(name: &str, default: bool, created: i64) -> StorageClass {
        let mut class = default_storage_class();
        class.metadata.name = Some(name.into());
        class.metadata.creation_timestamp =
            Some(Time(jiff::Timestamp::from_second(created).unwrap()));
        if !default {
            class.metadata.annotations = None;
        }
        class
    }

    #[test]
    fn newest_default_wins() {
        assert_eq!(default_class_name(&[class("a", false, 1)]), None);
        assert_eq!(
            default_class_name(&[
                class("old", true, 1),
                class("new", true, 2),
                class("x", false, 3)
            ]),
            Some("new".into())
        );
    }

    #[test]
    fn beta_annotation_beats_the_field_and_alpha_is_ignored() {
        let claim = |value: serde_json::Value| -> PersistentVolumeClaim {
            serde_json::from_value(value).unwrap()
        };
        let alpha = claim(json!({"metadata": {"name": "c", "annotations":
            {"volume.alpha.kubernetes.io/storage-class": "anything"}}, "spec": {}}));
        assert_eq!(claim_class(&alpha), None);
        let beta = claim(json!({"metadata": {"name": "c", "annotations":
            {"volume.beta.kubernetes.io/storage-class": "fast"}},
            "spec": {"storageClassName": "slow"}}));
        assert_eq!(claim_class(&beta), Some("fast"));
        let none = claim(json!({"metadata": {"name": "c"}, "spec": {"storageClassName": ""}}));
        assert_eq!(claim_class(&none), Some(""));
    }
}
