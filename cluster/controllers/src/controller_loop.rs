//! Running a kube-runtime `Controller` the way every controller of this crate runs: failures
//! retried soon, a graceful stop on shutdown, each failed reconcile logged.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt as _, TryFuture};
use k8s_labs_informers::PodEvent;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource};

use crate::reconcile_error::{ReconcileError, retry_soon};

/// What a reconcile gets when the API client is all it needs.
pub(crate) struct Context {
    pub(crate) client: Client,
}

/// A controller of every object of kind `K` in every namespace (each controller here is
/// cluster-wide, as kube-controller-manager's are).
pub(crate) fn controller_of_all<K>(client: &Client) -> Controller<K>
where
    K: Clone + Resource + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
{
    Controller::new(Api::<K>::all(client.clone()), watcher::Config::default())
}

/// How loudly a controller logs a failed reconcile. The Endpoints and Namespace controllers
/// fail often and harmlessly (objects vanish under them), so they log at trace.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FailureLog {
    Debug,
    Trace,
}

/// Runs `controller` with `reconcile` until `shutdown` resolves (reconciles already running
/// finish first), retrying failures with [`retry_soon`] and logging each one as `name`.
pub(crate) async fn run_controller<K, Ctx, ReconcilerFut>(
    controller: Controller<K>,
    reconcile: impl FnMut(Arc<K>, Arc<Ctx>) -> ReconcilerFut,
    context: Arc<Ctx>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    name: &'static str,
    log: FailureLog,
) where
    K: Clone + Resource + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Debug + Unpin,
    ReconcilerFut: TryFuture<Ok = Action, Error = ReconcileError> + Send + 'static,
{
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, retry_soon, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                match log {
                    FailureLog::Debug => tracing::debug!(%error, "{name}"),
                    FailureLog::Trace => tracing::trace!(%error, "{name}"),
                }
            }
        })
        .await;
}

/// What a controller that manages pods gets from the controller manager's shared pod
/// informer ([`k8s_labs_informers::PodInformer`]): the cache every pass reads pods from (the
/// lister) and its own subscription to the pod events (the event handlers).
pub(crate) struct SharedPods {
    pub(crate) store: Store<Pod>,
    pub(crate) events: BoxStream<'static, PodEvent>,
    /// Resolves once the store holds the first full list (`false`: the informer stopped).
    pub(crate) synced: BoxFuture<'static, bool>,
}

/// The pod events as a watch stream for `Controller::watches_stream`, each first handed to
/// `observe` (which lowers expectations) so that a reconcile it triggers sees them.
pub(crate) fn pod_trigger(
    events: BoxStream<'static, PodEvent>,
    observe: impl Fn(&PodEvent) + Send + 'static,
) -> impl futures::Stream<Item = Result<Pod, watcher::Error>> + Send + 'static {
    events.map(move |event| {
        observe(&event);
        Ok(Pod::clone(event.pod()))
    })
}

/// The pods of `namespace` in the cache (`podLister.Pods(namespace).List`).
pub(crate) fn pods_in(store: &Store<Pod>, namespace: &str) -> Vec<Pod> {
    store
        .state()
        .iter()
        .filter(|pod| pod.metadata.namespace.as_deref() == Some(namespace))
        .map(|pod| Pod::clone(pod))
        .collect()
}

impl SharedPods {
    /// Waits until the pod cache holds its first full list (`WaitForCacheSync`): a pass on an
    /// empty cache would see no pods and create every replica again. The cache and the
    /// events then; `None` when `shutdown` comes first (or the informer stopped).
    pub(crate) async fn synced(
        self,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> Option<(Store<Pod>, BoxStream<'static, PodEvent>)> {
        let synced = tokio::select! {
            synced = self.synced => synced,
            () = shutdown => false,
        };
        synced.then_some((self.store, self.events))
    }
}
