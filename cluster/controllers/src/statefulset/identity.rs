//! The stable identity of a StatefulSet's pods: names, labels, hostnames, claims, revision.
//!
//! Pure functions mirroring kube-controller-manager's `stateful_set_utils.go`
//! (`newStatefulSetPod`, `getPersistentVolumeClaims`, `updateStorage`), so pods look the same
//! as on a real cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource as _;

use crate::reconcile_error::ReconcileError;

/// Label with the pod's own name, so a Service can select exactly one StatefulSet pod.
pub(crate) const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Label with the pod's ordinal.
pub(crate) const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// Label with the name of the revision (template version) the pod was created from.
pub(crate) const REVISION_LABEL: &str = "controller-revision-hash";

/// What can go wrong turning a StatefulSet into pods.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdentityError {
    #[error("the StatefulSet has no name, namespace or uid yet")]
    MissingMetadata,
    #[error("the StatefulSet has no spec")]
    MissingSpec,
    #[error("could not serialize the pod template: {0}")]
    Template(#[from] serde_json::Error),
}

/// Name, namespace and uid: what every derived object needs.
pub(crate) struct SetIdentity<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
}

pub(crate) fn set_identity(set: &StatefulSet) -> Result<SetIdentity<'_>, IdentityError> {
    match (
        set.metadata.name.as_deref(),
        set.metadata.namespace.as_deref(),
        set.metadata.uid.as_deref(),
    ) {
        (Some(name), Some(namespace), Some(uid)) => Ok(SetIdentity {
            name,
            namespace,
            uid,
        }),
        _ => Err(IdentityError::MissingMetadata),
    }
}

/// `<set>-<ordinal>`.
pub(crate) fn pod_name(set_name: &str, ordinal: i32) -> String {
    format!("{set_name}-{ordinal}")
}

/// The ordinal of a pod named `<set>-<ordinal>`, or `None` for any other name.
pub(crate) fn parse_ordinal(set_name: &str, pod_name: &str) -> Option<i32> {
    let suffix = pod_name.strip_prefix(set_name)?.strip_prefix('-')?;
    if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    suffix.parse().ok()
}

/// The controller owner reference a StatefulSet puts on its pods.
pub(crate) fn owner_reference(set: &StatefulSet) -> Result<OwnerReference, IdentityError> {
    let identity = set_identity(set)?;
    Ok(OwnerReference {
        api_version: StatefulSet::api_version(&()).into_owned(),
        kind: StatefulSet::kind(&()).into_owned(),
        name: identity.name.to_string(),
        uid: identity.uid.to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// `<template>-<set>-<ordinal>`: the claim of one volumeClaimTemplate for one pod.
pub(crate) fn claim_name(template_name: &str, set_name: &str, ordinal: i32) -> String {
    format!("{template_name}-{set_name}-{ordinal}")
}

/// The PVCs pod `ordinal` needs, from the volumeClaimTemplates: labels are the template's
/// plus the set's selector matchLabels; the owner is set per the retention policy
/// (`whenDeleted: Delete` makes the StatefulSet the owner, so deleting it deletes them).
pub(crate) fn claims_for(
    set: &StatefulSet,
    ordinal: i32,
) -> Result<Vec<PersistentVolumeClaim>, IdentityError> {
    let identity = set_identity(set)?;
    let spec = set.spec.as_ref().ok_or(IdentityError::MissingSpec)?;
    let delete_with_set = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|policy| policy.when_deleted.as_deref())
        == Some("Delete");
    let owner = if delete_with_set {
        Some(vec![owner_reference(set)?])
    } else {
        None
    };
    let match_labels = spec.selector.match_labels.clone().unwrap_or_default();
    let mut claims = Vec::new();
    for template in spec.volume_claim_templates.iter().flatten() {
        let template_name = template.metadata.name.clone().unwrap_or_default();
        let mut labels = template.metadata.labels.clone().unwrap_or_default();
        labels.extend(match_labels.clone());
        claims.push(PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(claim_name(&template_name, identity.name, ordinal)),
                namespace: Some(identity.namespace.to_string()),
                labels: Some(labels),
                annotations: template.metadata.annotations.clone(),
                owner_references: owner.clone(),
                ..ObjectMeta::default()
            },
            spec: template.spec.clone(),
            status: None,
        });
    }
    Ok(claims)
}

/// The pod for `ordinal` (`newStatefulSetPod`): template + identity (name, hostname, subdomain, labels, owner)
/// + storage (claim volumes replacing template volumes of the same name).
pub(crate) fn new_pod(
    set: &StatefulSet,
    ordinal: i32,
    revision: &str,
) -> Result<Pod, IdentityError> {
    let identity = set_identity(set)?;
    let spec = set.spec.as_ref().ok_or(IdentityError::MissingSpec)?;
    let template: &PodTemplateSpec = &spec.template;
    let name = pod_name(identity.name, ordinal);

    let template_meta = template.metadata.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = template_meta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_LABEL.into(), revision.to_string());

    let mut pod_spec = template.spec.clone().unwrap_or_default();
    pod_spec.hostname = Some(name.clone());
    pod_spec.subdomain = spec
        .service_name
        .clone()
        .filter(|service_name| !service_name.is_empty());

    let mut volumes: Vec<Volume> = pod_spec.volumes.take().unwrap_or_default();
    for claim_template in spec.volume_claim_templates.iter().flatten() {
        let Some(template_name) = claim_template.metadata.name.as_deref() else {
            continue;
        };
        volumes.retain(|volume| volume.name != template_name);
        volumes.push(Volume {
            name: template_name.to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(template_name, identity.name, ordinal),
                read_only: None,
            }),
            ..Volume::default()
        });
    }
    pod_spec.volumes = (!volumes.is_empty()).then_some(volumes);

    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(identity.namespace.to_string()),
            labels: Some(labels),
            annotations: template_meta.annotations,
            // `GetPodFromTemplate` copies the template's finalizers too.
            finalizers: template_meta.finalizers,
            owner_references: Some(vec![owner_reference(set)?]),
            ..ObjectMeta::default()
        },
        spec: Some(pod_spec),
        status: None,
    })
}

impl From<IdentityError> for ReconcileError {
    fn from(error: IdentityError) -> Self {
        anyhow::Error::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn web() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "set-uid"},
            "spec": {
                "serviceName": "nginx",
                "replicas": 3,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {
                        "containers": [{"name": "nginx", "image": "nginx",
                                        "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]}],
                        "volumes": [{"name": "www", "emptyDir": {}}],
                    },
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": "www", "labels": {"tier": "storage"},
                                 "annotations": {"volume.alpha.kubernetes.io/storage-class": "anything"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }],
            },
        }))
        .unwrap()
    }

    #[test]
    fn ordinals_parse_only_from_own_names() {
        assert_eq!(parse_ordinal("web", "web-0"), Some(0));
        assert_eq!(parse_ordinal("web", "web-12"), Some(12));
        assert_eq!(parse_ordinal("web", "web-x"), None);
        assert_eq!(parse_ordinal("web", "webby-1"), None);
        assert_eq!(parse_ordinal("web", "web-"), None);
        assert_eq!(parse_ordinal("web", "web--1"), None);
    }

    #[test]
    fn pod_has_stable_identity() {
        let pod = new_pod(&web(), 1, "web-abc").unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web-1"));
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(labels["app"], "nginx");
        assert_eq!(labels[POD_NAME_LABEL], "web-1");
        assert_eq!(labels[POD_INDEX_LABEL], "1");
        assert_eq!(labels[REVISION_LABEL], "web-abc");
        let owner = &pod.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.api_version.as_str(),
                owner.uid.as_str()
            ),
            ("StatefulSet", "apps/v1", "set-uid")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-1"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let volumes = spec.volumes.unwrap();
        assert_eq!(
            volumes.len(),
            1,
            "the claim replaces the template's emptyDir"
        );
        assert_eq!(
            volumes[0]
                .persistent_volume_claim
                .as_ref()
                .unwrap()
                .claim_name,
            "www-web-1"
        );
    }

    #[test]
    fn claims_follow_templates_and_retention() {
        let claims = claims_for(&web(), 2).unwrap();
        assert_eq!(claims.len(), 1);
        let claim = &claims[0];
        assert_eq!(claim.metadata.name.as_deref(), Some("www-web-2"));
        let labels = claim.metadata.labels.clone().unwrap();
        assert_eq!(labels["app"], "nginx");
        assert_eq!(labels["tier"], "storage");
        assert!(
            claim.metadata.owner_references.is_none(),
            "Retain by default"
        );
        assert_eq!(
            claim.metadata.annotations.as_ref().unwrap()["volume.alpha.kubernetes.io/storage-class"],
            "anything"
        );

        let mut deleting = web();
        deleting
            .spec
            .as_mut()
            .unwrap()
            .persistent_volume_claim_retention_policy =
            serde_json::from_value(json!({"whenDeleted": "Delete"})).unwrap();
        let claims = claims_for(&deleting, 0).unwrap();
        assert_eq!(
            claims[0].metadata.owner_references.as_ref().unwrap()[0].name,
            "web"
        );
    }
}
