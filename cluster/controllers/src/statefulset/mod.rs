//! The StatefulSet controller: stable, ordered pods with stable storage.
//!
//! Watch-driven through kube-runtime: a StatefulSet is reconciled when it changes, when one of
//! its pods (found by controller owner reference) changes, so "create web-1 once web-0 is
//! Ready" happens on web-0's status update, without polling, and when an orphan pod its
//! selector matches appears. Orphans named after the set (left by `kubectl delete sts
//! --cascade=orphan`) are adopted, as upstream's `ControllerRefManager` adopts them, so a
//! set created again takes over its predecessor's pods. A set being deleted creates and
//! deletes nothing; it only reports its status.

mod identity;
mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{Selector, SelectorExt as _};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource as _, ResourceExt as _};

use crate::controller_loop::{Context, FailureLog, controller_of_all, run_controller};
use crate::controller_ref::{self, apply_claim, controller_of};
use crate::read_after_list::read_after_list;
use crate::reconcile_error::{ReconcileError, is_already_exists, is_not_found};
pub(crate) use identity::IdentityError;
use identity::{claims_for, new_pod, owner_reference, parse_ordinal, revision_name, set_identity};
use plan::{SetAction, plan, ready_since, status};

/// Runs the controller until `shutdown` resolves.
pub(crate) async fn run(
    client: Client,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = controller_of_all::<StatefulSet>(&client);
    let sets = controller.store();
    let controller = controller.watches(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        move |pod: Pod| sets_of_pod(&sets, &pod),
    );
    let context = Arc::new(Context { client });
    run_controller(
        controller,
        reconcile,
        context,
        shutdown,
        "statefulset controller",
        FailureLog::Debug,
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
    // Every pod of the namespace: owned pods that no longer match are released too. The
    // pods are then made from the set as it is after the list (see `read_after_list`).
    let listed = pods_api
        .list(&ListParams::default())
        .await
        .context("listing pods")?
        .items;
    let Some(set) = read_after_list(&sets_api, &cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let pods = claim_pods(&pods_api, &set, &listed).await?;
    let update_revision = revision_name(&set)?;
    // A set being deleted only reports its status (`updateStatefulSet`): the garbage
    // collector deletes or orphans its pods.
    if set.metadata.deletion_timestamp.is_none() {
        let pods: Vec<Pod> = pods.into_iter().cloned().collect();
        for action in plan(&set, &pods, &update_revision) {
            act(&ctx.client, &set, &pods, &update_revision, action).await?;
        }
    }

    let pods = owned_by(&set, list_pods(&set, &pods_api).await?);
    let now = jiff::Timestamp::now().as_second();
    let new_status = status(&set, &pods, &update_revision, now);
    if set.status.as_ref() != Some(&new_status) {
        let patch = serde_json::json!({ "status": new_status });
        sets_api
            .patch_status(
                &set.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .context("updating the StatefulSet status")?;
    }
    Ok(availability_requeue(&set, &pods, now))
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

/// Carries out one step of the plan.
async fn act(
    client: &Client,
    set: &StatefulSet,
    pods: &[Pod],
    update_revision: &str,
    action: SetAction,
) -> Result<(), ReconcileError> {
    match action {
        SetAction::CreatePod(ordinal) => create_pod(client, set, ordinal, update_revision).await,
        SetAction::DeletePod { name, ordinal } => {
            condemn_claims(client, set, ordinal, pods, &name).await?;
            let pods_api = Api::<Pod>::namespaced(client.clone(), set_identity(set)?.namespace);
            match pods_api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(error) if is_not_found(&error) => Ok(()),
                Err(error) => Err(error.into()),
            }
        }
    }
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

/// The pods matching the set's selector (live, from the API server).
async fn list_pods(set: &StatefulSet, pods_api: &Api<Pod>) -> Result<Vec<Pod>, ReconcileError> {
    let selector = selector_of(set)?;
    Ok(pods_api
        .list(&ListParams::default().labels_from(&selector))
        .await
        .context("listing the StatefulSet's pods")?
        .items)
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

/// Creates the pod's claims (kept if they exist: stable storage), then the pod.
async fn create_pod(
    client: &Client,
    set: &StatefulSet,
    ordinal: i32,
    revision: &str,
) -> Result<(), ReconcileError> {
    let identity = set_identity(set)?;
    let claims_api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), identity.namespace);
    for claim in claims_for(set, ordinal)? {
        match claims_api.create(&PostParams::default(), &claim).await {
            Ok(_) => {}
            Err(error) if is_already_exists(&error) => {}
            Err(error) => {
                return Err(anyhow::Error::from(error)
                    .context("creating a PersistentVolumeClaim")
                    .into());
            }
        }
    }
    let pod = new_pod(set, ordinal, revision)?;
    let pods_api = Api::<Pod>::namespaced(client.clone(), identity.namespace);
    // A pod of that name that is not the set's (an orphan it has not adopted yet, or one
    // still terminating) fails the pass, as upstream's `CreateStatefulPod`: the next pass
    // adopts the orphan or finds the name free.
    pods_api
        .create(&PostParams::default(), &pod)
        .await
        .context("creating a pod")?;
    Ok(())
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
        match claims_api
            .patch(
                &claim.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}
