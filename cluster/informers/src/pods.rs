//! One shared watch of every pod of the cluster, for the controllers that manage pods (the
//! ReplicaSet, StatefulSet and Deployment controllers), as kube-controller-manager's shared
//! pod informer: one list and watch, one cache every controller reads (its lister), and each
//! change handed to every controller (its event handlers).
//!
//! kube-runtime 5 has shared streams of its own (`reflector::store_shared`,
//! `Controller::watches_shared_stream`, feature `unstable-runtime-subscribe`), but they pass
//! on only the objects that are still in the store: a deleted pod never reaches a subscriber
//! (`Writer::dispatch_event` ignores `Delete`), and a pod deleted between the broadcast and
//! the subscriber's poll leaves the subscriber pending without a wake-up. A ReplicaSet must
//! hear of a deleted pod (to replace it, and to count it as an observed deletion), so the
//! fan-out is done here: every subscriber gets every event, deletions included, after the
//! store has applied it. Each subscriber has its own unbounded queue, so a slow controller
//! neither holds the others back nor loses events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A change to a pod, after the store holds it (client-go's `OnAdd`, `OnUpdate`, `OnDelete`).
#[derive(Debug, Clone)]
pub enum PodEvent {
    /// A pod the store did not hold (a pod with a known name but a new uid is a new pod).
    Added(Arc<Pod>),
    /// A new version of a pod the store held.
    Updated(Arc<Pod>),
    /// A pod gone from the cluster, as last seen (also a pod missing from a relist, which is
    /// client-go's `DeletedFinalStateUnknown`).
    Deleted(Arc<Pod>),
}

impl PodEvent {
    /// The pod the event is about.
    pub fn pod(&self) -> &Arc<Pod> {
        match self {
            PodEvent::Added(pod) | PodEvent::Updated(pod) | PodEvent::Deleted(pod) => pod,
        }
    }
}

type Subscribers = Arc<Mutex<Vec<mpsc::UnboundedSender<PodEvent>>>>;

/// The shared pod informer before it runs: subscribe every reader, then [`PodInformer::run`].
pub struct PodInformer {
    api: Api<Pod>,
    store: Store<Pod>,
    writer: reflector::store::Writer<Pod>,
    subscribers: Subscribers,
    synced: watch::Sender<bool>,
}

/// The running informer; dropping it stops the watch (and ends every subscription).
pub struct RunningPodInformer {
    store: Store<Pod>,
    task: JoinHandle<()>,
}

impl PodInformer {
    /// An informer on the pods `api` reaches (`Api::all` for the whole cluster).
    pub fn new(api: Api<Pod>) -> Self {
        let (store, writer) = reflector::store();
        PodInformer {
            api,
            store,
            writer,
            subscribers: Subscribers::default(),
            synced: watch::Sender::new(false),
        }
    }

    /// Resolves to `true` once the store holds the first full list (client-go's
    /// `HasSynced`), or to `false` if the informer stops first. Any number of tasks may wait
    /// on it: `Store::wait_until_ready` wakes only the last of several waiters (kube-runtime
    /// 5's `DelayedInit` keeps a single waker), so it must not be shared.
    pub fn synced(&self) -> impl Future<Output = bool> + Send + 'static {
        let mut synced = self.synced.subscribe();
        async move { synced.wait_for(|synced| *synced).await.is_ok() }
    }

    /// The cache: every pod, as of the last event delivered.
    pub fn store(&self) -> Store<Pod> {
        self.store.clone()
    }

    /// Every event from the start of the watch on, each after the store has applied it. The
    /// initial list arrives as one `Added` per pod.
    pub fn subscribe(&self) -> impl Stream<Item = PodEvent> + Send + 'static {
        let (sender, receiver) = mpsc::unbounded();
        lock(&self.subscribers).push(sender);
        receiver
    }

    /// Starts the watch (errors are retried with kube-runtime's default backoff; the store
    /// keeps serving its last state meanwhile). `reader` names the watcher in logs.
    pub fn run(self, reader: &'static str) -> RunningPodInformer {
        let PodInformer {
            api,
            store,
            mut writer,
            subscribers,
            synced,
        } = self;
        let cache = store.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            let mut relist: Vec<Pod> = Vec::new();
            while let Some(item) = stream.next().await {
                let event = match item {
                    Ok(event) => event,
                    Err(error) => {
                        tracing::debug!(%error, "{reader}: pod watch error (retrying)");
                        continue;
                    }
                };
                let list_done = matches!(event, watcher::Event::InitDone);
                let events = apply(&cache, &mut writer, &mut relist, event);
                if list_done {
                    synced.send_replace(true);
                }
                let mut subscribers = lock(&subscribers);
                subscribers.retain(|subscriber| {
                    events
                        .iter()
                        .all(|event| subscriber.unbounded_send(event.clone()).is_ok())
                });
            }
        });
        RunningPodInformer { store, task }
    }
}

impl RunningPodInformer {
    /// The cache (see [`PodInformer::store`]).
    pub fn store(&self) -> Store<Pod> {
        self.store.clone()
    }
}

impl Drop for RunningPodInformer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The subscriber list; a panic while it was held left it whole (each change is one push or
/// one `retain`), so a poisoned lock is still usable.
fn lock(
    subscribers: &Subscribers,
) -> std::sync::MutexGuard<'_, Vec<mpsc::UnboundedSender<PodEvent>>> {
    subscribers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Applies one watcher event to the store and says what changed, as client-go's
/// `DeltaFIFO` does: a relist (`Init` … `InitDone`) is compared with the store it replaces.
fn apply(
    store: &Store<Pod>,
    writer: &mut reflector::store::Writer<Pod>,
    relist: &mut Vec<Pod>,
    event: watcher::Event<Pod>,
) -> Vec<PodEvent> {
    let mut changes = Vec::new();
    match &event {
        watcher::Event::Apply(pod) => {
            let previous = store.get(&ObjectRef::from_obj(pod));
            writer.apply_watcher_event(&event);
            changes.extend(change(previous, pod));
        }
        watcher::Event::Delete(pod) => {
            writer.apply_watcher_event(&event);
            changes.push(PodEvent::Deleted(Arc::new(pod.clone())));
        }
        watcher::Event::Init => {
            relist.clear();
            writer.apply_watcher_event(&event);
        }
        watcher::Event::InitApply(pod) => {
            relist.push(pod.clone());
            writer.apply_watcher_event(&event);
        }
        watcher::Event::InitDone => {
            let mut before: HashMap<ObjectRef<Pod>, Arc<Pod>> = store
                .state()
                .into_iter()
                .map(|pod| (ObjectRef::from_obj(pod.as_ref()), pod))
                .collect();
            writer.apply_watcher_event(&event);
            for pod in relist.drain(..) {
                let previous = before.remove(&ObjectRef::from_obj(&pod));
                changes.extend(change(previous, &pod));
            }
            changes.extend(before.into_values().map(PodEvent::Deleted));
        }
    }
    changes
}

/// The events for `pod` replacing `previous` in the store.
fn change(previous: Option<Arc<Pod>>, pod: &Pod) -> Vec<PodEvent> {
    let pod = Arc::new(pod.clone());
    match previous {
        None => vec![PodEvent::Added(pod)],
        Some(previous) if previous.metadata.uid != pod.metadata.uid => {
            vec![PodEvent::Deleted(previous), PodEvent::Added(pod)]
        }
        Some(_) => vec![PodEvent::Updated(pod)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, uid: &str, version: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": version},
        }))
        .unwrap()
    }

    fn names(events: &[PodEvent]) -> Vec<String> {
        events
            .iter()
            .map(|event| {
                let kind = match event {
                    PodEvent::Added(_) => "added",
                    PodEvent::Updated(_) => "updated",
                    PodEvent::Deleted(_) => "deleted",
                };
                let pod = event.pod();
                format!(
                    "{kind} {}/{}",
                    pod.metadata.name.as_deref().unwrap_or_default(),
                    pod.metadata.uid.as_deref().unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn events_follow_the_store_and_a_relist_is_compared_with_it() {
        let (store, mut writer) = reflector::store();
        let mut relist = Vec::new();
        let mut step = |event| names(&apply(&store, &mut writer, &mut relist, event));
        assert!(step(watcher::Event::Init).is_empty());
        assert!(step(watcher::Event::InitApply(pod("a", "a1", "1"))).is_empty());
        assert_eq!(step(watcher::Event::InitDone), ["added a/a1"]);
        assert_eq!(store.state().len(), 1);
        assert_eq!(
            step(watcher::Event::Apply(pod("b", "b1", "2"))),
            ["added b/b1"]
        );
        assert_eq!(
            step(watcher::Event::Apply(pod("b", "b1", "3"))),
            ["updated b/b1"]
        );
        assert_eq!(
            step(watcher::Event::Delete(pod("b", "b1", "4"))),
            ["deleted b/b1"]
        );
        assert_eq!(store.state().len(), 1);
        // A relist after a gap: `a` came back under a new uid, `c` is new.
        step(watcher::Event::Init);
        step(watcher::Event::InitApply(pod("a", "a2", "7")));
        step(watcher::Event::InitApply(pod("c", "c1", "8")));
        let mut relisted = step(watcher::Event::InitDone);
        relisted.sort();
        assert_eq!(relisted, ["added a/a2", "added c/c1", "deleted a/a1"]);
        assert_eq!(store.state().len(), 2);
    }
}
