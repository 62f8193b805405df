//! Which pods a ReplicaSet controls, adopts and releases, and the pods it creates.
//!
//! Mirrors kube-controller-manager's `PodControllerRefManager.ClaimPods` (see
//! [`crate::controller_ref`]) and `GetPodFromTemplate`. Only active pods (not terminal, not
//! terminating) take part, as upstream filters them with `FilterActivePods` before claiming.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource as _;
use kube::core::{Selector, SelectorExt as _};

use crate::controller_ref::{self, Claim};
use k8s_labs_podutil::{is_pod_terminal, is_pod_terminating};

/// What can go wrong turning a ReplicaSet into pods.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetShapeError {
    #[error("the ReplicaSet has no name, namespace or uid yet")]
    MissingMetadata,
    #[error("the ReplicaSet has no spec")]
    MissingSpec,
    #[error("invalid ReplicaSet selector: {0}")]
    Selector(#[from] kube::core::ParseExpressionError),
}

/// The set's label selector; an empty selector selects nothing (upstream: "a ReplicaSet with
/// a nil or empty selector should match nothing, not everything").
pub(crate) fn selector(set: &ReplicaSet) -> Result<Option<Selector>, SetShapeError> {
    let spec = set.spec.as_ref().ok_or(SetShapeError::MissingSpec)?;
    let selector = Selector::try_from(spec.selector.clone())?;
    Ok((!selector.selects_all()).then_some(selector))
}

/// Whether the set's selector selects `pod` (same namespace, labels match).
pub(crate) fn selects(set: &ReplicaSet, pod: &Pod) -> bool {
    if pod.metadata.namespace != set.metadata.namespace {
        return false;
    }
    match selector(set) {
        Ok(Some(selector)) => {
            selector.matches(pod.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))
        }
        _ => false,
    }
}

/// Not Succeeded/Failed and not being deleted (`controller.IsPodActive`).
pub(crate) fn is_active(pod: &Pod) -> bool {
    !is_pod_terminal(pod) && !is_pod_terminating(pod)
}

/// The controller owner reference a ReplicaSet puts on its pods.
pub(crate) fn owner_reference(set: &ReplicaSet) -> Result<OwnerReference, SetShapeError> {
    let (Some(name), Some(uid)) = (set.metadata.name.as_ref(), set.metadata.uid.as_ref()) else {
        return Err(SetShapeError::MissingMetadata);
    };
    Ok(OwnerReference {
        api_version: ReplicaSet::api_version(&()).into_owned(),
        kind: ReplicaSet::kind(&()).into_owned(),
        name: name.clone(),
        uid: uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Sorts the namespace's active pods into the set's own, the orphans it adopts and those it
/// lets go (see [`crate::controller_ref`]).
pub(crate) fn claim<'a>(set: &ReplicaSet, pods: &'a [Pod]) -> Claim<'a> {
    let active = pods.iter().filter(|pod| is_active(pod));
    controller_ref::claim(&set.metadata, active, |pod| selects(set, pod))
}

/// The prefix of generated pod names: `<set>-` (`getPodsPrefix`); the API server adds the
/// random 5-character suffix.
pub(crate) fn generate_name(set_name: &str) -> String {
    format!("{set_name}-")
}

/// A new pod from the set's template (`GetPodFromTemplate`): generateName `<set>-`, the
/// template's labels, annotations and finalizers, the set as controller owner.
pub(crate) fn new_pod(set: &ReplicaSet) -> Result<Pod, SetShapeError> {
    let (Some(name), Some(namespace)) = (
        set.metadata.name.as_deref(),
        set.metadata.namespace.as_deref(),
    ) else {
        return Err(SetShapeError::MissingMetadata);
    };
    let spec = set.spec.as_ref().ok_or(SetShapeError::MissingSpec)?;
    let template = spec.template.clone().unwrap_or_default();
    let template_meta = template.metadata.unwrap_or_default();
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name(name)),
            namespace: Some(namespace.to_string()),
            labels: template_meta.labels,
            annotations: template_meta.annotations,
            finalizers: template_meta.finalizers,
            owner_references: Some(vec![owner_reference(set)?]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_state::test_pods;
    use serde_json::json;

    pub(crate) fn frontend() -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "frontend", "namespace": "default", "uid": "rs-uid"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web", "tier": "front"},
                                 "annotations": {"note": "x"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
                },
            },
        }))
        .unwrap()
    }

    fn labelled(name: &str, app: &str, owner_uid: Option<&str>) -> Pod {
        let mut pod = test_pods::pod(name, "Running", true);
        pod.metadata.labels = Some([("app".to_string(), app.to_string())].into());
        pod.metadata.owner_references = owner_uid.map(|uid| {
            vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "owner".into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]
        });
        pod
    }

    #[test]
    fn new_pod_comes_from_the_template() {
        let pod = new_pod(&frontend()).unwrap();
        assert_eq!(pod.metadata.name, None);
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("frontend-"));
        assert_eq!(pod.metadata.labels.as_ref().unwrap()["tier"], "front");
        assert_eq!(pod.metadata.annotations.as_ref().unwrap()["note"], "x");
        let owner = &pod.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.api_version.as_str(), owner.kind.as_str()),
            ("apps/v1", "ReplicaSet")
        );
        assert_eq!(owner.uid, "rs-uid");
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        assert_eq!(
            pod.spec.unwrap().containers[0].image.as_deref(),
            Some("nginx")
        );
    }

    #[test]
    fn claims_own_adopts_orphans_releases_mismatches() {
        let mut terminating = labelled("terminating", "web", None);
        terminating.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        let pods = vec![
            labelled("mine", "web", Some("rs-uid")),
            labelled("orphan", "web", None),
            labelled("relabelled", "db", Some("rs-uid")),
            labelled("someone-elses", "web", Some("other-uid")),
            labelled("unrelated-orphan", "db", None),
            test_pods::pod("failed", "Failed", false),
            terminating,
        ];
        let claim = claim(&frontend(), &pods);
        let names = |pods: &[&Pod]| -> Vec<String> {
            pods.iter()
                .map(|p| p.metadata.name.clone().unwrap())
                .collect()
        };
        assert_eq!(names(&claim.owned), ["mine"]);
        assert_eq!(names(&claim.adopt), ["orphan"]);
        assert_eq!(names(&claim.release), ["relabelled"]);
    }

    #[test]
    fn a_deleted_set_adopts_nothing() {
        let mut set = frontend();
        set.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        let pods = vec![labelled("orphan", "web", None)];
        assert!(claim(&set, &pods).adopt.is_empty());
    }

    #[test]
    fn empty_selector_selects_nothing() {
        let mut set = frontend();
        set.spec.as_mut().unwrap().selector = Default::default();
        assert!(!selects(&set, &labelled("p", "web", None)));
    }
}
