//! The controllers of the embedded cluster (what kube-controller-manager runs).
//!
//! Each controller is a plain API client built on kube-runtime, so it behaves the same
//! against the embedded API server as against a real kube-apiserver:
//! - `statefulset`: ordered pods with stable names, hostnames and claims;
//! - `replicaset`: interchangeable pods with generated names, scaled and self-healing;
//! - `endpoints`: Endpoints and EndpointSlices of Services with selectors;
//! - `namespace`: empties a deleted namespace and releases its finalizer;
//! - `garbage_collector`: deletes objects whose owners are gone.

mod endpoints;
mod garbage_collector;
mod namespace;
mod pod_state;
mod reconcile_error;
mod replicaset;
mod statefulset;

use kube::Client;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use reconcile_error::ReconcileError;

/// The running controllers; dropping it without `shutdown` aborts them.
pub struct ControllerManager {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl ControllerManager {
    /// Spawns every controller on the current tokio runtime. They start with a full list of
    /// the objects they watch, so anything created before `start` is reconciled too.
    pub async fn start(client: Client) -> anyhow::Result<ControllerManager> {
        let (stop, stopped) = watch::channel(false);
        let shutdown = move || {
            let mut stopped = stopped.clone();
            async move {
                // An error means the sender is gone, which also means "stop".
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let mut tasks = JoinSet::new();
        tasks.spawn(statefulset::run(client.clone(), shutdown()));
        tasks.spawn(replicaset::run(client.clone(), shutdown()));
        tasks.spawn(endpoints::run(client.clone(), shutdown()));
        tasks.spawn(namespace::run(client.clone(), shutdown()));
        tasks.spawn(garbage_collector::run(client, shutdown()));
        Ok(ControllerManager { stop, tasks })
    }

    /// Stops every controller, letting running reconciliations finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}
