//! Evicting the pod, as the kubelet's eviction manager has its pod worker do it (`evictPod`):
//! a Warning `Evicted` event with the message, the containers stopped with a grace period of
//! one second, and the pod `Failed` for good with reason `Evicted` and the message. The node
//! removes the sandbox at once, as the kubelet's garbage collection removes an evicted pod's
//! containers, logs and volumes: what the pod wrote is the problem.

use super::PodWorker;
use crate::events::EventType;
use crate::eviction::{DEFAULT_POD_EPHEMERAL_STORAGE, StorageLimits, WatchedPod};
use crate::grace::Grace;
use crate::sandbox::PodSandbox;

/// The kubelet's `immediateEvictionGracePeriodSeconds` (its `preStop` hooks run within it,
/// and SIGTERM still gets the kubelet's minimum window).
const EVICTION_GRACE_SECONDS: i64 = 1;

impl PodWorker {
    /// Has the node's storage check measure the pod from now on.
    pub(super) fn watch_storage(&self, sandbox: &PodSandbox) {
        let pod = WatchedPod {
            namespace: self.identity.namespace.clone(),
            name: self.identity.name.clone(),
            sandbox_dir: sandbox.dir.clone(),
            limits: StorageLimits::of(&self.pod, DEFAULT_POD_EPHEMERAL_STORAGE),
            evict: self.evictions_tx.clone(),
        };
        self.context.eviction.watch(&self.identity.uid, pod);
    }

    /// Evicts the pod with `message` (see the module's documentation). A pod that has ended
    /// meanwhile is left as it is: the kubelet evicts only active pods.
    pub(super) async fn evict(&mut self, message: String) {
        if matches!(self.phase(), "Succeeded" | "Failed") {
            return;
        }
        self.context.events.kubelet(
            &self.involved,
            None,
            EventType::Warning,
            "Evicted",
            message.clone(),
        );
        self.evicted = Some(message);
        // Nothing is ever made for this pod again.
        self.sandbox_retry_at = None;
        self.waiting_for_volumes = false;
        self.terminate(Grace::Seconds(EVICTION_GRACE_SECONDS)).await;
    }
}
