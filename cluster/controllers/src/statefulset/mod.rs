//! The StatefulSet controller: stable, ordered pods with stable storage.
//!
//! Watch-driven through kube-runtime: a StatefulSet is reconciled when it changes, when one of
//! its pods (found by controller owner reference) changes, so "create web-1 once web-0 is
//! Ready" happens on web-0's status update, without polling, and when an orphan pod its
//! selector matches appears. Orphans named after the set (left by `kubectl delete sts
//! --cascade=orphan`) are adopted, as upstream's `ControllerRefManager` adopts them, so a
//! set created again takes over its predecessor's pods. A set being deleted creates and
//! deletes nothing; it only reports its status.
//!
//! Each template is recorded as a ControllerRevision (`revisions`): pods carry the name of
//! the revision they came from, those below a RollingUpdate's partition are created from the
//! current revision, and the status reports both revisions until a roll-out completes. Pod
//! and claim creations and deletions are recorded as Events on the set, as upstream's
//! `StatefulPodControl` records them.
//!
//! Pods come from the controller manager's shared pod informer: its events trigger the
//! passes and each pass reads the pods from its cache, then the set from the API server (see
//! [`crate::read_after_list`]). Upstream's StatefulSet controller keeps no expectations: its
//! pods have fixed names, so a pass on a cache that has not seen the previous pass's creation
//! gets AlreadyExists and fails, to be retried. Here, where every pass writes the status and
//! so triggers the next pass at once, that would be the common case, so the pods a pass
//! creates and deletes are expected as the ReplicaSet controller's are
//! ([`crate::expectations`]): a pass creates or deletes only once the cache shows the
//! previous pass's writes, else it only reports the status.

mod identity;
mod plan;
mod revisions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, PostParams};
use kube::core::{Selector, SelectorExt as _};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource as _, ResourceExt as _};

use crate::controller_loop::{SharedPods, pods_in};
use crate::controller_ref::{self, apply_claim, controller_of};
use crate::events::{self, EventType, Note};
use crate::expectations::{EXPECTATIONS_TTL, Expectations};
use crate::merge_patch::MergePatch;
use crate::pod_owner::{PodOwnerContext as Context, run_pod_owner};
use crate::read_after_list::read_after_list;
use crate::reconcile_error::{ReconcileError, is_already_exists, is_not_found};
use identity::{claims_for, new_pod, owner_reference, parse_ordinal, set_identity};
use plan::{RevisionNames, SetAction, plan, ready_since, status};
use revisions::{
    SetRevisions, apply_revision, set_revisions, truncate_history, uses_current_revision,
};

/// The component events name as their source, as kube-controller-manager's.
const COMPONENT: &str = "statefulset-controller";

/// Runs the controller until `shutdown` resolves, once the pod cache is filled.
pub(crate) async fn run(
    client: Client,
    pods: SharedPods,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    run_pod_owner(
        client,
        pods,
        shutdown,
        "statefulset controller",
        sets_of_pod,
        reconcile,
    )
    .await;
}

/// The sets a pod change concerns: its controller if that is a StatefulSet, otherwise (an
/// orphan) every set in its namespace whose selector matches it, which may adopt it
/// (`getStatefulSetsForPod`).
fn sets_of_pod(sets: &Store<StatefulSet>, pod: &Pod) -> Vec<ObjectRef<StatefulSet>> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    match controller_of(pod) {
        Some(owner) if owner.kind == "StatefulSet" && owner.api_version.starts_with("apps/") => {
            vec![ObjectRef::new(&owner.name).within(namespace)]
        }
        Some(_) => Vec::new(),
        None => sets
            .state()
            .into_iter()
            .filter(|set| set.metadata.namespace == pod.metadata.namespace)
            .filter(|set| selector_of(set).is_ok_and(|selector| selects(&selector, pod)))
            .map(|set| ObjectRef::from_obj(set.as_ref()))
            .collect(),
    }
}

async fn reconcile(cached: Arc<StatefulSet>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let identity = set_identity(&cached)?;
    let pods_api = Api::<Pod>::namespaced(ctx.client.clone(), identity.namespace);
    let sets_api = Api::<StatefulSet>::namespaced(ctx.client.clone(), identity.namespace);
    let key = cached.metadata.uid.clone().unwrap_or_default();
    // Expectations first, then the cache (see the ReplicaSet controller), then the set.
    let needs_sync = ctx.expectations.satisfied(&key);
    // Every pod of the namespace: owned pods that no longer match are released too. The
    // pods are then made from the set as it is after they were taken (see
    // `read_after_list`).
    let listed = pods_in(&ctx.pods, identity.namespace);
    let Some(set) = read_after_list(&sets_api, &cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    if set.metadata.uid.as_deref() != Some(key.as_str()) {
        // Deleted and created again under the same name: the new set's own event comes.
        return Ok(Action::await_change());
    }
    let pods = claim_pods(&pods_api, &set, &listed).await?;
    let revisions = set_revisions(&ctx.client, &set).await?;
    let versions = Versions::of(&set, &revisions)?;
    // A set being deleted only reports its status (`updateStatefulSet`): the garbage
    // collector deletes or orphans its pods.
    if set.metadata.deletion_timestamp.is_none() && needs_sync {
        let pods: Vec<Pod> = pods.into_iter().cloned().collect();
        let actions = plan(&set, &pods, &versions.update_name);
        expect(&ctx.expectations, &key, identity.namespace, &actions);
        let mut actions = actions.into_iter();
        while let Some(action) = actions.next() {
            let attempted = action.clone();
            if let Err(error) = act(&ctx.client, &versions, &pods, action).await {
                // No event will come for this step (unless it got as far as the API
                // server, which an observation of a pod not expected changes nothing for)
                // nor for the steps not taken.
                for action in std::iter::once(attempted).chain(actions) {
                    unexpect(&ctx.expectations, &key, identity.namespace, &action);
                }
                return Err(error);
            }
        }
    }

    // The pods as the cache holds them now (the writes above show in a later pass).
    let pods = owned_by(&set, list_pods(&set, &ctx.pods)?);
    let now = jiff::Timestamp::now().as_second();
    let names = RevisionNames {
        current: &versions.current_name,
        update: &versions.update_name,
        collision_count: revisions.collision_count,
    };
    let new_status = status(&set, &pods, names, now);
    if set.status.as_ref() != Some(&new_status) {
        let patch = serde_json::json!({ "status": new_status });
        sets_api
            .merge_patch_status(&set.name_any(), &patch)
            .await
            .context("updating the StatefulSet status")?;
    }
    truncate_history(&ctx.client, &set, &revisions, &pods).await?;
    if !needs_sync {
        // Should an event be lost, act again once the expectations expire.
        return Ok(Action::requeue(EXPECTATIONS_TTL));
    }
    Ok(availability_requeue(&set, &pods, now))
}

/// The pod a step deletes, if it deletes one.
fn deleted_by(action: &SetAction) -> Option<&str> {
    match action {
        SetAction::Create(_) => None,
        SetAction::Delete { name, .. } | SetAction::Recreate { name, .. } => Some(name),
    }
}

/// Expects the pods the plan creates and deletes (by `namespace/name`).
fn expect(expectations: &Expectations, key: &str, namespace: &str, actions: &[SetAction]) {
    let creations = actions
        .iter()
        .filter(|action| matches!(action, SetAction::Create(_)))
        .count();
    let deletions = actions
        .iter()
        .filter_map(deleted_by)
        .map(|name| format!("{namespace}/{name}"))
        .collect();
    expectations.expect(key, creations, deletions);
}

/// Takes back the expectation of a step that failed or was not taken.
fn unexpect(expectations: &Expectations, key: &str, namespace: &str, action: &SetAction) {
    match deleted_by(action) {
        Some(name) => expectations.deletion_observed(key, &format!("{namespace}/{name}")),
        None => expectations.creation_observed(key),
    }
}

/// The set's label selector.
fn selector_of(set: &StatefulSet) -> Result<Selector, ReconcileError> {
    let spec = set.spec.as_ref().context("StatefulSet without spec")?;
    Ok(Selector::try_from(spec.selector.clone()).context("invalid StatefulSet selector")?)
}

fn selects(selector: &Selector, pod: &Pod) -> bool {
    selector.matches(pod.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))
}

/// `getPodsForStatefulSet`: the pods the set controls, after adopting the orphans that match
/// its selector and carry its name (`isMemberOf`), and releasing its pods that no longer do.
async fn claim_pods<'a>(
    pods_api: &Api<Pod>,
    set: &StatefulSet,
    pods: &'a [Pod],
) -> Result<Vec<&'a Pod>, ReconcileError> {
    let selector = selector_of(set)?;
    let name = set_identity(set)?.name;
    let claim = controller_ref::claim(&set.metadata, pods, |pod| {
        selects(&selector, pod)
            && pod
                .metadata
                .name
                .as_deref()
                .is_some_and(|pod_name| parse_ordinal(name, pod_name).is_some())
    });
    apply_claim(pods_api, owner_reference(set)?, claim).await
}

/// The set as of its current and its update revision (`ApplyRevision`): pods are made from
/// one or the other.
struct Versions {
    current_set: StatefulSet,
    update_set: StatefulSet,
    current_name: String,
    update_name: String,
}

impl Versions {
    fn of(set: &StatefulSet, revisions: &SetRevisions) -> Result<Versions, ReconcileError> {
        Ok(Versions {
            current_set: apply_revision(set, &revisions.current)?,
            update_set: apply_revision(set, &revisions.update)?,
            current_name: revisions.current.name_any(),
            update_name: revisions.update.name_any(),
        })
    }

    /// `newVersionedStatefulSetPod`: the set version and revision a pod created now gets.
    fn for_ordinal(&self, ordinal: i32) -> (&StatefulSet, &str) {
        if uses_current_revision(&self.current_set, ordinal) {
            (&self.current_set, &self.current_name)
        } else {
            (&self.update_set, &self.update_name)
        }
    }
}

/// Carries out one step of the plan.
async fn act(
    client: &Client,
    versions: &Versions,
    pods: &[Pod],
    action: SetAction,
) -> Result<(), ReconcileError> {
    let set = &versions.update_set;
    match action {
        SetAction::Create(ordinal) => {
            let (source, revision) = versions.for_ordinal(ordinal);
            create_pod(client, source, ordinal, revision).await
        }
        SetAction::Recreate { name, failed } => {
            let (type_, reason, state) = if failed {
                (EventType::Warning, "RecreatingFailedPod", "failed")
            } else {
                (EventType::Normal, "RecreatingTerminatedPod", "terminated")
            };
            let identity = set_identity(set)?;
            let message = format!(
                "StatefulSet {}/{} is recreating {state} Pod {name}",
                identity.namespace, identity.name
            );
            set_event(client, set, type_, reason, message).await;
            delete_pod(client, set, &name).await
        }
        SetAction::Delete { name, ordinal } => {
            condemn_claims(client, set, ordinal, pods, &name).await?;
            delete_pod(client, set, &name).await
        }
    }
}

/// `DeleteStatefulPod`: deletes the pod and records it (a pod already gone is no event).
async fn delete_pod(client: &Client, set: &StatefulSet, name: &str) -> Result<(), ReconcileError> {
    let pods_api = Api::<Pod>::namespaced(client.clone(), set_identity(set)?.namespace);
    let set_name = set.name_any();
    match pods_api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {
            let message = format!("delete Pod {name} in StatefulSet {set_name} successful");
            set_event(client, set, EventType::Normal, "SuccessfulDelete", message).await;
            Ok(())
        }
        Err(error) if is_not_found(&error) => Ok(()),
        Err(error) => {
            let message = format!(
                "delete Pod {name} in StatefulSet {set_name} failed error: {}",
                api_message(&error)
            );
            set_event(client, set, EventType::Warning, "FailedDelete", message).await;
            Err(error.into())
        }
    }
}

/// What Go's `err.Error()` says of a failed request: the API server's message.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Records an event about the set, from `statefulset-controller`.
async fn set_event(
    client: &Client,
    set: &StatefulSet,
    type_: EventType,
    reason: &'static str,
    message: String,
) {
    let note = Note {
        type_,
        reason,
        message,
    };
    events::record(client, COMPONENT, set, &note).await;
}

/// With `minReadySeconds`, a pod becomes available by time alone: come back when it does.
fn availability_requeue(set: &StatefulSet, pods: &[Pod], now: i64) -> Action {
    let min_ready = i64::from(
        set.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0),
    );
    if min_ready <= 0 {
        return Action::await_change();
    }
    let soonest = pods
        .iter()
        .filter_map(ready_since)
        .map(|since| since + min_ready - now)
        .filter(|remaining| *remaining > 0)
        .min();
    match soonest.and_then(|seconds| u64::try_from(seconds).ok()) {
        Some(seconds) => Action::requeue(Duration::from_secs(seconds)),
        None => Action::await_change(),
    }
}

/// The pods of the set's namespace matching its selector, from the cache.
fn list_pods(set: &StatefulSet, cache: &Store<Pod>) -> Result<Vec<Pod>, ReconcileError> {
    let selector = selector_of(set)?;
    let namespace = set_identity(set)?.namespace;
    Ok(pods_in(cache, namespace)
        .into_iter()
        .filter(|pod| selects(&selector, pod))
        .collect())
}

/// The pods among `pods` whose controller is `set` (by uid: a set deleted and created again
/// under the same name does not own its predecessor's pods).
fn owned_by(set: &StatefulSet, pods: Vec<Pod>) -> Vec<Pod> {
    let uid = set.metadata.uid.as_deref().unwrap_or_default();
    pods.into_iter()
        .filter(|pod| {
            pod.owner_references()
                .iter()
                .any(|owner| owner.controller == Some(true) && owner.uid == uid)
        })
        .collect()
}

/// Creates the pod's claims (kept if they exist: stable storage), then the pod, recording
/// each creation as `CreateStatefulPod` does.
async fn create_pod(
    client: &Client,
    set: &StatefulSet,
    ordinal: i32,
    revision: &str,
) -> Result<(), ReconcileError> {
    let identity = set_identity(set)?;
    let pod = new_pod(set, ordinal, revision)?;
    let pod_name = pod.name_any();
    let claims_api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), identity.namespace);
    for claim in claims_for(set, ordinal)? {
        let claim_name = claim.name_any();
        let what = format!(
            "Claim {claim_name} Pod {pod_name} in StatefulSet {}",
            identity.name
        );
        match claims_api.create(&PostParams::default(), &claim).await {
            Ok(_) => {
                let message = format!("create {what} success");
                set_event(client, set, EventType::Normal, "SuccessfulCreate", message).await;
            }
            Err(error) if is_already_exists(&error) => {}
            Err(error) => {
                let message = format!(
                    "create Claim {claim_name} for Pod {pod_name} in StatefulSet {} failed error: {}",
                    identity.name,
                    api_message(&error)
                );
                set_event(client, set, EventType::Warning, "FailedCreate", message).await;
                return Err(anyhow::Error::from(error)
                    .context("creating a PersistentVolumeClaim")
                    .into());
            }
        }
    }
    let pods_api = Api::<Pod>::namespaced(client.clone(), identity.namespace);
    let what = format!("Pod {pod_name} in StatefulSet {}", identity.name);
    // A pod of that name that is not the set's (an orphan it has not adopted yet, or one
    // still terminating) fails the pass, unrecorded, as upstream's `CreateStatefulPod`: the
    // next pass adopts the orphan or finds the name free.
    match pods_api.create(&PostParams::default(), &pod).await {
        Ok(_) => {
            let message = format!("create {what} successful");
            set_event(client, set, EventType::Normal, "SuccessfulCreate", message).await;
            Ok(())
        }
        Err(error) if is_already_exists(&error) => {
            Err(anyhow::Error::from(error).context("creating a pod").into())
        }
        Err(error) => {
            let message = format!("create {what} failed error: {}", api_message(&error));
            set_event(client, set, EventType::Warning, "FailedCreate", message).await;
            Err(anyhow::Error::from(error).context("creating a pod").into())
        }
    }
}

/// `whenScaled: Delete`: before a scale-down removes a pod, its claims get the pod as owner,
/// so the garbage collector deletes them with it.
async fn condemn_claims(
    client: &Client,
    set: &StatefulSet,
    ordinal: i32,
    pods: &[Pod],
    pod_name: &str,
) -> Result<(), ReconcileError> {
    let spec = set.spec.as_ref().context("StatefulSet without spec")?;
    let scaled_away = !plan::ordinal_range(set).contains(&ordinal);
    let delete_on_scale = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|policy| policy.when_scaled.as_deref())
        == Some("Delete");
    if !(scaled_away && delete_on_scale) {
        return Ok(());
    }
    let Some(pod) = pods
        .iter()
        .find(|pod| pod.metadata.name.as_deref() == Some(pod_name))
    else {
        return Ok(());
    };
    let owner = OwnerReference {
        api_version: Pod::api_version(&()).into_owned(),
        kind: Pod::kind(&()).into_owned(),
        name: pod_name.to_string(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        controller: None,
        block_owner_deletion: None,
    };
    let claims_api =
        Api::<PersistentVolumeClaim>::namespaced(client.clone(), set_identity(set)?.namespace);
    for claim in claims_for(set, ordinal)? {
        let mut owners = claim.metadata.owner_references.clone().unwrap_or_default();
        owners.push(owner.clone());
        let patch = serde_json::json!({ "metadata": { "ownerReferences": owners } });
        match claims_api.merge_patch(&claim.name_any(), &patch).await {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}
