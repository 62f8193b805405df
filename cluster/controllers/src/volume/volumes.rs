//! The volume side of the PersistentVolume controller (`syncVolume`) and reclaiming.
//!
//! A volume is reconciled when it changes and when a claim it names (or that names it)
//! changes or goes away. Phases follow upstream: Available without a claim (or pre-bound by
//! name to a claim the binder has not seen), Bound once its claim names it, Released once
//! its claim is gone. A Released volume with reclaim policy `Delete` that our provisioner
//! created is deleted (the provisioner's job upstream: it would also remove the storage; the
//! directory is the node agent's); other Released volumes stay, as with `Retain`.

use std::sync::Arc;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt as _};
use serde_json::json;

use crate::controller_loop::{Context, FailureLog, controller_of_all, run_controller};
use crate::merge_patch::MergePatch;
use crate::reconcile_error::{ReconcileError, is_not_found};
use crate::volume::binding::{
    BOUND_BY_CONTROLLER, claim_ref, phase, provisioned_by, volume_bound_by_controller,
};
use crate::volume::storage_class::PROVISIONER;

/// Runs the volume controller until `shutdown` resolves.
pub(crate) async fn run(
    client: Client,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = controller_of_all::<PersistentVolume>(&client);
    let volumes = controller.store();
    let controller = controller.watches(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
        move |claim: PersistentVolumeClaim| volumes_of_claim(&volumes, &claim),
    );
    let context = Arc::new(Context { client });
    run_controller(
        controller,
        reconcile,
        context,
        shutdown,
        "persistentvolume controller",
        FailureLog::Debug,
    )
    .await;
}

/// The volumes a claim change concerns: the one it names and those whose claimRef names it.
fn volumes_of_claim(
    volumes: &Store<PersistentVolume>,
    claim: &PersistentVolumeClaim,
) -> Vec<ObjectRef<PersistentVolume>> {
    let mut affected: Vec<ObjectRef<PersistentVolume>> = claim
        .spec
        .as_ref()
        .and_then(|spec| spec.volume_name.as_deref())
        .filter(|name| !name.is_empty())
        .map(ObjectRef::new)
        .into_iter()
        .collect();
    for volume in volumes.state() {
        let names_claim = claim_ref(&volume).is_some_and(|reference| {
            reference.name == claim.metadata.name && reference.namespace == claim.metadata.namespace
        });
        if names_claim {
            affected.push(ObjectRef::from_obj(volume.as_ref()));
        }
    }
    affected
}

async fn reconcile(
    volume: Arc<PersistentVolume>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    if volume.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let volumes_api = Api::<PersistentVolume>::all(ctx.client.clone());
    let Some(reference) = claim_ref(&volume) else {
        set_phase(&volume, &volumes_api, "Available").await?;
        return Ok(Action::await_change());
    };
    let (Some(namespace), Some(name)) = (reference.namespace.as_deref(), reference.name.as_deref())
    else {
        return Ok(Action::await_change());
    };
    let claim = match Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), namespace)
        .get(name)
        .await
    {
        Ok(claim) => Some(claim),
        Err(error) if is_not_found(&error) => None,
        Err(error) => return Err(error.into()),
    };
    let reference_uid = reference.uid.as_deref().filter(|uid| !uid.is_empty());
    let claim = match (reference_uid, claim) {
        // Pre-bound by name: waits for the claim (or for the binder to add its uid).
        (None, _) => {
            set_phase(&volume, &volumes_api, "Available").await?;
            return Ok(Action::await_change());
        }
        (Some(uid), Some(claim)) if claim.metadata.uid.as_deref() == Some(uid) => claim,
        // The claim is gone (or was replaced by another of the same name).
        (Some(_), _) => return release(&volume, &volumes_api).await,
    };
    let claim_volume = claim
        .spec
        .as_ref()
        .and_then(|spec| spec.volume_name.as_deref())
        .unwrap_or_default();
    if claim_volume == volume.name_any() {
        set_phase(&volume, &volumes_api, "Bound").await?;
    } else if !claim_volume.is_empty() && volume_bound_by_controller(&volume) {
        // The claim went to another volume after we reserved this one: let it go.
        let patch = json!({
            "metadata": { "annotations": { BOUND_BY_CONTROLLER: null } },
            "spec": { "claimRef": null },
        });
        volumes_api
            .merge_patch(&volume.name_any(), &patch)
            .await
            .context("unbinding a PersistentVolume")?;
    }
    // An empty claim volumeName: the claim controller completes the binding.
    Ok(Action::await_change())
}

/// The claim is gone: Released, then reclaimed per the reclaim policy.
async fn release(
    volume: &PersistentVolume,
    volumes_api: &Api<PersistentVolume>,
) -> Result<Action, ReconcileError> {
    if phase(volume) != Some("Failed") {
        set_phase(volume, volumes_api, "Released").await?;
    }
    let policy = volume
        .spec
        .as_ref()
        .and_then(|spec| spec.persistent_volume_reclaim_policy.as_deref());
    if policy == Some("Delete") && provisioned_by(volume) == Some(PROVISIONER) {
        match volumes_api
            .delete(&volume.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(Action::await_change())
}

async fn set_phase(
    volume: &PersistentVolume,
    volumes_api: &Api<PersistentVolume>,
    new_phase: &str,
) -> Result<(), ReconcileError> {
    if phase(volume) == Some(new_phase) {
        return Ok(());
    }
    volumes_api
        .merge_patch_status(
            &volume.name_any(),
            &json!({ "status": { "phase": new_phase } }),
        )
        .await
        .context("updating the PersistentVolume phase")?;
    Ok(())
}
