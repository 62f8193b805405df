//! The pods the eviction check measures, as their workers register and forget them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use tokio::sync::mpsc;

use super::limits::StorageLimits;

/// A pod whose storage the node checks: registered by its worker once the sandbox exists,
/// forgotten when the worker tears it down.
#[derive(Debug, Clone)]
pub struct WatchedPod {
    pub namespace: String,
    pub name: String,
    /// `<state dir>/pods/<uid>`: the pod's volumes, logs and container bundles.
    pub sandbox_dir: PathBuf,
    /// Read from the pod's spec when its sandbox was made.
    pub limits: StorageLimits,
    /// Where the eviction's message goes: the pod worker.
    pub evict: mpsc::UnboundedSender<String>,
}

/// The pods the node checks, by uid.
#[derive(Debug, Default)]
pub struct WatchedPods(Mutex<HashMap<String, WatchedPod>>);

impl WatchedPods {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, WatchedPod>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts checking the pod `uid`.
    pub fn watch(&self, uid: &str, pod: WatchedPod) {
        self.lock().insert(uid.to_string(), pod);
    }

    /// Stops checking the pod `uid` (its sandbox is being removed).
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    pub(super) fn all(&self) -> Vec<(String, WatchedPod)> {
        self.lock()
            .iter()
            .map(|(uid, pod)| (uid.clone(), pod.clone()))
            .collect()
    }

    /// Forgets the pod and returns it, if it was still watched: a pod is evicted once.
    pub(super) fn take(&self, uid: &str) -> Option<WatchedPod> {
        self.lock().remove(uid)
    }
}
