//! The set-up the ReplicaSet and StatefulSet controllers share, as both own pods: once the
//! shared pod cache holds its first list, a controller of every set whose passes are also
//! triggered by the events of the pods a set owns or may adopt, each event first counted
//! against the owner's expectations (upstream's `addPod`/`updatePod`/`deletePod` handlers).

use std::fmt::Debug;
use std::sync::Arc;

use futures::TryFuture;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource};

use crate::controller_loop::{
    FailureLog, SharedPods, controller_of_all, pod_trigger, run_controller,
};
use crate::expectations::{Expectations, observe_pod};
use crate::reconcile_error::ReconcileError;

/// What a pass of a pod owner reads besides the owner: the API client, the pod cache and
/// the expectations of its own creations and deletions.
pub(crate) struct PodOwnerContext {
    pub(crate) client: Client,
    pub(crate) pods: Store<Pod>,
    pub(crate) expectations: Arc<Expectations>,
}

/// Runs the controller of `K` (logged as `name`) until `shutdown` resolves, once the pod
/// cache is filled; `owners_of_pod` says which owners a pod's event concerns.
pub(crate) async fn run_pod_owner<K, ReconcilerFut>(
    client: Client,
    pods: SharedPods,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    name: &'static str,
    owners_of_pod: fn(&Store<K>, &Pod) -> Vec<ObjectRef<K>>,
    reconcile: impl FnMut(Arc<K>, Arc<PodOwnerContext>) -> ReconcilerFut,
) where
    K: Clone + Resource<DynamicType = ()> + DeserializeOwned + Debug + Send + Sync + 'static,
    ReconcilerFut: TryFuture<Ok = Action, Error = ReconcileError> + Send + 'static,
{
    let mut shutdown = Box::pin(shutdown);
    let Some((store, events)) = pods.synced(&mut shutdown).await else {
        return;
    };
    let expectations = Arc::new(Expectations::default());
    let observed = expectations.clone();
    let kind = K::kind(&());
    let controller = controller_of_all::<K>(&client);
    let owners = controller.store();
    let controller = controller.watches_stream(
        pod_trigger(events, move |event| observe_pod(&observed, &kind, event)),
        move |pod: Pod| owners_of_pod(&owners, &pod),
    );
    let context = Arc::new(PodOwnerContext {
        client,
        pods: store,
        expectations,
    });
    run_controller(
        controller,
        reconcile,
        context,
        shutdown,
        name,
        FailureLog::Debug,
    )
    .await;
}
