//! Expectations: what a controller waits to see in its informer cache before acting again,
//! as kube-controller-manager's `UIDTrackingControllerExpectations`
//! (`pkg/controller/controller_utils.go`).
//!
//! A controller that reads pods from a cache sees its own creations and deletions only once
//! the watch delivers them. Acting on a cache that has not caught up would create a pod twice
//! (or delete one twice). So before a pass creates `n` pods it *expects* `n` creations, and
//! before it deletes pods it expects their deletions (by pod key, so that a pod seen first
//! with a `deletionTimestamp` and then gone counts once). The informer's event handlers lower
//! the expectations as the events arrive (`CreationObserved`, `DeletionObserved`), and a pass
//! creates or deletes only once its owner's expectations are met (`SatisfiedExpectations`);
//! until then it only reports status. A creation or deletion that failed is lowered at once,
//! since no event will come for it. Expectations older than [`EXPECTATIONS_TTL`] count as met,
//! so a lost event delays a controller by at most that long.
//!
//! Keys are the owner's uid (upstream keys by namespace/name and drops the record when the
//! owner is deleted; a uid cannot be reused by a new owner of the same name). Met records
//! are removed when checked.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_labs_informers::PodEvent;

use crate::controller_ref::controller_of;

/// How long expectations wait for their events (`ExpectationsTimeout`, 5 minutes).
pub(crate) const EXPECTATIONS_TTL: Duration = Duration::from_secs(5 * 60);

/// One owner's outstanding creations and deletions.
#[derive(Debug)]
struct Record {
    /// Creations not yet seen (may go below zero: more seen than expected is met too).
    add: i64,
    /// Keys (`namespace/name`) of the pods whose deletion is not yet seen.
    deletions: HashSet<String>,
    set_at: Instant,
}

impl Record {
    fn fulfilled(&self) -> bool {
        self.add <= 0 && self.deletions.is_empty()
    }
}

/// The expectations of one controller, by owner uid.
#[derive(Debug, Default)]
pub(crate) struct Expectations {
    records: Mutex<HashMap<String, Record>>,
}

impl Expectations {
    /// Whether the owner `key` may act on the cache now: it expects nothing, its events have
    /// all been seen, or it has waited [`EXPECTATIONS_TTL`].
    pub(crate) fn satisfied(&self, key: &str) -> bool {
        self.satisfied_at(key, Instant::now())
    }

    pub(crate) fn satisfied_at(&self, key: &str, now: Instant) -> bool {
        let mut records = self.lock();
        let met = records
            .get(key)
            .is_none_or(|record| record.fulfilled() || expired(record, now));
        if met {
            records.remove(key);
        }
        met
    }

    /// Before a pass acts: it will create `creations` pods and delete the pods `deletions`
    /// (`ExpectCreations` / `ExpectDeletions`; replaces what the owner expected before).
    pub(crate) fn expect(&self, key: &str, creations: usize, deletions: Vec<String>) {
        self.expect_at(key, creations, deletions, Instant::now());
    }

    pub(crate) fn expect_at(
        &self,
        key: &str,
        creations: usize,
        deletions: Vec<String>,
        now: Instant,
    ) {
        let mut records = self.lock();
        // Forget owners that never came back to check (deleted, most likely).
        records.retain(|_, record| !expired(record, now));
        records.insert(
            key.to_string(),
            Record {
                add: i64::try_from(creations).unwrap_or(i64::MAX),
                deletions: deletions.into_iter().collect(),
                set_at: now,
            },
        );
    }

    /// A pod of the owner was seen created, or a creation failed (`CreationObserved`).
    pub(crate) fn creation_observed(&self, key: &str) {
        if let Some(record) = self.lock().get_mut(key) {
            record.add -= 1;
        }
    }

    /// The pod `pod_key` of the owner was seen deleted or being deleted, or its deletion
    /// failed (`DeletionObserved`); a pod not expected to go changes nothing.
    pub(crate) fn deletion_observed(&self, key: &str, pod_key: &str) {
        if let Some(record) = self.lock().get_mut(key) {
            record.deletions.remove(pod_key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        // A panic while holding the lock leaves consistent counts (every update is one
        // statement), so a poisoned lock is still usable.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn expired(record: &Record, now: Instant) -> bool {
    now.saturating_duration_since(record.set_at) > EXPECTATIONS_TTL
}

/// Lowers the expectations of the pod's controller, if it is of kind `kind` (`apps/v1`), as
/// upstream's pod event handlers do: `addPod` (a creation; a pod added already being deleted,
/// as after a relist, is also a deletion), `updatePod` with a `deletionTimestamp` and
/// `deletePod` (a deletion).
pub(crate) fn observe_pod(expectations: &Expectations, kind: &str, event: &PodEvent) {
    let pod = event.pod();
    let Some(owner) = controller_of(pod.as_ref())
        .filter(|owner| owner.kind == kind && owner.api_version.starts_with("apps/"))
    else {
        return;
    };
    let being_deleted = pod.metadata.deletion_timestamp.is_some();
    match event {
        PodEvent::Added(_) => {
            expectations.creation_observed(&owner.uid);
            if being_deleted {
                expectations.deletion_observed(&owner.uid, &pod_key(pod));
            }
        }
        PodEvent::Updated(_) if being_deleted => {
            expectations.deletion_observed(&owner.uid, &pod_key(pod));
        }
        PodEvent::Updated(_) => {}
        PodEvent::Deleted(_) => expectations.deletion_observed(&owner.uid, &pod_key(pod)),
    }
}

/// The key of a pod in deletion expectations (`PodKey`: `namespace/name`).
pub(crate) fn pod_key(pod: &k8s_openapi::api::core::v1::Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_without_expectations_may_act() {
        let expectations = Expectations::default();
        assert!(expectations.satisfied("rs"));
        // Observations without expectations change nothing.
        expectations.creation_observed("rs");
        expectations.deletion_observed("rs", "ns/a");
        assert!(expectations.satisfied("rs"));
    }

    #[test]
    fn creations_are_met_once_each_is_seen() {
        let expectations = Expectations::default();
        expectations.expect("rs", 3, Vec::new());
        expectations.creation_observed("rs");
        expectations.creation_observed("rs");
        assert!(!expectations.satisfied("rs"));
        assert!(!expectations.satisfied("rs"), "checking does not lower");
        expectations.creation_observed("rs");
        assert!(expectations.satisfied("rs"));
        // Another owner's observations do not count.
        expectations.expect("rs", 1, Vec::new());
        expectations.creation_observed("other");
        assert!(!expectations.satisfied("rs"));
    }

    #[test]
    fn deletions_are_tracked_by_pod_so_a_pod_counts_once() {
        let expectations = Expectations::default();
        expectations.expect("rs", 0, vec!["ns/a".into(), "ns/b".into()]);
        // `a` seen with a deletionTimestamp, then gone: one deletion, not two.
        expectations.deletion_observed("rs", "ns/a");
        expectations.deletion_observed("rs", "ns/a");
        // A pod that was not to be deleted (deleted by a user) does not count.
        expectations.deletion_observed("rs", "ns/c");
        assert!(!expectations.satisfied("rs"));
        expectations.deletion_observed("rs", "ns/b");
        assert!(expectations.satisfied("rs"));
    }

    #[test]
    fn new_expectations_replace_the_old_ones() {
        let expectations = Expectations::default();
        expectations.expect("rs", 5, Vec::new());
        expectations.expect("rs", 0, vec!["ns/a".into()]);
        expectations.deletion_observed("rs", "ns/a");
        assert!(expectations.satisfied("rs"));
    }

    #[test]
    fn expectations_expire_after_the_ttl() {
        let expectations = Expectations::default();
        let start = Instant::now();
        expectations.expect_at("rs", 2, Vec::new(), start);
        assert!(!expectations.satisfied_at("rs", start + EXPECTATIONS_TTL));
        let later = start + EXPECTATIONS_TTL + Duration::from_secs(1);
        assert!(expectations.satisfied_at("rs", later));
        // An expired record of an owner that never checks again is dropped by the next
        // owner's expectations.
        expectations.expect_at("gone", 1, Vec::new(), start);
        expectations.expect_at("rs", 1, Vec::new(), later);
        assert_eq!(expectations.lock().len(), 1);
    }

    fn owned_pod(name: &str, deleting: bool) -> std::sync::Arc<k8s_openapi::api::core::v1::Pod> {
        let mut pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-uid",
                "controller": true}]},
        }))
        .unwrap();
        if deleting {
            pod.metadata.deletion_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
            );
        }
        std::sync::Arc::new(pod)
    }

    #[test]
    fn pod_events_lower_the_controller_s_expectations() {
        let expectations = Expectations::default();
        expectations.expect("rs-uid", 2, vec!["ns/old".into(), "ns/older".into()]);
        let events = [
            PodEvent::Added(owned_pod("new-1", false)),
            // Status updates of a new pod are no creation.
            PodEvent::Updated(owned_pod("new-1", false)),
            PodEvent::Updated(owned_pod("new-1", false)),
            PodEvent::Updated(owned_pod("old", true)),
            PodEvent::Deleted(owned_pod("old", true)),
        ];
        for event in &events {
            observe_pod(&expectations, "ReplicaSet", event);
        }
        // Another kind's controller is not this one.
        observe_pod(
            &expectations,
            "StatefulSet",
            &PodEvent::Added(owned_pod("x", false)),
        );
        observe_pod(
            &expectations,
            "StatefulSet",
            &PodEvent::Deleted(owned_pod("older", false)),
        );
        assert!(!expectations.satisfied("rs-uid"));
        observe_pod(
            &expectations,
            "ReplicaSet",
            &PodEvent::Added(owned_pod("new-2", false)),
        );
        assert!(!expectations.satisfied("rs-uid"));
        observe_pod(
            &expectations,
            "ReplicaSet",
            &PodEvent::Deleted(owned_pod("older", false)),
        );
        assert!(expectations.satisfied("rs-uid"));
    }

    #[test]
    fn pod_keys_are_namespace_and_name() {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "web-0", "namespace": "default"}}),
        )
        .unwrap();
        assert_eq!(pod_key(&pod), "default/web-0");
    }
}
