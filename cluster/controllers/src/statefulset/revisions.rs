//! A StatefulSet's ControllerRevisions: the revision of its template and the one its pods
//! came from (`getStatefulSetRevisions`, `newRevision`, `ApplyRevision`, `truncateHistory` of
//! kube-controller-manager's `stateful_set_control.go` and `stateful_set_utils.go`).
//!
//! A revision's data is the strategic-merge patch `{"spec":{"template":{…,"$patch":"replace"}}}`
//! (`getPatch`), so `kubectl rollout undo` restores a template by patching the set with it.

use std::collections::BTreeSet;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client, ResourceExt as _};

use crate::controller_history::{
    create_revision, equal_revisions, new_revision, next_revision, renumber_revision,
    sort_revisions,
};
use crate::merge_patch::MergePatch;
use crate::reconcile_error::{ReconcileError, is_not_found};
use crate::statefulset::identity::{IdentityError, REVISION_LABEL, owner_reference, set_identity};

/// The revisions a pass works with.
#[derive(Debug, Clone)]
pub(crate) struct SetRevisions {
    /// The revision the set's pods are on (`status.currentRevision`, or the update revision).
    pub current: ControllerRevision,
    /// The revision of the set's template now.
    pub update: ControllerRevision,
    /// `status.collisionCount`, raised when a revision name collided.
    pub collision_count: i32,
    /// Every revision the set controls, oldest first.
    pub history: Vec<ControllerRevision>,
}

/// `getPatch`: the set's template as a patch that replaces the template wholesale.
pub(crate) fn revision_data(set: &StatefulSet) -> Result<serde_json::Value, IdentityError> {
    let spec = set.spec.as_ref().ok_or(IdentityError::MissingSpec)?;
    let mut template = serde_json::to_value(&spec.template)?;
    if let Some(template) = template.as_object_mut() {
        template.insert("$patch".into(), "replace".into());
    }
    Ok(serde_json::json!({ "spec": { "template": template } }))
}

/// `newRevision`: revision `number` of the set's template, labelled with the template's labels
/// and annotated with the set's annotations (`kubectl rollout history` shows their
/// `kubernetes.io/change-cause`).
pub(crate) fn set_revision(
    set: &StatefulSet,
    number: i64,
    collision_count: i32,
) -> Result<ControllerRevision, IdentityError> {
    let identity = set_identity(set)?;
    let spec = set.spec.as_ref().ok_or(IdentityError::MissingSpec)?;
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|meta| meta.labels.clone())
        .unwrap_or_default();
    let annotations = set.metadata.annotations.clone().unwrap_or_default();
    Ok(new_revision(
        owner_reference(set)?,
        identity.namespace,
        labels,
        annotations,
        revision_data(set)?,
        number,
        collision_count,
    ))
}

/// `ApplyRevision`: the set with the template recorded in `revision`.
pub(crate) fn apply_revision(
    set: &StatefulSet,
    revision: &ControllerRevision,
) -> Result<StatefulSet, IdentityError> {
    let mut template = revision
        .data
        .as_ref()
        .and_then(|data| data.0.pointer("/spec/template"))
        .cloned()
        .unwrap_or_default();
    if let Some(template) = template.as_object_mut() {
        template.remove("$patch");
    }
    let template: PodTemplateSpec = serde_json::from_value(template)?;
    let mut applied = set.clone();
    applied
        .spec
        .as_mut()
        .ok_or(IdentityError::MissingSpec)?
        .template = template;
    Ok(applied)
}

/// `truncateHistory`: the revisions to delete so that at most `revisionHistoryLimit` (default
/// 10) remain besides the live ones (current, update, and any a pod is on); oldest go first.
pub(crate) fn revisions_to_prune<'a>(
    set: &StatefulSet,
    revisions: &'a SetRevisions,
    pods: &[Pod],
) -> Vec<&'a ControllerRevision> {
    let limit = set
        .spec
        .as_ref()
        .and_then(|spec| spec.revision_history_limit)
        .unwrap_or(10)
        .max(0);
    let mut live: BTreeSet<&str> = pods
        .iter()
        .filter_map(|pod| pod.labels().get(REVISION_LABEL).map(String::as_str))
        .collect();
    live.insert(
        revisions
            .current
            .metadata
            .name
            .as_deref()
            .unwrap_or_default(),
    );
    live.insert(
        revisions
            .update
            .metadata
            .name
            .as_deref()
            .unwrap_or_default(),
    );
    let old: Vec<&ControllerRevision> = revisions
        .history
        .iter()
        .filter(|revision| !live.contains(revision.metadata.name.as_deref().unwrap_or_default()))
        .collect();
    let excess = old
        .len()
        .saturating_sub(usize::try_from(limit).unwrap_or(0));
    old.into_iter().take(excess).collect()
}

/// `getStatefulSetRevisions`: finds or records the revision of the set's template (a template
/// equal to an older revision's, as after `rollout undo`, makes that revision the newest
/// again) and picks the current revision.
pub(crate) async fn set_revisions(
    client: &Client,
    set: &StatefulSet,
) -> Result<SetRevisions, ReconcileError> {
    let identity = set_identity(set)?;
    let api = Api::<ControllerRevision>::namespaced(client.clone(), identity.namespace);
    let mut history = claim_revisions(&api, set).await?;
    sort_revisions(&mut history);
    let mut collision_count = set
        .status
        .as_ref()
        .and_then(|status| status.collision_count)
        .unwrap_or(0);
    let next = next_revision(&history);
    let wanted = set_revision(set, next, collision_count)?;
    let equal: Vec<ControllerRevision> = equal_revisions(&history, &wanted)
        .into_iter()
        .cloned()
        .collect();
    let update = match equal.last() {
        Some(found)
            if found.metadata.name == history.last().and_then(|r| r.metadata.name.clone()) =>
        {
            found.clone()
        }
        Some(found) => renumber_revision(&api, found, next).await?,
        None => create_revision(&api, &wanted, &mut collision_count).await?,
    };
    history.retain(|revision| revision.metadata.name != update.metadata.name);
    history.push(update.clone());
    let current_name = set
        .status
        .as_ref()
        .and_then(|status| status.current_revision.clone());
    let current = history
        .iter()
        .find(|revision| revision.metadata.name.is_some() && revision.metadata.name == current_name)
        .cloned()
        .unwrap_or_else(|| update.clone());
    Ok(SetRevisions {
        current,
        update,
        collision_count,
        history,
    })
}

/// The revisions controlled by the set, after adopting the orphans its selector matches (left
/// by `kubectl delete sts --cascade=orphan`), as `ClaimControllerRevisions` does.
async fn claim_revisions(
    api: &Api<ControllerRevision>,
    set: &StatefulSet,
) -> Result<Vec<ControllerRevision>, ReconcileError> {
    let spec = set.spec.as_ref().ok_or(IdentityError::MissingSpec)?;
    let selector = kube::core::Selector::try_from(spec.selector.clone())
        .context("invalid StatefulSet selector")?;
    let listed = api
        .list(&ListParams::default().labels_from(&selector))
        .await
        .context("listing ControllerRevisions")?
        .items;
    let owner = owner_reference(set)?;
    let mut owned = Vec::new();
    for revision in listed {
        let controller = revision
            .owner_references()
            .iter()
            .find(|owner| owner.controller == Some(true))
            .cloned();
        match controller {
            Some(controller) if controller.uid == owner.uid => owned.push(revision),
            Some(_) => {}
            None if set.metadata.deletion_timestamp.is_some() => {}
            None => {
                let mut owners = revision.owner_references().to_vec();
                owners.push(owner.clone());
                let patch = serde_json::json!({"metadata": {
                    "resourceVersion": revision.metadata.resource_version,
                    "ownerReferences": owners,
                }});
                match api.merge_patch(&revision.name_any(), &patch).await {
                    Ok(adopted) => owned.push(adopted),
                    Err(error) if is_not_found(&error) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
    }
    Ok(owned)
}

/// Deletes the revisions [`revisions_to_prune`] names.
pub(crate) async fn truncate_history(
    client: &Client,
    set: &StatefulSet,
    revisions: &SetRevisions,
    pods: &[Pod],
) -> Result<(), ReconcileError> {
    let api = Api::<ControllerRevision>::namespaced(client.clone(), set_identity(set)?.namespace);
    for revision in revisions_to_prune(set, revisions, pods) {
        match api
            .delete(&revision.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// `newVersionedStatefulSetPod`'s choice: whether the pod of `ordinal`, created now, comes from
/// the current revision (true) or the update revision.
pub(crate) fn uses_current_revision(set: &StatefulSet, ordinal: i32) -> bool {
    let Some(spec) = set.spec.as_ref() else {
        return false;
    };
    let start = spec
        .ordinals
        .as_ref()
        .and_then(|ordinals| ordinals.start)
        .unwrap_or(0);
    let strategy = spec.update_strategy.as_ref();
    let rolling = strategy
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    match strategy.and_then(|s| s.rolling_update.as_ref()) {
        // Pods below the partition are kept on (and recreated from) the current revision.
        Some(rolling_update) => {
            ordinal < start.saturating_add(rolling_update.partition.unwrap_or(0))
        }
        // Without rollingUpdate, the pods the current revision still has stay on it.
        None => rolling && ordinal < start.saturating_add(current_replicas(set)),
    }
}

fn current_replicas(set: &StatefulSet) -> i32 {
    set.status
        .as_ref()
        .and_then(|status| status.current_replicas)
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "revisions_tests.rs"]
mod tests;
