//! `persistentVolumeClaim` pod volumes, as the kubelet's volume manager resolves them: the
//! claim (in the pod's namespace) must be Bound to a PersistentVolume, and that volume's
//! `hostPath` (or `local`) directory is what the containers get bind-mounted. The directory is
//! outside the pod's sandbox, so it outlives the pod: a pod recreated with the same claim sees
//! the same data (the point of a StatefulSet's `volumeClaimTemplates`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::{Api, Client};

/// A claimed volume's host directory, ready for the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedVolume {
    pub path: PathBuf,
    /// The directory is created when missing (`hostPath` type `DirectoryOrCreate` or unset).
    pub create: bool,
    /// `persistentVolumeClaim.readOnly`: every mount of it is read-only.
    pub read_only: bool,
}

/// Claimed volumes by pod volume name.
pub type ClaimedVolumes = BTreeMap<String, ClaimedVolume>;

/// Why some claimed volumes of a pod cannot be mounted (yet). Its text is the kubelet's
/// `FailedMount` event message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmountedVolumes {
    /// Pod volume names that could not be resolved.
    pub volumes: Vec<String>,
    /// One reason per volume, same order.
    pub reasons: Vec<String>,
}

impl std::fmt::Display for UnmountedVolumes {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = self.volumes.join(" ");
        write!(
            formatter,
            "Unable to attach or mount volumes: unmounted volumes=[{names}], unattached \
             volumes=[{names}]: {}",
            self.reasons.join("; ")
        )
    }
}

/// Resolves every `persistentVolumeClaim` volume of `pod` through the API. Pods without such
/// volumes need no API call.
pub async fn resolve_claims(
    client: &Client,
    pod: &Pod,
) -> Result<ClaimedVolumes, UnmountedVolumes> {
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let mut resolved = ClaimedVolumes::new();
    let mut failed = UnmountedVolumes {
        volumes: Vec::new(),
        reasons: Vec::new(),
    };
    let volumes = pod
        .spec
        .iter()
        .flat_map(|spec| spec.volumes.iter().flatten());
    for volume in volumes {
        let Some(source) = &volume.persistent_volume_claim else {
            continue;
        };
        let claim = &source.claim_name;
        match resolve_claim(client, &namespace, claim).await {
            Ok((path, create)) => {
                resolved.insert(
                    volume.name.clone(),
                    ClaimedVolume {
                        path,
                        create,
                        read_only: source.read_only.unwrap_or(false),
                    },
                );
            }
            Err(reason) => {
                failed.volumes.push(volume.name.clone());
                failed.reasons.push(format!(
                    "error processing PVC {namespace}/{claim}: {reason}"
                ));
            }
        }
    }
    if failed.volumes.is_empty() {
        Ok(resolved)
    } else {
        Err(failed)
    }
}

async fn resolve_claim(
    client: &Client,
    namespace: &str,
    claim_name: &str,
) -> Result<(PathBuf, bool), String> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let claim = match claims.get_opt(claim_name).await {
        Ok(Some(claim)) => claim,
        Ok(None) => {
            return Err(format!(
                "failed to fetch PVC from API server: persistentvolumeclaim \"{claim_name}\" \
                 not found"
            ));
        }
        Err(error) => return Err(format!("failed to fetch PVC from API server: {error}")),
    };
    let volume_name = bound_volume(&claim)?;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let volume = match volumes.get_opt(&volume_name).await {
        Ok(Some(volume)) => volume,
        Ok(None) => {
            return Err(format!(
                "failed to fetch PV {volume_name:?} from API server: persistentvolume \
                 \"{volume_name}\" not found"
            ));
        }
        Err(error) => {
            return Err(format!(
                "failed to fetch PV {volume_name:?} from API server: {error}"
            ));
        }
    };
    check_claim_ref(&volume, &claim)?;
    host_directory(&volume)
}

/// The PersistentVolume a claim is bound to: `spec.volumeName` set and phase `Bound`.
pub fn bound_volume(claim: &PersistentVolumeClaim) -> Result<String, String> {
    let phase = claim
        .status
        .as_ref()
        .and_then(|status| status.phase.clone())
        .unwrap_or_default();
    let volume_name = claim
        .spec
        .as_ref()
        .and_then(|spec| spec.volume_name.clone())
        .unwrap_or_default();
    if phase != "Bound" || volume_name.is_empty() {
        return Err(format!(
            "PVC has non-bound phase ({phase:?}) or empty pvc.Spec.VolumeName ({volume_name:?})"
        ));
    }
    Ok(volume_name)
}

/// A volume bound to another claim (a stale `volumeName`) must not be mounted.
fn check_claim_ref(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> Result<(), String> {
    let claim_ref = volume
        .spec
        .as_ref()
        .and_then(|spec| spec.claim_ref.as_ref());
    let (Some(claim_ref), Some(claim_uid)) = (claim_ref, claim.metadata.uid.as_ref()) else {
        return Ok(());
    };
    match &claim_ref.uid {
        Some(uid) if uid != claim_uid => Err(format!(
            "found PV {:?} but its claimRef is another claim (uid {uid})",
            volume.metadata.name.clone().unwrap_or_default()
        )),
        _ => Ok(()),
    }
}

/// The host directory of a PersistentVolume this node can mount: `hostPath` (created when its
/// type is `DirectoryOrCreate` or unset) or `local` (must exist).
pub fn host_directory(volume: &PersistentVolume) -> Result<(PathBuf, bool), String> {
    let name = volume.metadata.name.clone().unwrap_or_default();
    let spec = volume.spec.as_ref();
    if let Some(host_path) = spec.and_then(|spec| spec.host_path.as_ref()) {
        let create = matches!(
            host_path.type_.as_deref(),
            None | Some("" | "DirectoryOrCreate")
        );
        return Ok((PathBuf::from(&host_path.path), create));
    }
    if let Some(local) = spec.and_then(|spec| spec.local.as_ref()) {
        return Ok((PathBuf::from(&local.path), false));
    }
    Err(format!(
        "PV {name:?} has no hostPath or local source (the only kinds this node can mount)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(phase: Option<&str>, volume_name: Option<&str>) -> PersistentVolumeClaim {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "www-nginx-0", "uid": "claim-uid"},
            "spec": {"volumeName": volume_name},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    fn volume(source: serde_json::Value) -> PersistentVolume {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "pvc-1"},
            "spec": source,
        }))
        .unwrap()
    }

    #[test]
    fn only_a_bound_claim_with_a_volume_name_is_mountable() {
        assert_eq!(
            bound_volume(&claim(Some("Bound"), Some("pvc-1"))),
            Ok("pvc-1".into())
        );
        let pending = bound_volume(&claim(Some("Pending"), None)).unwrap_err();
        assert!(
            pending.contains("non-bound phase (\"Pending\")"),
            "{pending}"
        );
        assert!(bound_volume(&claim(Some("Bound"), None)).is_err());
        assert!(bound_volume(&claim(None, Some("pvc-1"))).is_err());
    }

    #[test]
    fn host_path_directories_are_created_unless_their_type_says_otherwise() {
        let provisioned = volume(serde_json::json!(
            {"hostPath": {"path": "/v/pvc-1", "type": "DirectoryOrCreate"}}
        ));
        assert_eq!(host_directory(&provisioned), Ok(("/v/pvc-1".into(), true)));
        let untyped = volume(serde_json::json!({"hostPath": {"path": "/v/a"}}));
        assert_eq!(host_directory(&untyped), Ok(("/v/a".into(), true)));
        let existing = volume(serde_json::json!(
            {"hostPath": {"path": "/v/b", "type": "Directory"}}
        ));
        assert_eq!(host_directory(&existing), Ok(("/v/b".into(), false)));
        let local = volume(serde_json::json!({"local": {"path": "/mnt/disk"}}));
        assert_eq!(host_directory(&local), Ok(("/mnt/disk".into(), false)));
        assert!(
            host_directory(&volume(
                serde_json::json!({"nfs": {"server": "s", "path": "/"}})
            ))
            .is_err()
        );
    }

    #[test]
    fn a_volume_bound_to_another_claim_is_refused() {
        let bound = claim(Some("Bound"), Some("pvc-1"));
        let ours = volume(serde_json::json!({"claimRef": {"uid": "claim-uid"}}));
        assert!(check_claim_ref(&ours, &bound).is_ok());
        let theirs = volume(serde_json::json!({"claimRef": {"uid": "other"}}));
        assert!(check_claim_ref(&theirs, &bound).is_err());
    }

    #[test]
    fn the_event_message_names_the_unmounted_volumes_like_the_kubelet() {
        let failed = UnmountedVolumes {
            volumes: vec!["www".into()],
            reasons: vec!["error processing PVC lab/www-nginx-0: not found".into()],
        };
        assert_eq!(
            failed.to_string(),
            "Unable to attach or mount volumes: unmounted volumes=[www], unattached \
             volumes=[www]: error processing PVC lab/www-nginx-0: not found"
        );
    }
}
