//! Which volume a claim binds to, and what a binding looks like: pure decisions.
//!
//! Mirrors the PersistentVolume controller's `findBestMatchForClaim` (`pv_controller.go`,
//! `index.go`): a volume pre-bound to the claim wins; otherwise the smallest volume of the
//! claim's class that is unclaimed, offers all requested access modes, is large enough, has
//! the same volume mode and matches the claim's selector.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Resource as _;
use kube::core::{Selector, SelectorExt as _};

use crate::volume::quantity::bytes;
use crate::volume::storage_class::claim_class;

/// On a claim: the binding is complete (set once, by the controller).
pub(crate) const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// On a claim or volume: the controller (not the user) made this side of the binding.
pub(crate) const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// On a claim: which provisioner is to provision it (set before provisioning).
pub(crate) const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// The deprecated twin of [`STORAGE_PROVISIONER`], still set by Kubernetes.
pub(crate) const BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// On a volume: the provisioner that created it (and deletes it).
pub(crate) const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";

fn storage(resources: Option<&BTreeMap<String, Quantity>>) -> Option<u128> {
    resources.and_then(|r| r.get("storage")).and_then(bytes)
}

/// The claim's storage request in bytes (0 when absent).
pub(crate) fn requested_bytes(claim: &PersistentVolumeClaim) -> u128 {
    storage(
        claim
            .spec
            .as_ref()
            .and_then(|spec| spec.resources.as_ref())
            .and_then(|resources| resources.requests.as_ref()),
    )
    .unwrap_or(0)
}

fn capacity_bytes(volume: &PersistentVolume) -> u128 {
    storage(volume.spec.as_ref().and_then(|spec| spec.capacity.as_ref())).unwrap_or(0)
}

/// The volume's claimRef, if any.
pub(crate) fn claim_ref(volume: &PersistentVolume) -> Option<&ObjectReference> {
    volume
        .spec
        .as_ref()
        .and_then(|spec| spec.claim_ref.as_ref())
}

/// Whether the volume's claimRef names this claim (by namespace and name, and by uid when the
/// reference has one: a user may pre-bind a volume to a claim by name only).
pub(crate) fn is_claimed_by(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    claim_ref(volume).is_some_and(|reference| {
        reference.name == claim.metadata.name
            && reference.namespace == claim.metadata.namespace
            && reference
                .uid
                .as_deref()
                .is_none_or(|uid| uid.is_empty() || Some(uid) == claim.metadata.uid.as_deref())
    })
}

/// Whether the claimRef names this claim including its uid (`IsVolumeBoundToClaim`).
pub(crate) fn is_bound_to(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    claim_ref(volume).is_some_and(|reference| {
        reference.name == claim.metadata.name
            && reference.namespace == claim.metadata.namespace
            && reference.uid.is_some()
            && reference.uid == claim.metadata.uid
    })
}

fn volume_mode(mode: Option<&String>) -> &str {
    mode.map_or("Filesystem", String::as_str)
}

/// Whether an unclaimed `volume` satisfies `claim` (class, modes, size, selector).
fn satisfies(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let (Some(volume_spec), Some(claim_spec)) = (volume.spec.as_ref(), claim.spec.as_ref()) else {
        return false;
    };
    let volume_class = volume_spec
        .storage_class_name
        .as_deref()
        .unwrap_or_default();
    if volume_class != claim_class(claim).unwrap_or_default() {
        return false;
    }
    let offered = volume_spec.access_modes.clone().unwrap_or_default();
    if !claim_spec
        .access_modes
        .iter()
        .flatten()
        .all(|mode| offered.contains(mode))
    {
        return false;
    }
    if volume_mode(volume_spec.volume_mode.as_ref()) != volume_mode(claim_spec.volume_mode.as_ref())
    {
        return false;
    }
    if capacity_bytes(volume) < requested_bytes(claim) {
        return false;
    }
    match claim_spec.selector.clone().map(Selector::try_from) {
        None => true,
        Some(Ok(selector)) => {
            selector.matches(volume.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))
        }
        Some(Err(_)) => false,
    }
}

/// The volume to bind `claim` to, if any (see the module documentation).
pub(crate) fn best_match<'a>(
    claim: &PersistentVolumeClaim,
    volumes: &'a [PersistentVolume],
) -> Option<&'a PersistentVolume> {
    let usable = volumes
        .iter()
        .filter(|volume| volume.metadata.deletion_timestamp.is_none());
    if let Some(pre_bound) = usable.clone().find(|volume| is_claimed_by(volume, claim)) {
        return Some(pre_bound);
    }
    usable
        .filter(|volume| claim_ref(volume).is_none() && phase(volume) != Some("Released"))
        .filter(|volume| satisfies(volume, claim))
        .min_by_key(|volume| (capacity_bytes(volume), volume.metadata.name.clone()))
}

/// The volume's status phase.
pub(crate) fn phase(volume: &PersistentVolume) -> Option<&str> {
    volume
        .status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
}

/// The claimRef a volume bound to `claim` carries.
pub(crate) fn reference_to(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some(PersistentVolumeClaim::api_version(&()).into_owned()),
        kind: Some(PersistentVolumeClaim::kind(&()).into_owned()),
        namespace: claim.metadata.namespace.clone(),
        name: claim.metadata.name.clone(),
        uid: claim.metadata.uid.clone(),
        resource_version: claim.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// The status of a claim bound to `volume`: Bound, with the volume's modes and capacity.
pub(crate) fn bound_claim_status(
    claim: &PersistentVolumeClaim,
    volume: &PersistentVolume,
) -> PersistentVolumeClaimStatus {
    let spec = volume.spec.as_ref();
    PersistentVolumeClaimStatus {
        phase: Some("Bound".into()),
        access_modes: spec.and_then(|spec| spec.access_modes.clone()),
        capacity: spec.and_then(|spec| spec.capacity.clone()),
        ..claim.status.clone().unwrap_or_default()
    }
}

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|annotations| annotations.get(key))
        .map(String::as_str)
}

/// Whether the controller completed this claim's binding once (a lost volume is then Lost).
pub(crate) fn bind_completed(claim: &PersistentVolumeClaim) -> bool {
    annotation(&claim.metadata, BIND_COMPLETED).is_some()
}

/// Whether the controller (not the user) set the volume's claimRef.
pub(crate) fn volume_bound_by_controller(volume: &PersistentVolume) -> bool {
    annotation(&volume.metadata, BOUND_BY_CONTROLLER).is_some()
}

/// The provisioner that created the volume.
pub(crate) fn provisioned_by(volume: &PersistentVolume) -> Option<&str> {
    annotation(&volume.metadata, PROVISIONED_BY)
}

#[cfg(test)]
mod tests;
