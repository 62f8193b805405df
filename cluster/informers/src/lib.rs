//! The Services and EndpointSlices of the whole cluster, kept in memory by kube-runtime
//! reflectors: what CoreDNS's kubernetes plugin and kube-proxy both watch, through client-go's
//! shared informers. Cluster DNS and the service proxy read the same objects the same way, so
//! the watching (initial list, resume, backoff, change signal) lives here once.
//!
//! [`PodInformer`] is the controller manager's shared pod informer (see [`pods`]): one watch
//! of every pod, read by the ReplicaSet, StatefulSet and Deployment controllers.

pub mod pods;

pub use pods::{PodEvent, PodInformer, RunningPodInformer};

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Upper bound for the initial list of Services and EndpointSlices at start.
const INITIAL_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Reflectors on every Service and EndpointSlice, and a signal on each change.
pub struct ServiceInformers {
    /// Every Service of the cluster.
    pub services: Store<Service>,
    /// Every EndpointSlice of the cluster.
    pub endpoint_slices: Store<EndpointSlice>,
    changed: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl ServiceInformers {
    /// Starts both watches and returns once both stores hold the initial list, so the first
    /// answer is already computed from the cluster's state. `reader` names the component in
    /// errors and logs ("cluster DNS", "the service proxy").
    pub async fn start(client: Client, reader: &'static str) -> anyhow::Result<Self> {
        let changed = Arc::new(Notify::new());
        let (services, services_task) =
            spawn_reflector(Api::<Service>::all(client.clone()), changed.clone(), reader);
        let (endpoint_slices, slices_task) =
            spawn_reflector(Api::<EndpointSlice>::all(client), changed.clone(), reader);
        let informers = ServiceInformers {
            services,
            endpoint_slices,
            changed,
            tasks: vec![services_task, slices_task],
        };
        let synced = async {
            informers.services.wait_until_ready().await?;
            informers.endpoint_slices.wait_until_ready().await
        };
        match tokio::time::timeout(INITIAL_SYNC_TIMEOUT, synced).await {
            Ok(Ok(())) => Ok(informers),
            // Dropping `informers` stops the watches.
            _ => anyhow::bail!(
                "{reader} could not list Services and EndpointSlices within {INITIAL_SYNC_TIMEOUT:?}"
            ),
        }
    }

    /// Notified after any Service or EndpointSlice event (added, changed, deleted, relisted);
    /// a change while nobody waits is kept for the next wait, so none is missed.
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }
}

impl Drop for ServiceInformers {
    /// Stops the watches.
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Whether an endpoint takes traffic. Like CoreDNS and kube-proxy, an endpoint counts as ready
/// unless its `ready` condition says false (an absent condition means ready, as the
/// EndpointSlice API defines).
pub fn is_ready(endpoint: &Endpoint) -> bool {
    endpoint
        .conditions
        .as_ref()
        .and_then(|conditions| conditions.ready)
        .unwrap_or(true)
}

/// A reflector keeping every object of `api` in a store and signalling `changed` on every
/// event; watch errors are retried with kube-runtime's default backoff (the store keeps
/// serving its last state meanwhile).
fn spawn_reflector<K>(
    api: Api<K>,
    changed: Arc<Notify>,
    reader: &'static str,
) -> (Store<K>, JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream =
        reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(_) => changed.notify_one(),
                Err(error) => tracing::debug!(%error, "{reader}: watch error (retrying)"),
            }
        }
    });
    (store, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(ready: Option<bool>) -> Endpoint {
        serde_json::from_value(serde_json::json!({
            "addresses": ["10.244.0.5"],
            "conditions": {"ready": ready},
        }))
        .expect("a valid endpoint")
    }

    #[test]
    fn an_endpoint_is_ready_unless_its_condition_says_false() {
        assert!(is_ready(&endpoint(Some(true))));
        assert!(is_ready(&endpoint(None)));
        assert!(!is_ready(&endpoint(Some(false))));
        let without_conditions: Endpoint =
            serde_json::from_value(serde_json::json!({"addresses": ["10.244.0.5"]})).unwrap();
        assert!(is_ready(&without_conditions));
    }
}
