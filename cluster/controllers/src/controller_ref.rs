//! ControllerRef semantics, as kube-controller-manager's `controller_ref_manager.go`
//! (`BaseControllerRefManager.ClaimObject`, `AdoptPod`, `ReleasePod`) applies them to the
//! pods of a ReplicaSet or StatefulSet:
//! - a pod whose controller reference names the owner (by uid) is the owner's while it
//!   matches; one that no longer matches is released, unless the owner is being deleted;
//! - a pod with no controller whose labels match is adopted, unless the owner or the pod is
//!   being deleted (so orphans left by `--cascade=orphan` go to the next owner);
//! - a pod controlled by someone else is left alone.
//!
//! The same rules apply to the ReplicaSets of a Deployment (`ClaimReplicaSets`), so every
//! function here takes any kind of object; the default is a pod.
//!
//! Adoption and release write the pod's owner references with a merge patch guarded by the
//! pod's resourceVersion, so a pod two owners race for ends up with one controller: the
//! second write conflicts and that owner sees the first one's reference on its next pass.

use std::fmt::Debug;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::serde::de::DeserializeOwned;
use kube::{Api, Resource, ResourceExt as _};

use crate::merge_patch::MergePatch;
use crate::reconcile_error::{ReconcileError, is_not_found};

/// The controller owner reference of a pod (or other object), if any.
pub(crate) fn controller_of<K: Resource>(pod: &K) -> Option<&OwnerReference> {
    pod.meta()
        .owner_references
        .iter()
        .flatten()
        .find(|owner| owner.controller == Some(true))
}

/// The outcome of claiming: the owner's pods, orphans to adopt, owned pods to release.
#[derive(Debug)]
pub(crate) struct Claim<'a, K = Pod> {
    /// Pods controlled by the owner that match.
    pub owned: Vec<&'a K>,
    /// Orphans that match: the owner's once adopted.
    pub adopt: Vec<&'a K>,
    /// Pods controlled by the owner that no longer match.
    pub release: Vec<&'a K>,
}

/// Sorts `pods` for the owner with metadata `owner` (`ClaimObject` for each pod); `matches`
/// says whether a pod is one the owner wants (its selector, and for a StatefulSet its name).
pub(crate) fn claim<'a, K: Resource>(
    owner: &ObjectMeta,
    pods: impl IntoIterator<Item = &'a K>,
    matches: impl Fn(&K) -> bool,
) -> Claim<'a, K> {
    let uid = owner.uid.as_deref().unwrap_or_default();
    let deleting = owner.deletion_timestamp.is_some();
    let mut claim = Claim {
        owned: Vec::new(),
        adopt: Vec::new(),
        release: Vec::new(),
    };
    for pod in pods {
        match controller_of(pod) {
            Some(controller) if controller.uid != uid => {}
            Some(_) if matches(pod) => claim.owned.push(pod),
            // Releasing is an action; an owner being deleted takes none.
            Some(_) if deleting => {}
            Some(_) => claim.release.push(pod),
            None if deleting
                || pod.meta().deletion_timestamp.is_some()
                || pod.meta().namespace != owner.namespace
                || !matches(pod) => {}
            None => claim.adopt.push(pod),
        }
    }
    claim
}

/// The owner references of `pod` with `owner` added as its controller (adoption).
pub(crate) fn with_owner<K: Resource>(pod: &K, owner: OwnerReference) -> Vec<OwnerReference> {
    let mut owners = pod.meta().owner_references.clone().unwrap_or_default();
    owners.retain(|existing| existing.uid != owner.uid);
    owners.push(owner);
    owners
}

/// The owner references of `pod` without the one to `owner_uid` (release).
pub(crate) fn without_owner<K: Resource>(pod: &K, owner_uid: &str) -> Vec<OwnerReference> {
    let mut owners = pod.meta().owner_references.clone().unwrap_or_default();
    owners.retain(|existing| existing.uid != owner_uid);
    owners
}

/// Writes a pod's owner references, guarded by its resourceVersion (so an adoption never
/// overwrites a concurrent change). False if the pod is gone.
pub(crate) async fn set_owners<K>(
    pods_api: &Api<K>,
    pod: &K,
    owners: Vec<OwnerReference>,
) -> Result<bool, ReconcileError>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync,
{
    // An empty list is left out, as Kubernetes' own objects show none.
    let owners = (!owners.is_empty()).then_some(owners);
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": pod.meta().resource_version,
            "ownerReferences": owners,
        }
    });
    match pods_api.merge_patch(&pod.name_any(), &patch).await {
        Ok(_) => Ok(true),
        Err(error) if is_not_found(&error) => Ok(false),
        Err(error) => Err(anyhow::Error::from(error)
            .context(format!(
                "changing the owner references of {}",
                pod.name_any()
            ))
            .into()),
    }
}

/// Adopts `claim.adopt` and releases `claim.release`; returns the owner's pods: those it
/// owned and those it adopted.
pub(crate) async fn apply_claim<'a, K>(
    pods_api: &Api<K>,
    owner: OwnerReference,
    claim: Claim<'a, K>,
) -> Result<Vec<&'a K>, ReconcileError>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync,
{
    for &pod in &claim.release {
        set_owners(pods_api, pod, without_owner(pod, &owner.uid)).await?;
    }
    let mut pods = claim.owned;
    for pod in claim.adopt {
        tracing::debug!(pod = %pod.name_any(), owner = %owner.name, kind = %owner.kind, "adopting an orphan pod");
        if set_owners(pods_api, pod, with_owner(pod, owner.clone())).await? {
            pods.push(pod);
        }
    }
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn owner(deleting: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("mine".into()),
            deletion_timestamp: deleting.then_some(Time(jiff::Timestamp::UNIX_EPOCH)),
            ..ObjectMeta::default()
        }
    }

    fn pod(name: &str, app: &str, controller: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {
                "name": name, "namespace": "default", "uid": name,
                "labels": {"app": app},
                "ownerReferences": controller.map(|uid| vec![json!({
                    "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "x",
                    "uid": uid, "controller": true})]),
            },
        }))
        .unwrap()
    }

    fn names(pods: &[&Pod]) -> Vec<String> {
        pods.iter().map(|p| p.name_any()).collect()
    }

    fn web(pod: &Pod) -> bool {
        pod.labels().get("app").map(String::as_str) == Some("web")
    }

    #[test]
    fn claims_own_adopt_and_release() {
        let mut terminating = pod("terminating-orphan", "web", None);
        terminating.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        let mut elsewhere = pod("elsewhere", "web", None);
        elsewhere.metadata.namespace = Some("other".into());
        let pods = [
            pod("mine", "web", Some("mine")),
            pod("orphan", "web", None),
            pod("relabelled", "db", Some("mine")),
            pod("someone-elses", "web", Some("theirs")),
            pod("unrelated", "db", None),
            terminating,
            elsewhere,
        ];
        let claim = claim(&owner(false), &pods, web);
        assert_eq!(names(&claim.owned), ["mine"]);
        assert_eq!(names(&claim.adopt), ["orphan"]);
        assert_eq!(names(&claim.release), ["relabelled"]);
    }

    #[test]
    fn an_owner_being_deleted_keeps_its_pods_and_takes_no_action() {
        let pods = [
            pod("mine", "web", Some("mine")),
            pod("orphan", "web", None),
            pod("relabelled", "db", Some("mine")),
        ];
        let claim = claim(&owner(true), &pods, web);
        assert_eq!(names(&claim.owned), ["mine"]);
        assert!(claim.adopt.is_empty() && claim.release.is_empty());
    }

    #[test]
    fn owner_references_are_added_and_removed_by_uid() {
        let orphan = pod("orphan", "web", None);
        let reference = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "StatefulSet".into(),
            name: "web".into(),
            uid: "mine".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let adopted = with_owner(&orphan, reference);
        assert_eq!(adopted.len(), 1);
        let mut owned = orphan.clone();
        owned.metadata.owner_references = Some(adopted);
        assert!(without_owner(&owned, "mine").is_empty());
    }
}
