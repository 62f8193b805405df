//! The ReplicaSet controller: keeps `replicas` interchangeable pods running.
//!
//! Watch-driven through kube-runtime, like kube-controller-manager's
//! `pkg/controller/replicaset`: a ReplicaSet is reconciled when it changes, when a pod it
//! controls changes, and when an orphan pod its selector matches appears (so it can be
//! adopted). Pods come from the controller manager's shared pod informer, never from a LIST
//! per pass: its events trigger the passes, and each pass reads the namespace's pods from its
//! cache. A cache lags behind the pass's own writes, so creations and deletions go through
//! [`crate::expectations`] as upstream's do: a pass creates or deletes pods only once the
//! cache has shown every pod the previous pass created or deleted, else it only reports the
//! status (so a scale to 100 never creates more than 100 pods, however many passes the first
//! pods' events trigger).
//!
//! The set itself is read from the API server after the pods are taken from the cache, so
//! pods are never made from a template older than a pod event the pass acts on (see
//! [`crate::read_after_list`]; one GET of one object, where the pod LIST it replaces grew
//! with the pods).
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
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt as _};

use crate::controller_loop::{SharedPods, pods_in};
use crate::controller_ref::{apply_claim, controller_of};
use crate::expectations::{EXPECTATIONS_TTL, Expectations};
use crate::merge_patch::MergePatch;
use crate::pod_owner::{PodOwnerContext as Context, run_pod_owner};
use crate::read_after_list::read_after_list;
use crate::reconcile_error::{ReconcileError, is_not_found};
use claim::{claim, new_pod, owner_reference, selects};
use plan::{Scale, next_availability_in, scale, status};

/// At most this many pods are created or deleted in one pass (`BurstReplicas`).
const BURST_REPLICAS: usize = 500;

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
        "replicaset controller",
        sets_of_pod,
        reconcile,
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
    let key = cached.metadata.uid.clone().unwrap_or_default();
    // In this order, as upstream's `syncReplicaSet`: every observation that met the
    // expectations was applied to the cache before it was counted, so the pods taken next
    // include every pod the previous pass created or deleted.
    let needs_sync = ctx.expectations.satisfied(&key);
    let pods = pods_in(&ctx.pods, namespace);
    // Pods are made from the set as it is after the pods were taken, never from the cached
    // copy.
    let Some(set) = read_after_list(&sets_api, &cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    if set.metadata.uid.as_deref() != Some(key.as_str()) {
        // Deleted and created again under the same name: the new set's own event comes.
        return Ok(Action::await_change());
    }
    let owner = owner_reference(&set).map_err(anyhow::Error::from)?;
    let active = apply_claim(&pods_api, owner, claim(&set, &pods)).await?;

    let failure = if set.metadata.deletion_timestamp.is_some() || !needs_sync {
        // A set being deleted: the garbage collector removes the pods through their owner
        // references. Expectations not met: the cache has not caught up with the last pass
        // yet; the events that meet them trigger the next pass.
        None
    } else {
        manage_replicas(&set, &pods_api, &active, &ctx.expectations, &key).await
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
            .merge_patch_status(
                &set.name_any(),
                &serde_json::json!({ "status": status_json }),
            )
            .await
            .context("updating the ReplicaSet status")?;
    }
    if failed {
        return Err(anyhow::anyhow!("creating or deleting pods failed").into());
    }
    if !needs_sync {
        // Should an event be lost, act again once the expectations expire.
        return Ok(Action::requeue(EXPECTATIONS_TTL));
    }
    let now_seconds = now.0.as_second();
    Ok(match next_availability_in(&set, &active, now_seconds) {
        Some(seconds) => Action::requeue(Duration::from_secs(seconds)),
        None => Action::await_change(),
    })
}

/// Creates or deletes pods to reach `replicas`, expecting each creation and deletion first
/// (under `key`, the set's uid); returns the failure reason and message if a create or
/// delete failed (`ReplicaFailure`).
async fn manage_replicas(
    set: &ReplicaSet,
    pods_api: &Api<Pod>,
    active: &[&Pod],
    expectations: &Expectations,
    key: &str,
) -> Option<(&'static str, String)> {
    match scale(set, active) {
        Scale::Nothing => None,
        Scale::Create(count) => {
            let pod = match new_pod(set) {
                Ok(pod) => pod,
                Err(error) => return Some(("FailedCreate", error.to_string())),
            };
            let count = count.min(BURST_REPLICAS);
            expectations.expect(key, count, Vec::new());
            let (created, result) = slow_start_create(pods_api, &pod, count).await;
            // No event will come for the pods that were not created.
            for _ in created..count {
                expectations.creation_observed(key);
            }
            result
                .err()
                .map(|error| ("FailedCreate", format!("{error:#}")))
        }
        Scale::Delete(names) => {
            let names: Vec<&String> = names.iter().take(BURST_REPLICAS).collect();
            let namespace = set.metadata.namespace.as_deref().unwrap_or_default();
            let keys = |name: &str| format!("{namespace}/{name}");
            expectations.expect(key, 0, names.iter().map(|name| keys(name)).collect());
            let deletions = names.iter().map(|name| async move {
                let result = pods_api.delete(name, &DeleteParams::default()).await;
                if result.is_err() {
                    // Gone already, or not deleted: either way no event is to be waited for.
                    expectations.deletion_observed(key, &keys(name));
                }
                match result {
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
/// that cannot be created fails once, not `count` times. Returns how many were created.
async fn slow_start_create(
    pods_api: &Api<Pod>,
    pod: &Pod,
    count: usize,
) -> (usize, anyhow::Result<()>) {
    let mut created = 0;
    let mut batch = 1;
    while created < count {
        let size = batch.min(count - created);
        let results = join_all(
            (0..size).map(|_| async { pods_api.create(&PostParams::default(), pod).await }),
        )
        .await;
        let mut failure = None;
        for result in results {
            match result {
                Ok(_) => created += 1,
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        if let Some(error) = failure {
            return (
                created,
                Err(anyhow::Error::from(error).context("creating a pod")),
            );
        }
        batch *= 2;
    }
    (created, Ok(()))
}
