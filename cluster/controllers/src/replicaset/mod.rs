//! The ReplicaSet controller: keeps `replicas` interchangeable pods running.
//!
//! Watch-driven through kube-runtime, like kube-controller-manager's
//! `pkg/controller/replicaset`: a ReplicaSet is reconciled when it changes, when a pod it
//! controls changes, and when an orphan pod its selector matches appears (so it can be
//! adopted). Each pass lists the namespace's pods live from the API server, which stands in
//! for upstream's informer cache plus "expectations" (a live list already shows the pods the
//! previous pass created or deleted, so nothing is created twice), and then reads the set
//! itself again, so that pods are never made from a template older than the deletions the
//! list shows (see [`crate::read_after_list`]).
//!
//! Terminating and terminal (Succeeded/Failed) pods do not count, as upstream's
//! `FilterActivePods`: a pod being deleted is replaced at once, and a Failed pod is replaced
//! but left for the pod garbage collector. The status goes through the status subresource
//! and only when it changed.

mod claim;
mod plan;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::future::join_all;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt as _};

use crate::controller_loop::{Context, FailureLog, controller_of_all, run_controller};
use crate::controller_ref::{apply_claim, controller_of};
use crate::read_after_list::read_after_list;
use crate::reconcile_error::{ReconcileError, is_not_found};
use claim::{claim, new_pod, owner_reference, selects};
use plan::{Scale, next_availability_in, scale, status};

/// At most this many pods are created or deleted in one pass (`BurstReplicas`).
const BURST_REPLICAS: usize = 500;

/// Runs the controller until `shutdown` resolves.
pub(crate) async fn run(
    client: Client,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = controller_of_all::<ReplicaSet>(&client);
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
        "replicaset controller",
        FailureLog::Debug,
    )
    .await;
}

/// The sets a pod change concerns: its controller if that is a ReplicaSet, otherwise (an
/// orphan) every set in its namespace whose selector matches it (`getPodReplicaSets`).
fn sets_of_pod(sets: &Store<ReplicaSet>, pod: &Pod) -> Vec<ObjectRef<ReplicaSet>> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    match controller_of(pod) {
        Some(owner) if owner.kind == "ReplicaSet" && owner.api_version.starts_with("apps/") => {
            vec![ObjectRef::new(&owner.name).within(namespace)]
        }
        Some(_) => Vec::new(),
        None => sets
            .state()
            .into_iter()
            .filter(|set| selects(set, pod))
            .map(|set| ObjectRef::from_obj(set.as_ref()))
            .collect(),
    }
}

async fn reconcile(cached: Arc<ReplicaSet>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let namespace = cached
        .metadata
        .namespace
        .as_deref()
        .context("ReplicaSet without namespace")?;
    let pods_api = Api::<Pod>::namespaced(ctx.client.clone(), namespace);
    let sets_api = Api::<ReplicaSet>::namespaced(ctx.client.clone(), namespace);
    let pods = pods_api
        .list(&ListParams::default())
        .await
        .context("listing pods")?
        .items;
    // Pods are made from the set as it is after the list, never from the cached copy.
    let Some(set) = read_after_list(&sets_api, &cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let owner = owner_reference(&set).map_err(anyhow::Error::from)?;
    let active = apply_claim(&pods_api, owner, claim(&set, &pods)).await?;

    let failure = if set.metadata.deletion_timestamp.is_some() {
        // The garbage collector removes the pods through their owner references.
        None
    } else {
        manage_replicas(&set, &pods_api, &active).await
    };

    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
    let failed = failure.is_some();
    let new_status = status(&set, &active, failure, &now);
    if set.status.as_ref() != Some(&new_status) {
        let mut status_json =
            serde_json::to_value(&new_status).context("serializing the ReplicaSet status")?;
        if new_status.conditions.is_none() {
            // A merge patch keeps fields it does not mention: remove a cleared condition.
            status_json["conditions"] = serde_json::Value::Null;
        }
        sets_api
            .patch_status(
                &set.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&serde_json::json!({ "status": status_json })),
            )
            .await
            .context("updating the ReplicaSet status")?;
    }
    if failed {
        return Err(anyhow::anyhow!("creating or deleting pods failed").into());
    }
    let now_seconds = now.0.as_second();
    Ok(match next_availability_in(&set, &active, now_seconds) {
        Some(seconds) => Action::requeue(Duration::from_secs(seconds)),
        None => Action::await_change(),
    })
}

/// Creates or deletes pods to reach `replicas`; returns the failure reason and message if a
/// create or delete failed (`ReplicaFailure`).
async fn manage_replicas(
    set: &ReplicaSet,
    pods_api: &Api<Pod>,
    active: &[&Pod],
) -> Option<(&'static str, String)> {
    match scale(set, active) {
        Scale::Nothing => None,
        Scale::Create(count) => {
            let pod = match new_pod(set) {
                Ok(pod) => pod,
                Err(error) => return Some(("FailedCreate", error.to_string())),
            };
            slow_start_create(pods_api, &pod, count.min(BURST_REPLICAS))
                .await
                .err()
                .map(|error| ("FailedCreate", format!("{error:#}")))
        }
        Scale::Delete(names) => {
            let deletions = names.iter().take(BURST_REPLICAS).map(|name| async move {
                match pods_api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => Ok(()),
                    Err(error) if is_not_found(&error) => Ok(()),
                    Err(error) => Err(error),
                }
            });
            join_all(deletions)
                .await
                .into_iter()
                .find_map(Result::err)
                .map(|error| ("FailedDelete", error.to_string()))
        }
    }
}

/// Creates `count` copies of `pod` in batches of 1, 2, 4, … (`slowStartBatch`): a template
/// that cannot be created fails once, not `count` times.
async fn slow_start_create(pods_api: &Api<Pod>, pod: &Pod, count: usize) -> anyhow::Result<()> {
    let mut remaining = count;
    let mut batch = 1;
    while remaining > 0 {
        let size = batch.min(remaining);
        let results = join_all(
            (0..size).map(|_| async { pods_api.create(&PostParams::default(), pod).await }),
        )
        .await;
        if let Some(error) = results.into_iter().find_map(Result::err) {
            return Err(anyhow::Error::from(error).context("creating a pod"));
        }
        remaining -= size;
        batch *= 2;
    }
    Ok(())
}
