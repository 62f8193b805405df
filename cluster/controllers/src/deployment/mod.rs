//! The Deployment controller: rolls a Deployment's pods from one template to the next through
//! ReplicaSets, as kube-controller-manager's `pkg/controller/deployment`.
//!
//! Each template gets a ReplicaSet `<deployment>-<pod-template-hash>` (the hash also labels
//! its pods and extends its selector), controlled by the Deployment; the ReplicaSet
//! controller makes the pods. A rollout grows the new set and shrinks the old ones within
//! `maxSurge` and `maxUnavailable` (RollingUpdate), or empties the old sets before filling
//! the new one (Recreate). Revisions are annotations on the sets (`rollout history` and
//! `rollout undo` read them), `revisionHistoryLimit` old sets are kept, and the status
//! carries the counts and the Progressing and Available conditions.
//!
//! A Deployment is reconciled when it changes, when a ReplicaSet it controls (or an orphan
//! its selector matches) changes, when a pod of a Recreate Deployment changes (it waits for
//! the old pods to be gone), and when its progress deadline comes. Each pass lists the
//! namespace's ReplicaSets and then reads the Deployment again (see
//! [`crate::read_after_list`]). Pods (their events, and the old pods a Recreate waits for)
//! come from the controller manager's shared pod informer. Like upstream's, this controller
//! keeps no expectations: it writes no pods, its ReplicaSets are listed live (a few per
//! Deployment, however many pods), a set is created under a name fixed by the template's
//! hash (a second creation gets AlreadyExists), and sets are scaled by a PUT that carries
//! their resourceVersion (a stale copy gets Conflict).

mod plan;
mod rollout;
mod status;
mod strategy;
mod util;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::api::ListParams;
use kube::core::{Selector, SelectorExt as _};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource as _, ResourceExt as _};

use crate::controller_loop::{
    FailureLog, SharedPods, controller_of_all, pod_trigger, run_controller,
};
use crate::controller_ref::{apply_claim, claim, controller_of};
use crate::events::Recorder;
use crate::read_after_list::read_after_list;
use crate::reconcile_error::ReconcileError;
use rollout::Rollout;
use util::{POD_TEMPLATE_HASH, compute_hash, is_recreate};

/// What a reconcile gets: the client, the Event recorder and the pod cache.
struct Context {
    client: Client,
    events: Recorder,
    pods: Store<Pod>,
}

/// Runs the controller until `shutdown` resolves, once the pod cache is filled.
pub(crate) async fn run(
    client: Client,
    pods: SharedPods,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let mut shutdown = Box::pin(shutdown);
    let Some((store, events)) = pods.synced(&mut shutdown).await else {
        return;
    };
    let controller = controller_of_all::<Deployment>(&client);
    let for_sets = controller.store();
    let for_pods = controller.store();
    let controller = controller
        .watches(
            Api::<ReplicaSet>::all(client.clone()),
            watcher::Config::default(),
            move |set: ReplicaSet| deployments_of_set(&for_sets, &set),
        )
        .watches_stream(pod_trigger(events, |_| {}), move |pod: Pod| {
            recreating_deployments_of_pod(&for_pods, &pod)
        });
    let events = Recorder::new(client.clone(), "deployment-controller");
    let context = Arc::new(Context {
        client,
        events,
        pods: store,
    });
    run_controller(
        controller,
        reconcile,
        context,
        shutdown,
        "deployment controller",
        FailureLog::Debug,
    )
    .await;
}

/// The Deployment's selector; an empty one selects nothing.
fn selector(d: &Deployment) -> Option<Selector> {
    let spec = d.spec.as_ref()?;
    let selector = Selector::try_from(spec.selector.clone()).ok()?;
    (!selector.selects_all()).then_some(selector)
}

/// Whether the Deployment's selector matches `labels` of an object in `namespace`.
fn selects(
    d: &Deployment,
    namespace: Option<&String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    d.metadata.namespace.as_ref() == namespace
        && selector(d).is_some_and(|s| s.matches(labels.unwrap_or(&BTreeMap::new())))
}

/// The Deployments a ReplicaSet change concerns: its controller if a Deployment, otherwise
/// (an orphan) those whose selector matches it (`getDeploymentsForReplicaSet`).
fn deployments_of_set(store: &Store<Deployment>, set: &ReplicaSet) -> Vec<ObjectRef<Deployment>> {
    let namespace = set.metadata.namespace.as_deref().unwrap_or_default();
    match controller_of(set) {
        Some(owner) if owner.kind == "Deployment" && owner.api_version.starts_with("apps/") => {
            vec![ObjectRef::new(&owner.name).within(namespace)]
        }
        Some(_) => Vec::new(),
        None => store
            .state()
            .into_iter()
            .filter(|d| {
                selects(
                    d,
                    set.metadata.namespace.as_ref(),
                    set.metadata.labels.as_ref(),
                )
            })
            .map(|d| ObjectRef::from_obj(d.as_ref()))
            .collect(),
    }
}

/// The Recreate Deployments whose pods include `pod`: they wait for old pods to be gone.
fn recreating_deployments_of_pod(
    store: &Store<Deployment>,
    pod: &Pod,
) -> Vec<ObjectRef<Deployment>> {
    store
        .state()
        .into_iter()
        .filter(|d| is_recreate(d))
        .filter(|d| {
            selects(
                d,
                pod.metadata.namespace.as_ref(),
                pod.metadata.labels.as_ref(),
            )
        })
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

/// The controller reference a Deployment puts on its ReplicaSets.
fn owner_reference(d: &Deployment) -> anyhow::Result<OwnerReference> {
    let (Some(name), Some(uid)) = (d.metadata.name.clone(), d.metadata.uid.clone()) else {
        anyhow::bail!("the Deployment has no name or uid yet");
    };
    Ok(OwnerReference {
        api_version: Deployment::api_version(&()).into_owned(),
        kind: Deployment::kind(&()).into_owned(),
        name,
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// A new ReplicaSet for the Deployment's template, with 0 replicas and no annotations yet:
/// named and labelled by the template's hash (with the collision count), its selector
/// extended by the same label so that it never selects another template's pods.
fn new_replica_set(d: &Deployment) -> anyhow::Result<ReplicaSet> {
    let spec = d.spec.as_ref().context("the Deployment has no spec")?;
    let mut template = spec.template.clone();
    let collisions = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = compute_hash(&template, collisions);
    let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_TEMPLATE_HASH.into(), hash.clone());
    let labels = labels.clone();
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    Ok(ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", d.name_any())),
            namespace: d.metadata.namespace.clone(),
            owner_references: Some(vec![owner_reference(d)?]),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    })
}

async fn reconcile(cached: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let namespace = cached
        .metadata
        .namespace
        .as_deref()
        .context("Deployment without namespace")?;
    let sets_api = Api::<ReplicaSet>::namespaced(ctx.client.clone(), namespace);
    let deployments = Api::<Deployment>::namespaced(ctx.client.clone(), namespace);
    let sets = sets_api
        .list(&ListParams::default())
        .await
        .context("listing replica sets")?
        .items;
    let Some(d) = read_after_list(&deployments, &cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    if selector(&d).is_none() {
        // Validation refuses such a Deployment; one that got in anyway selects nothing.
        return Ok(Action::await_change());
    }
    let owner = owner_reference(&d)?;
    let claimed = claim(&d.metadata, &sets, |set: &ReplicaSet| {
        selects(
            &d,
            set.metadata.namespace.as_ref(),
            set.metadata.labels.as_ref(),
        )
    });
    let owned = apply_claim(&sets_api, owner, claimed)
        .await?
        .into_iter()
        .cloned()
        .collect();
    let mut rollout = Rollout {
        deployments,
        sets_api,
        events: ctx.events.clone(),
        d,
        sets: owned,
        new: None,
        now: Time(jiff::Timestamp::now()),
    };
    rollout.run(&ctx.pods).await
}
