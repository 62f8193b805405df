//! Local storage eviction, as the kubelet's eviction manager does it
//! (`localStorageEviction`, `pkg/kubelet/eviction/eviction_manager.go`): every
//! eviction period ([`DEFAULT_EVICTION_PERIOD`] unless configured) the node measures what each of its pods writes to its disk (disk-backed
//! emptyDirs, the containers' writable layers and logs, the node's files for the pod) and
//! evicts a pod over an emptyDir's `sizeLimit`, its containers' total
//! `limits.ephemeral-storage`, or one container's: its worker stops the containers, the pod
//! ends `Failed` with reason `Evicted` and the kubelet's message, and an `Evicted` event says
//! why. Unlike a kubelet, a pod that sets no `ephemeral-storage` limit is held to
//! [`DEFAULT_POD_EPHEMERAL_STORAGE`], so that a pod filling its root filesystem is evicted
//! before it fills the disk of the machine the cluster runs on.
//!
//! This module only measures and decides ([`limits`], [`usage`], [`decide`]); the pod worker
//! stops the pod and writes its status.

mod decide;
mod limits;
mod usage;
pub(crate) mod watched;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

pub use decide::eviction_message;
pub use limits::StorageLimits;
pub use usage::{PodDirs, measure};
pub use watched::{WatchedPod, WatchedPods};

use crate::containers::ContainerKey;
use crate::context::NodeContext;

/// How often the node measures its pods' storage by default. The kubelet's housekeeping runs
/// every 10 s; 2 s bounds how far past its limit a pod can write at disk speed a little more
/// tightly, and a measure costs next to nothing for the few pods a lab runs (a walk of the
/// directories they wrote to).
pub const DEFAULT_EVICTION_PERIOD: Duration = Duration::from_secs(2);

/// What bounds a pod whose containers set no `limits.ephemeral-storage`: its writable layers,
/// logs and emptyDirs without a `sizeLimit` together. 1 GiB: far above what the labs write
/// (kilobytes), far below the free disk of the machines the cluster runs on.
pub const DEFAULT_POD_EPHEMERAL_STORAGE: u64 = 1 << 30;

/// Checks the node's pods every `context.eviction_period` until `shutdown`.
pub async fn run(context: Arc<NodeContext>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(context.eviction_period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let pods = context.eviction.all();
        if pods.is_empty() {
            continue;
        }
        let targets: Vec<_> = pods
            .into_iter()
            .map(|(uid, pod)| {
                let dirs = pod_dirs(&context, &pod);
                (uid, pod.limits, dirs)
            })
            .collect();
        // Walking directories blocks; the decisions are made off the async threads too.
        let found = tokio::task::spawn_blocking(move || {
            targets
                .into_iter()
                .filter_map(|(uid, limits, dirs)| {
                    eviction_message(&limits, &measure(&dirs, &limits)).map(|m| (uid, m))
                })
                .collect::<Vec<_>>()
        })
        .await;
        let evictions = match found {
            Ok(evictions) => evictions,
            Err(error) => {
                tracing::warn!("measuring the pods' storage panicked: {error}");
                continue;
            }
        };
        for (uid, message) in evictions {
            if let Some(pod) = context.eviction.take(&uid) {
                tracing::info!("evicting pod {}/{}: {message}", pod.namespace, pod.name);
                let _ = pod.evict.send(message);
            }
        }
    }
}

/// The pod's directories, with the bundle of each container's current attempt as the node's
/// container registry knows it.
fn pod_dirs(context: &NodeContext, pod: &WatchedPod) -> PodDirs {
    let bundles = pod
        .limits
        .containers
        .iter()
        .filter_map(|(container, _)| {
            let key = ContainerKey {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
                container: container.clone(),
            };
            let record = context.registry.get(&key)?;
            // A pod of the same name may have replaced this one in the registry: its bundle
            // is not in this sandbox, so it is not found there and counts nothing.
            let bundle = crate::containers::bundle_dir(&pod.sandbox_dir, &record.runc_id);
            Some((container.clone(), bundle))
        })
        .collect();
    PodDirs {
        sandbox: pod.sandbox_dir.clone(),
        bundles,
    }
}
