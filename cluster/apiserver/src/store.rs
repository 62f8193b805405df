//! The in-memory object store: one global, monotonically increasing resourceVersion (as etcd's
//! revision), objects as JSON values, and a bounded history of changes so that watches can
//! resume from a resourceVersion, answering 410 Gone once it has been compacted away.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::errors::{ApiError, ApiResult};

mod snapshot;
pub use snapshot::Unavailable;

/// How many past events are kept for watch resumption (and buffered per watcher).
pub const HISTORY_LEN: usize = 10_000;

/// The type of a watch event, as written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
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
    pub fn object(&self) -> &Value {
        match self {
            Outcome::Created(v)
            | Outcome::Updated(v)
            | Outcome::Deleted(v)
            | Outcome::Unchanged(v) => v,
        }
    }

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
    history: VecDeque<Arc<StoreEvent>>,
    /// Events with a resourceVersion up to this one are no longer in `history`.
    compacted: u64,
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
    pub fn new() -> Store {
        let (events, _) = broadcast::channel(HISTORY_LEN);
        Store {
            state: Mutex::new(State {
                revision: 1,
                objects: HashMap::new(),
                history: VecDeque::new(),
                compacted: 1,
            }),
            events,
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
    /// change is computed but not stored.
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
        let (event_type, object) = match change {
            Change::Keep(v) => return Ok(Outcome::Unchanged(v)),
            Change::Put(mut object) => {
                set_resource_version(&mut object, next_revision);
                let t = if current.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                (t, object)
            }
            Change::Delete(mut object) => {
                if current.is_none() {
                    return Err(ApiError::internal("delete of a missing object"));
                }
                set_resource_version(&mut object, next_revision);
                (EventType::Deleted, object)
            }
        };
        if dry_run {
            return Ok(match event_type {
                EventType::Added => Outcome::Created(object),
                EventType::Modified => Outcome::Updated(object),
                EventType::Deleted => Outcome::Deleted(object),
            });
        }
        state.revision = next_revision;
        let objects = state.objects.entry(resource).or_default();
        match event_type {
            EventType::Deleted => {
                objects.remove(&key);
            }
            _ => {
                objects.insert(key, object.clone());
            }
        }
        let event = Arc::new(StoreEvent {
            resource_version: next_revision,
            event_type,
            resource,
            namespace: namespace.to_string(),
            object: object.clone(),
            previous: current,
        });
        state.history.push_back(event.clone());
        while state.history.len() > HISTORY_LEN {
            if let Some(old) = state.history.pop_front() {
                state.compacted = old.resource_version;
            }
        }
        // No receivers is fine: nobody watches yet.
        let _ = self.events.send(event);
        Ok(match event_type {
            EventType::Added => Outcome::Created(object),
            EventType::Modified => Outcome::Updated(object),
            EventType::Deleted => Outcome::Deleted(object),
        })
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
                if rv < state.compacted {
                    return Err(ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        state.compacted + 1
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
