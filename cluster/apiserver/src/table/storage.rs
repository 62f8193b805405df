//! Printers of volumes and storage classes, ported from kube-apiserver's printers.go.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::Doc::{Field, Text};
use super::{AGE, Column, NAME, Printed, age, array, column, name, text, text_or, wide};

/// `helper.GetAccessModesAsString`: the short forms in a fixed order.
fn access_modes(modes: &[Value]) -> String {
    let has = |mode: &str| modes.iter().any(|m| m.as_str() == Some(mode));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The storage class: the beta annotation wins over `spec.storageClassName`.
fn storage_class(object: &Value) -> &str {
    match object.pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class") {
        Some(Value::String(class)) => class,
        _ => text(object, "/spec/storageClassName"),
    }
}

/// PV and PVC phases read "Terminating" while the object is being deleted.
fn phase(object: &Value) -> &str {
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        "Terminating"
    } else {
        text(object, "/status/phase")
    }
}

pub(super) const PV_COLUMNS: &[Column] = &[
    NAME,
    column("Capacity", "string", Field("PersistentVolumeSpec.capacity")),
    column(
        "Access Modes",
        "string",
        Field("PersistentVolumeSpec.accessModes"),
    ),
    column(
        "Reclaim Policy",
        "string",
        Field("PersistentVolumeSpec.persistentVolumeReclaimPolicy"),
    ),
    column("Status", "string", Field("PersistentVolumeStatus.phase")),
    column("Claim", "string", Field("PersistentVolumeSpec.claimRef")),
    column("StorageClass", "string", Text("StorageClass of the pv")),
    column(
        "VolumeAttributesClass",
        "string",
        Text("VolumeAttributesClass of the pv"),
    ),
    column("Reason", "string", Field("PersistentVolumeStatus.reason")),
    AGE,
    wide(
        "VolumeMode",
        "string",
        Field("PersistentVolumeSpec.volumeMode"),
    ),
];

pub(super) fn print_pv(volume: &Value, now: Timestamp) -> Printed {
    let claim = match volume.pointer("/spec/claimRef") {
        Some(claim) if claim.is_object() => {
            format!("{}/{}", text(claim, "/namespace"), text(claim, "/name"))
        }
        _ => String::new(),
    };
    vec![
        name(volume),
        json!(text(volume, "/spec/capacity/storage")),
        json!(access_modes(array(volume, "/spec/accessModes"))),
        json!(text(volume, "/spec/persistentVolumeReclaimPolicy")),
        json!(phase(volume)),
        json!(claim),
        json!(storage_class(volume)),
        json!(text_or(
            volume,
            "/spec/volumeAttributesClassName",
            "<unset>"
        )),
        json!(text(volume, "/status/reason")),
        age(volume, now),
        json!(text_or(volume, "/spec/volumeMode", "<unset>")),
    ]
    .into()
}

pub(super) const PVC_COLUMNS: &[Column] = &[
    NAME,
    column(
        "Status",
        "string",
        Field("PersistentVolumeClaimStatus.phase"),
    ),
    column(
        "Volume",
        "string",
        Field("PersistentVolumeClaimSpec.volumeName"),
    ),
    column(
        "Capacity",
        "string",
        Field("PersistentVolumeClaimStatus.capacity"),
    ),
    column(
        "Access Modes",
        "string",
        Field("PersistentVolumeClaimStatus.accessModes"),
    ),
    column("StorageClass", "string", Text("StorageClass of the pvc")),
    column(
        "VolumeAttributesClass",
        "string",
        Text("VolumeAttributesClass of the pvc"),
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        Field("PersistentVolumeClaimSpec.volumeMode"),
    ),
];

/// Capacity and access modes show only once the claim is bound to a volume.
pub(super) fn print_pvc(claim: &Value, now: Timestamp) -> Printed {
    let volume = text(claim, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            text(claim, "/status/capacity/storage").to_string(),
            access_modes(array(claim, "/status/accessModes")),
        )
    };
    vec![
        name(claim),
        json!(phase(claim)),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(storage_class(claim)),
        json!(text_or(claim, "/spec/volumeAttributesClassName", "<unset>")),
        age(claim, now),
        json!(text_or(claim, "/spec/volumeMode", "<unset>")),
    ]
    .into()
}

pub(super) const STORAGE_CLASS_COLUMNS: &[Column] = &[
    NAME,
    column("Provisioner", "string", Field("StorageClass.provisioner")),
    column(
        "ReclaimPolicy",
        "string",
        Field("StorageClass.reclaimPolicy"),
    ),
    column(
        "VolumeBindingMode",
        "string",
        Field("StorageClass.volumeBindingMode"),
    ),
    column(
        "AllowVolumeExpansion",
        "string",
        Field("StorageClass.allowVolumeExpansion"),
    ),
    AGE,
];

pub(super) fn print_storage_class(class: &Value, now: Timestamp) -> Printed {
    let annotations = &class["metadata"]["annotations"];
    let is_default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|key| annotations[*key].as_str() == Some("true"));
    let mut class_name = text(class, "/metadata/name").to_string();
    if is_default {
        class_name.push_str(" (default)");
    }
    vec![
        json!(class_name),
        json!(text(class, "/provisioner")),
        json!(text_or(class, "/reclaimPolicy", "Delete")),
        json!(text_or(class, "/volumeBindingMode", "Immediate")),
        json!(class["allowVolumeExpansion"].as_bool().unwrap_or(false)),
        age(class, now),
    ]
    .into()
}
