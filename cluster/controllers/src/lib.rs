//! The controllers of the embedded cluster (what kube-controller-manager runs).
//!
//! Each controller is a plain API client built on kube-runtime, so it behaves the same
//! against the embedded API server as against a real kube-apiserver:
//! - `statefulset`: ordered pods with stable names, hostnames and claims;
//! - `replicaset`: interchangeable pods with generated names, scaled and self-healing;
//! - `deployment`: rollouts of a pod template through ReplicaSets, with revisions;
//! - `job`: pods run to completion, retried up to a backoff limit;
//! - `cronjob`: Jobs created on a cron schedule;
//! - `endpoints`: Endpoints and EndpointSlices of Services with selectors;
//! - `namespace`: empties a deleted namespace and releases its finalizer;
//! - `garbage_collector`: deletes objects whose owners are gone;
//! - `volume`: the default StorageClass, a provisioner, and binding of claims to volumes.
//!
//! The ReplicaSet, StatefulSet and Deployment controllers read pods from one shared pod
//! informer (`k8s_labs_informers::PodInformer`: one watch of every pod, started here) rather
//! than listing them on every pass, and the first two keep `expectations` of their own
//! writes, as kube-controller-manager's do.

mod clock;
mod controller_history;
mod controller_loop;
mod controller_ref;
mod cronjob;
mod deployment;
mod endpoints;
mod events;
mod expectations;
mod garbage_collector;
mod job;
mod merge_patch;
mod namespace;
mod pod_owner;
#[cfg(test)]
mod pod_state;
mod read_after_list;
mod reconcile_error;
mod replicaset;
mod statefulset;
mod volume;

use std::path::PathBuf;

use anyhow::Context as _;
use futures::{FutureExt as _, StreamExt as _};
use k8s_labs_informers::{PodInformer, RunningPodInformer};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use clock::Clock;
pub use reconcile_error::ReconcileError;

/// Where provisioned volumes live on the node when the configuration names no directory
/// (kind's local-path-provisioner's directory). A path of the node: the node agent resolves
/// it below its own root directory, never on the machine's `/`.
pub const DEFAULT_VOLUME_DIR: &str = "/var/local-path-provisioner";

/// How long [`ControllerManager::shutdown`] lets running reconciliations finish.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Settings of the controller manager.
#[derive(Debug, Clone, Default)]
pub struct ControllerConfig {
    /// The directory under which the provisioner places volumes (`<dir>/pvc-<claim uid>`,
    /// recorded as `hostPath` in each PersistentVolume; the node agent creates the directory
    /// on mount). `None` means [`DEFAULT_VOLUME_DIR`].
    pub volume_dir: Option<PathBuf>,
    /// The clock the CronJob controller schedules by (the wall clock by default).
    pub clock: Clock,
}

/// The running controllers; dropping it without `shutdown` aborts them.
pub struct ControllerManager {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    /// The shared pod informer of the ReplicaSet, StatefulSet and Deployment controllers.
    pods: RunningPodInformer,
}

impl ControllerManager {
    /// [`ControllerManager::start_with`] the default configuration.
    pub async fn start(client: Client) -> anyhow::Result<ControllerManager> {
        Self::start_with(client, ControllerConfig::default()).await
    }

    /// Creates the default StorageClass if missing, then spawns every controller on the
    /// current tokio runtime. They start with a full list of the objects they watch, so
    /// anything created before the start is reconciled too.
    pub async fn start_with(
        client: Client,
        config: ControllerConfig,
    ) -> anyhow::Result<ControllerManager> {
        let volume_dir = match &config.volume_dir {
            Some(dir) => dir
                .to_str()
                .with_context(|| format!("volume directory {} is not UTF-8", dir.display()))?
                .to_string(),
            None => DEFAULT_VOLUME_DIR.to_string(),
        };
        volume::ensure_default_storage_class(&client).await?;
        let (stop, stopped) = watch::channel(false);
        let shutdown = move || {
            let mut stopped = stopped.clone();
            async move {
                // An error means the sender is gone, which also means "stop".
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        // One watch of every pod, read by the three controllers that manage pods (as
        // kube-controller-manager's shared informer factory gives them one pod informer).
        let pod_informer = PodInformer::new(Api::<Pod>::all(client.clone()));
        let shared_pods = || controller_loop::SharedPods {
            store: pod_informer.store(),
            events: pod_informer.subscribe().boxed(),
            synced: pod_informer.synced().boxed(),
        };
        let mut tasks = JoinSet::new();
        tasks.spawn(statefulset::run(client.clone(), shared_pods(), shutdown()));
        tasks.spawn(replicaset::run(client.clone(), shared_pods(), shutdown()));
        tasks.spawn(deployment::run(client.clone(), shared_pods(), shutdown()));
        let pods = pod_informer.run("controller manager");
        tasks.spawn(job::run(client.clone(), shutdown()));
        tasks.spawn(cronjob::run(client.clone(), config.clock, shutdown()));
        tasks.spawn(endpoints::run(client.clone(), shutdown()));
        tasks.spawn(namespace::run(client.clone(), shutdown()));
        tasks.spawn(volume::run_claims(
            volume::ClaimContext {
                client: client.clone(),
                volume_dir,
            },
            shutdown(),
        ));
        tasks.spawn(volume::run_volumes(client.clone(), shutdown()));
        tasks.spawn(garbage_collector::run(client, shutdown()));
        Ok(ControllerManager { stop, tasks, pods })
    }

    /// Stops every controller, letting running reconciliations finish for up to
    /// [`SHUTDOWN_GRACE`], then aborts what is left. The bound matters: kube-runtime 5's
    /// graceful shutdown never completes for a controller whose store has not finished its
    /// first list, which is exactly the case when a cluster stops right after a failed start.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let drained = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
            tracing::debug!("controllers did not stop within the grace period; aborting them");
            self.tasks.shutdown().await;
        }
        drop(self.pods);
    }
}
