//! The volume the provisioner creates for a claim: pure.
//!
//! Shaped like the volumes of kind's local-path-provisioner (an external provisioner built
//! on sig-storage-lib-external-provisioner): named `pvc-<claim uid>`, pre-bound to the claim
//! through `claimRef` (the binder then completes the binding), annotated with the
//! provisioner's name, with the class's reclaim policy and mount options. The storage is a
//! `hostPath` directory `<volume dir>/pvc-<claim uid>` of type `DirectoryOrCreate`: the
//! controller only records the path; the node agent creates the directory when it mounts the
//! volume, as the kubelet does for `DirectoryOrCreate`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::volume::binding::{PROVISIONED_BY, reference_to};

/// The name of the volume provisioned for the claim with this uid.
pub(crate) fn volume_name(claim_uid: &str) -> String {
    format!("pvc-{claim_uid}")
}

/// The volume for `claim` of `class`, under `volume_dir`; `None` if the claim has no uid yet.
pub(crate) fn provisioned_volume(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    volume_dir: &str,
) -> Option<PersistentVolume> {
    let uid = claim.metadata.uid.as_deref()?;
    let name = volume_name(uid);
    let claim_spec = claim.spec.clone().unwrap_or_default();
    let request = claim_spec
        .resources
        .as_ref()
        .and_then(|resources| resources.requests.as_ref())
        .and_then(|requests| requests.get("storage"))
        .cloned()?;
    Some(PersistentVolume {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            annotations: Some(BTreeMap::from([(
                PROVISIONED_BY.to_string(),
                class.provisioner.clone(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(BTreeMap::from([("storage".to_string(), request)])),
            access_modes: claim_spec.access_modes,
            volume_mode: claim_spec.volume_mode,
            claim_ref: Some(reference_to(claim)),
            persistent_volume_reclaim_policy: Some(
                class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".to_string()),
            ),
            storage_class_name: class.metadata.name.clone(),
            mount_options: class.mount_options.clone(),
            host_path: Some(HostPathVolumeSource {
                path: format!("{}/{name}", volume_dir.trim_end_matches('/')),
                type_: Some("DirectoryOrCreate".to_string()),
            }),
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::storage_class::default_storage_class;
    use serde_json::json;

    #[test]
    fn volume_follows_claim_and_class() {
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "www-web-0", "namespace": "default", "uid": "1234", "resourceVersion": "7"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "storageClassName": "standard", "volumeMode": "Filesystem"},
        }))
        .unwrap();
        let volume =
            provisioned_volume(&claim, &default_storage_class(), "/data/volumes/").unwrap();
        assert_eq!(volume.metadata.name.as_deref(), Some("pvc-1234"));
        assert_eq!(
            volume.metadata.annotations.unwrap()[PROVISIONED_BY],
            "k8s-labs.io/local-path"
        );
        let spec = volume.spec.unwrap();
        assert_eq!(spec.capacity.unwrap()["storage"].0, "1Gi");
        assert_eq!(spec.access_modes.unwrap(), ["ReadWriteOnce"]);
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        assert_eq!(spec.storage_class_name.as_deref(), Some("standard"));
        let claim_ref = spec.claim_ref.unwrap();
        assert_eq!(
            (
                claim_ref.namespace.as_deref(),
                claim_ref.name.as_deref(),
                claim_ref.uid.as_deref()
            ),
            (Some("default"), Some("www-web-0"), Some("1234"))
        );
        let host_path = spec.host_path.unwrap();
        assert_eq!(host_path.path, "/data/volumes/pvc-1234");
        assert_eq!(host_path.type_.as_deref(), Some("DirectoryOrCreate"));
    }
}
