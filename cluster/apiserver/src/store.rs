//! The in-memory object store: one global, monotonically increasing resourceVersion (as etcd's
//! revision), objects as JSON values, and a bounded history of changes so that watches can
//! resume from a resourceVersion, answering 410 Gone once it has been compacted away. An
//! object is limited in size as etcd limits a request (`--max-request-bytes`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::errors::{ApiError, ApiResult};

mod history;
mod snapshot;
use history::History;
pub use history::{HISTORY_BYTES, HISTORY_LEN, json_size};
pub use snapshot::Unavailable;

/// The largest object stored, in bytes of JSON: etcd's default `--max-request-bytes`
/// (1.5 MiB), past which etcd refuses the write that would store it.
pub const MAX_OBJECT_BYTES: usize = 1_572_864;

/// The type of a watch event, as written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change in the store. `previous` is the object before the change, so that a filtered
/// watch can tell an object entering or leaving its selector (sent as ADDED / DELETED).
#[derive(Debug)]
pub struct StoreEvent {
    pub resource_version: u64,
    pub event_type: EventType,
    pub resource: &'static str,
    pub namespace: String,
    pub object: Value,
    pub previous: Option<Value>,
    /// The bytes of JSON of `object` and `previous`: what the event weighs in the history
    /// (0 for the synthetic events of a watch's initial state, which are not kept).
    pub size: usize,
}

/// What a mutation decided to do with the object.
pub enum Change {
    /// Store this object (create or replace).
    Put(Value),
    /// Remove the object; the value is the object as sent in the DELETED event.
    Delete(Value),
    /// Leave the store as it is; the value is returned to the caller.
    Keep(Value),
}

/// What a mutation did, with the object as stored (with its new resourceVersion).
#[derive(Debug, Clone)]
pub enum Outcome {
    Created(Value),
    Updated(Value),
    Deleted(Value),
    Unchanged(Value),
}

impl Outcome {
    pub fn into_object(self) -> Value {
        match self {
            Outcome::Created(v)
            | Outcome::Updated(v)
            | Outcome::Deleted(v)
            | Outcome::Unchanged(v) => v,
        }
    }
}

type ObjectKey = (String, String);

struct State {
    revision: u64,
    objects: HashMap<&'static str, BTreeMap<ObjectKey, Value>>,
    history: History,
}

/// The store, shared by all handlers.
pub struct Store {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<StoreEvent>>,
}

/// A watch's starting point: the events to replay and the live feed after them.
pub struct Subscription {
    pub replay: Vec<Arc<StoreEvent>>,
    pub live: broadcast::Receiver<Arc<StoreEvent>>,
    /// The resourceVersion the replay brings the watcher up to.
    pub revision: u64,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty store whose history keeps [`HISTORY_LEN`] events and [`HISTORY_BYTES`].
    pub fn new() -> Store {
        Self::with_history_limits(HISTORY_LEN, HISTORY_BYTES)
    }

    /// An empty store whose history keeps at most `events` events and `bytes` bytes of
    /// objects (tests use small bounds to reach them quickly).
    pub fn with_history_limits(events: usize, bytes: usize) -> Store {
        let (sender, _) = broadcast::channel(HISTORY_LEN);
        Store {
            state: Mutex::new(State {
                revision: 1,
                objects: HashMap::new(),
                history: History::new(1, events, bytes),
            }),
            events: sender,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current resourceVersion of the whole store.
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// How many events the history keeps and the bytes of objects they hold.
    pub fn history_usage(&self) -> (usize, usize) {
        self.lock().history.usage()
    }

    pub fn get(&self, resource: &'static str, namespace: &str, name: &str) -> Option<Value> {
        let state = self.lock();
        state
            .objects
            .get(resource)
            .and_then(|objects| objects.get(&(namespace.to_string(), name.to_string())))
            .cloned()
    }

    /// All objects of a resource (in one namespace if given), sorted by namespace and name,
    /// with the store revision they are consistent with.
    pub fn list(&self, resource: &'static str, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let state = self.lock();
        let items = match state.objects.get(resource) {
            Some(objects) => objects
                .iter()
                .filter(|((ns, _), _)| namespace.is_none_or(|wanted| ns == wanted))
                .map(|(_, v)| v.clone())
                .collect(),
            None => Vec::new(),
        };
        (items, state.revision)
    }

    /// Reads the object (if any), lets `decide` choose a change, and applies it atomically:
    /// the new resourceVersion is set, the event recorded and broadcast. With `dry_run` the
    /// change is computed but not stored (and, as a dry run never reaches etcd, not limited
    /// in size). An object over [`MAX_OBJECT_BYTES`] is refused as etcd refuses it.
    pub fn mutate(
        &self,
        resource: &'static str,
        namespace: &str,
        name: &str,
        dry_run: bool,
        decide: impl FnOnce(Option<&Value>) -> ApiResult<Change>,
    ) -> ApiResult<Outcome> {
        let mut state = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let current = state
            .objects
            .get(resource)
            .and_then(|o| o.get(&key))
            .cloned();
        let change = decide(current.as_ref())?;
        let next_revision = state.revision + 1;
        let (event_type, mut object) = match change {
            Change::Keep(v) => return Ok(Outcome::Unchanged(v)),
            Change::Put(object) if current.is_some() => (EventType::Modified, object),
            Change::Put(object) => (EventType::Added, object),
            Change::Delete(_) if current.is_none() => {
                return Err(ApiError::internal("delete of a missing object"));
            }
            Change::Delete(object) => (EventType::Deleted, object),
        };
        set_resource_version(&mut object, next_revision);
        let outcome = |object| match event_type {
            EventType::Added => Outcome::Created(object),
            EventType::Modified => Outcome::Updated(object),
            EventType::Deleted => Outcome::Deleted(object),
        };
        if dry_run {
            return Ok(outcome(object));
        }
        let object_size = json_size(&object);
        if event_type != EventType::Deleted && object_size > MAX_OBJECT_BYTES {
            return Err(ApiError::etcd_request_too_large());
        }
        state.revision = next_revision;
        let objects = state.objects.entry(resource).or_default();
        match event_type {
            EventType::Deleted => objects.remove(&key),
            _ => objects.insert(key, object.clone()),
        };
        let size = object_size + current.as_ref().map_or(0, json_size);
        let event = Arc::new(StoreEvent {
            resource_version: next_revision,
            event_type,
            resource,
            namespace: namespace.to_string(),
            object: object.clone(),
            previous: current,
            size,
        });
        state.history.push(event.clone());
        // No receivers is fine: nobody watches yet.
        let _ = self.events.send(event);
        Ok(outcome(object))
    }

    /// Waits until the store's revision reaches `revision`, for at most `timeout`, as the
    /// watch cache waits to be fresh enough for a read; the current revision when it has not.
    pub async fn wait_for_revision(
        &self,
        revision: u64,
        timeout: std::time::Duration,
    ) -> Result<(), u64> {
        // Subscribed before the check, so that no change between the two is missed.
        let mut events = self.events.subscribe();
        let reached = async {
            while self.revision() < revision {
                match events.recv().await {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    // The sender lives as long as the store: this never ends the wait.
                    Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
                }
            }
        };
        let _ = tokio::time::timeout(timeout, reached).await;
        match self.revision() {
            current if current < revision => Err(current),
            _ => Ok(()),
        }
    }

    /// Starts a watch on `resource`. `from` None means "from now, with the current objects as
    /// synthetic ADDED events"; Some(rv) replays the history after rv, or fails with 410 Gone
    /// when that part of the history is gone.
    pub fn subscribe(&self, resource: &'static str, from: Option<u64>) -> ApiResult<Subscription> {
        let state = self.lock();
        let live = self.events.subscribe();
        match from {
            None => {
                let replay = state
                    .objects
                    .get(resource)
                    .map(|objects| {
                        objects
                            .iter()
                            .map(|((ns, _), object)| {
                                Arc::new(StoreEvent {
                                    resource_version: object_revision(object),
                                    event_type: EventType::Added,
                                    resource,
                                    namespace: ns.clone(),
                                    object: object.clone(),
                                    previous: None,
                                    size: 0,
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Subscription {
                    replay,
                    live,
                    revision: state.revision,
                })
            }
            Some(rv) => {
                let compacted = state.history.compacted();
                if rv < compacted {
                    return Err(ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        compacted + 1
                    )));
                }
                let replay = state
                    .history
                    .iter()
                    .filter(|e| e.resource_version > rv && e.resource == resource)
                    .cloned()
                    .collect();
                Ok(Subscription {
                    replay,
                    live,
                    revision: rv.max(state.revision),
                })
            }
        }
    }
}

fn set_resource_version(object: &mut Value, revision: u64) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
}

/// The resourceVersion of an object as a number (0 when missing or malformed).
pub fn object_revision(object: &Value) -> u64 {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config_map(name: &str, bytes: usize) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"}, "data": {"v": "x".repeat(bytes)}})
    }

    fn put(store: &Store, name: &str, object: Value) -> ApiResult<Outcome> {
        store.mutate("/configmaps", "ns", name, false, |_| {
            Ok(Change::Put(object))
        })
    }

    fn delete(store: &Store, name: &str) {
        store
            .mutate("/configmaps", "ns", name, false, |current| {
                Ok(Change::Delete(current.unwrap().clone()))
            })
            .unwrap();
    }

    #[test]
    fn large_objects_leave_the_history_past_its_byte_bound() {
        const BOUND: usize = 4 * 1024 * 1024;
        let store = Store::with_history_limits(100, BOUND);
        let before = store.revision();
        for i in 0..5 {
            let name = format!("big-{i}");
            put(&store, &name, config_map(&name, 1024 * 1024)).unwrap();
            delete(&store, &name);
            let (_, bytes) = store.history_usage();
            assert!(bytes <= BOUND, "{bytes} bytes kept");
        }
        // Each create weighs 1 MiB and each delete 2 MiB (the object and the one before).
        let (events, bytes) = store.history_usage();
        assert!(events < 10 && bytes > 2 * 1024 * 1024, "{events} {bytes}");
        // Readers from before the dropped events get 410 Expired, for watches and lists.
        let error = store.subscribe("/configmaps", Some(before)).err().unwrap();
        assert_eq!(error.code, 410);
        assert_eq!(
            store.list_at("/configmaps", None, Some(before)),
            Err(Unavailable::Compacted)
        );
        // Past the event bound, small objects push the large ones out entirely.
        for i in 0..100 {
            put(&store, &format!("small-{i}"), config_map("s", 10)).unwrap();
        }
        let (events, bytes) = store.history_usage();
        assert!(bytes < 64 * 1024, "{events} events, {bytes} bytes");
    }

    #[test]
    fn an_object_over_etcds_request_limit_is_refused_as_kube_apiserver_refuses_it() {
        let store = Store::new();
        let error = put(&store, "big", config_map("big", MAX_OBJECT_BYTES)).unwrap_err();
        assert_eq!(error.code, 500);
        assert_eq!(error.message, "etcdserver: request is too large");
        assert!(error.to_status().get("reason").is_none());
        assert!(store.get("/configmaps", "ns", "big").is_none());
        assert_eq!(store.history_usage(), (0, 0));
        // A dry run never reaches etcd; an object just under the limit is stored.
        let dry = store.mutate("/configmaps", "ns", "big", true, |_| {
            Ok(Change::Put(config_map("big", MAX_OBJECT_BYTES)))
        });
        assert!(dry.is_ok());
        put(&store, "fits", config_map("fits", MAX_OBJECT_BYTES - 200)).unwrap();
        let grown = put(&store, "fits", config_map("fits", MAX_OBJECT_BYTES));
        assert_eq!(grown.unwrap_err().code, 500);
    }
}
