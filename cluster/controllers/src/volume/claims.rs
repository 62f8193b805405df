//! The claim side of the PersistentVolume controller (`syncClaim`) and the provisioner.
//!
//! A claim is reconciled when it changes, when a volume whose claimRef names it changes, and
//! when a StorageClass changes (a claim waiting for a class). Each pass:
//! 1. a claim without a class gets the default class's name (real clusters do this in the
//!    DefaultStorageClass admission plugin at create time; the PV controller does the same
//!    afterwards for claims created while no default existed — "retroactive default
//!    StorageClass" — which is what happens here for every claim);
//! 2. an unbound claim is bound to the best matching volume (see `binding`); without one, a
//!    claim of a class with our provisioner and `Immediate` binding gets a new volume,
//!    pre-bound to it, which the next pass binds;
//! 3. a bound claim has its binding completed on both sides (annotations, phases, status).
//!
//! Every write happens only when the object differs, and writes that choose between claims
//! are guarded by resourceVersion, so two claims never take the same volume.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt as _};
use serde_json::json;

use crate::controller_loop::{FailureLog, controller_of_all, run_controller};
use crate::merge_patch::MergePatch;
use crate::reconcile_error::{ReconcileError, is_already_exists, is_not_found};
use crate::volume::binding::{
    BETA_STORAGE_PROVISIONER, BIND_COMPLETED, BOUND_BY_CONTROLLER, STORAGE_PROVISIONER, best_match,
    bind_completed, bound_claim_status, claim_ref, is_bound_to, is_claimed_by, phase, reference_to,
};
use crate::volume::provision::provisioned_volume;
use crate::volume::storage_class::{PROVISIONER, claim_class, default_class_name};

pub(crate) struct ClaimContext {
    pub client: Client,
    /// Where provisioned volumes' directories go (recorded in the volumes only).
    pub volume_dir: String,
}

/// Runs the claim controller until `shutdown` resolves.
pub(crate) async fn run(
    ctx: ClaimContext,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let controller = controller_of_all::<PersistentVolumeClaim>(&client);
    let claims = controller.store();
    let controller = controller
        .watches(
            Api::<PersistentVolume>::all(client.clone()),
            watcher::Config::default(),
            |volume: PersistentVolume| {
                claim_ref(&volume).and_then(|reference| {
                    Some(
                        ObjectRef::new(reference.name.as_deref()?)
                            .within(reference.namespace.as_deref()?),
                    )
                })
            },
        )
        .watches(
            Api::<StorageClass>::all(client.clone()),
            watcher::Config::default(),
            move |_class: StorageClass| unbound_claims(&claims),
        );
    run_controller(
        controller,
        reconcile,
        Arc::new(ctx),
        shutdown,
        "persistentvolumeclaim controller",
        FailureLog::Debug,
    )
    .await;
}

fn unbound_claims(claims: &Store<PersistentVolumeClaim>) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    claims
        .state()
        .into_iter()
        .filter(|claim| {
            claim
                .spec
                .as_ref()
                .and_then(|spec| spec.volume_name.as_deref())
                .is_none_or(str::is_empty)
        })
        .map(|claim| ObjectRef::from_obj(claim.as_ref()))
        .collect()
}

async fn reconcile(
    claim: Arc<PersistentVolumeClaim>,
    ctx: Arc<ClaimContext>,
) -> Result<Action, ReconcileError> {
    if claim.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = claim
        .metadata
        .namespace
        .as_deref()
        .context("PersistentVolumeClaim without namespace")?;
    let claims_api = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), namespace);
    let volumes_api = Api::<PersistentVolume>::all(ctx.client.clone());
    let volume_name = claim
        .spec
        .as_ref()
        .and_then(|spec| spec.volume_name.clone())
        .filter(|name| !name.is_empty());

    let Some(volume_name) = volume_name else {
        return bind_or_provision(&claim, &claims_api, &volumes_api, &ctx).await;
    };
    let volume = match volumes_api.get(&volume_name).await {
        Ok(volume) => Some(volume),
        Err(error) if is_not_found(&error) => None,
        Err(error) => return Err(error.into()),
    };
    match volume {
        Some(volume) if claim_ref(&volume).is_none() || is_claimed_by(&volume, &claim) => {
            bind(&claim, &volume, &claims_api, &volumes_api).await?;
        }
        // The volume is gone or belongs to another claim: once bound, the claim is Lost.
        _ => {
            let lost = if bind_completed(&claim) {
                "Lost"
            } else {
                "Pending"
            };
            set_claim_phase(&claim, &claims_api, lost).await?;
        }
    }
    Ok(Action::await_change())
}

/// An unbound claim: default its class, bind it to a volume, or provision one.
async fn bind_or_provision(
    claim: &PersistentVolumeClaim,
    claims_api: &Api<PersistentVolumeClaim>,
    volumes_api: &Api<PersistentVolume>,
    ctx: &ClaimContext,
) -> Result<Action, ReconcileError> {
    let classes_api = Api::<StorageClass>::all(ctx.client.clone());
    let Some(class_name) = claim_class(claim).map(str::to_string) else {
        let classes = classes_api
            .list(&ListParams::default())
            .await
            .context("listing StorageClasses")?
            .items;
        if let Some(default) = default_class_name(&classes) {
            let patch = json!({ "spec": { "storageClassName": default } });
            claims_api
                .merge_patch(&claim.name_any(), &patch)
                .await
                .context("setting the default StorageClass")?;
        }
        // The change (or a default class appearing) brings the claim back.
        return Ok(Action::await_change());
    };

    let volumes = volumes_api
        .list(&ListParams::default())
        .await
        .context("listing PersistentVolumes")?
        .items;
    if let Some(volume) = best_match(claim, &volumes) {
        bind(claim, volume, claims_api, volumes_api).await?;
        return Ok(Action::await_change());
    }
    if class_name.is_empty() {
        return Ok(Action::await_change());
    }
    let class = match classes_api.get(&class_name).await {
        Ok(class) => class,
        Err(error) if is_not_found(&error) => return Ok(Action::await_change()),
        Err(error) => return Err(error.into()),
    };
    let immediate = class.volume_binding_mode.as_deref().unwrap_or("Immediate") == "Immediate";
    if class.provisioner != PROVISIONER || !immediate {
        // Another provisioner's claim, or WaitForFirstConsumer (not supported here).
        return Ok(Action::await_change());
    }
    mark_for_provisioning(claim, claims_api).await?;
    let Some(volume) = provisioned_volume(claim, &class, &ctx.volume_dir) else {
        return Ok(Action::await_change());
    };
    match volumes_api.create(&PostParams::default(), &volume).await {
        // The new volume names the claim in its claimRef: its event brings the claim back.
        Ok(_) => Ok(Action::await_change()),
        Err(error) if is_already_exists(&error) => Ok(Action::await_change()),
        Err(error) => Err(anyhow::Error::from(error)
            .context("creating a PersistentVolume")
            .into()),
    }
}

fn annotations(claim: &PersistentVolumeClaim) -> BTreeMap<String, String> {
    claim.metadata.annotations.clone().unwrap_or_default()
}

/// What the PV controller does before an external provisioner acts: name the provisioner on
/// the claim.
async fn mark_for_provisioning(
    claim: &PersistentVolumeClaim,
    claims_api: &Api<PersistentVolumeClaim>,
) -> Result<(), ReconcileError> {
    let current = annotations(claim);
    if [STORAGE_PROVISIONER, BETA_STORAGE_PROVISIONER]
        .iter()
        .all(|key| current.get(*key).map(String::as_str) == Some(PROVISIONER))
    {
        return Ok(());
    }
    let patch = json!({ "metadata": { "annotations": {
        STORAGE_PROVISIONER: PROVISIONER,
        BETA_STORAGE_PROVISIONER: PROVISIONER,
    } } });
    claims_api
        .merge_patch(&claim.name_any(), &patch)
        .await
        .context("annotating the claim for provisioning")?;
    Ok(())
}

/// Binds `claim` and `volume` (`bind` in the PV controller): the volume's claimRef first
/// (guarded by its resourceVersion), its phase, then the claim's volumeName and annotations,
/// then the claim's status.
async fn bind(
    claim: &PersistentVolumeClaim,
    volume: &PersistentVolume,
    claims_api: &Api<PersistentVolumeClaim>,
    volumes_api: &Api<PersistentVolume>,
) -> Result<(), ReconcileError> {
    let volume_name = volume.name_any();
    if !is_bound_to(volume, claim) {
        // A volume the user pre-bound to the claim (by name) is not marked bound-by-controller.
        let mut patch = json!({
            "metadata": { "resourceVersion": volume.metadata.resource_version },
            "spec": { "claimRef": reference_to(claim) },
        });
        if !is_claimed_by(volume, claim) {
            patch["metadata"]["annotations"] = json!({ BOUND_BY_CONTROLLER: "yes" });
        }
        volumes_api
            .merge_patch(&volume_name, &patch)
            .await
            .context("binding the PersistentVolume to its claim")?;
    }
    if phase(volume) != Some("Bound") {
        let patch = json!({ "status": { "phase": "Bound" } });
        volumes_api
            .merge_patch_status(&volume_name, &patch)
            .await
            .context("marking the PersistentVolume Bound")?;
    }

    let current = annotations(claim);
    let claim_volume = claim
        .spec
        .as_ref()
        .and_then(|spec| spec.volume_name.as_deref());
    let mut new_annotations = BTreeMap::new();
    if claim_volume != Some(volume_name.as_str()) {
        new_annotations.insert(BOUND_BY_CONTROLLER, "yes");
    }
    if current.get(BIND_COMPLETED).map(String::as_str) != Some("yes") {
        new_annotations.insert(BIND_COMPLETED, "yes");
    }
    if claim_volume != Some(volume_name.as_str()) || !new_annotations.is_empty() {
        let patch = json!({
            "metadata": {
                "resourceVersion": claim.metadata.resource_version,
                "annotations": new_annotations,
            },
            "spec": { "volumeName": volume_name },
        });
        claims_api
            .merge_patch(&claim.name_any(), &patch)
            .await
            .context("binding the claim to its PersistentVolume")?;
    }
    let status = bound_claim_status(claim, volume);
    if claim.status.as_ref() != Some(&status) {
        claims_api
            .merge_patch_status(&claim.name_any(), &json!({ "status": status }))
            .await
            .context("marking the claim Bound")?;
    }
    Ok(())
}

async fn set_claim_phase(
    claim: &PersistentVolumeClaim,
    claims_api: &Api<PersistentVolumeClaim>,
    phase: &str,
) -> Result<(), ReconcileError> {
    let current = claim
        .status
        .as_ref()
        .and_then(|status| status.phase.as_deref());
    if current == Some(phase) {
        return Ok(());
    }
    claims_api
        .merge_patch_status(&claim.name_any(), &json!({ "status": { "phase": phase } }))
        .await
        .context("updating the claim phase")?;
    Ok(())
}
