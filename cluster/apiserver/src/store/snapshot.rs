//! Lists at a past resourceVersion, as etcd serves a range read `WithRev`: the current objects
//! with the history's later changes undone. Every page of one paged list is read at the
//! resourceVersion of its first page this way, so that the pages are consistent.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{EventType, Store};

/// Why a list cannot be read at the revision asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The history after that revision has been compacted away (etcd's `ErrCompacted`).
    Compacted,
    /// The store has not reached that revision yet; `current` is where it is.
    Future { current: u64 },
}

impl Store {
    /// All objects of `resource` (in one namespace if given) as they were at `revision`
    /// (None: now), with the revision they are consistent with. Unsorted: the caller orders
    /// them by its own key.
    pub fn list_at(
        &self,
        resource: &'static str,
        namespace: Option<&str>,
        revision: Option<u64>,
    ) -> Result<(Vec<Value>, u64), Unavailable> {
        let state = self.lock();
        let at = revision.unwrap_or(state.revision);
        if at > state.revision {
            return Err(Unavailable::Future {
                current: state.revision,
            });
        }
        // The changes after `at` must all still be in the history to be undone.
        if at < state.history.compacted() {
            return Err(Unavailable::Compacted);
        }
        let in_namespace = |ns: &str| namespace.is_none_or(|wanted| ns == wanted);
        let mut objects: BTreeMap<(String, String), Value> = state
            .objects
            .get(resource)
            .map(|objects| {
                objects
                    .iter()
                    .filter(|((ns, _), _)| in_namespace(ns))
                    .map(|(key, object)| (key.clone(), object.clone()))
                    .collect()
            })
            .unwrap_or_default();
        // Newest first: each change is undone on the state it left.
        let later = state
            .history
            .iter()
            .rev()
            .take_while(|event| event.resource_version > at)
            .filter(|event| event.resource == resource && in_namespace(&event.namespace));
        for event in later {
            let name = event
                .object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let key = (event.namespace.clone(), name);
            match (event.event_type, &event.previous) {
                (EventType::Added, _) | (_, None) => {
                    objects.remove(&key);
                }
                (EventType::Modified | EventType::Deleted, Some(previous)) => {
                    objects.insert(key, previous.clone());
                }
            }
        }
        Ok((objects.into_values().collect(), at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Change;
    use serde_json::json;

    fn put(store: &Store, name: &str, data: &str) -> u64 {
        let object = json!({"metadata": {"name": name, "namespace": "ns"}, "data": {"v": data}});
        let outcome = store
            .mutate("/configmaps", "ns", name, false, |_| {
                Ok(Change::Put(object))
            })
            .unwrap();
        crate::store::object_revision(&outcome.into_object())
    }

    fn names_and_data(objects: &[Value]) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = objects
            .iter()
            .map(|o| {
                (
                    o["metadata"]["name"].as_str().unwrap().to_string(),
                    o["data"]["v"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        pairs.sort();
        pairs
    }

    #[test]
    fn undoes_creates_updates_and_deletes_after_the_revision() {
        let store = Store::new();
        put(&store, "a", "1");
        let at = put(&store, "b", "1");
        put(&store, "c", "1");
        put(&store, "a", "2");
        store
            .mutate("/configmaps", "ns", "b", false, |current| {
                Ok(Change::Delete(current.unwrap().clone()))
            })
            .unwrap();
        let (then, revision) = store.list_at("/configmaps", Some("ns"), Some(at)).unwrap();
        assert_eq!(revision, at);
        assert_eq!(
            names_and_data(&then),
            [("a".into(), "1".into()), ("b".into(), "1".into())]
        );
        let (now, _) = store.list_at("/configmaps", None, None).unwrap();
        assert_eq!(
            names_and_data(&now),
            [("a".into(), "2".into()), ("c".into(), "1".into())]
        );
        assert_eq!(
            store.list_at("/configmaps", None, Some(at + 100)),
            Err(Unavailable::Future {
                current: store.revision()
            })
        );
    }

    #[test]
    fn a_revision_older_than_the_history_is_compacted() {
        let store = Store::new();
        let first = put(&store, "a", "0");
        for i in 0..crate::store::HISTORY_LEN {
            put(&store, "a", &i.to_string());
        }
        // The history keeps the changes after `first`, not the one that made it.
        assert!(store.list_at("/configmaps", None, Some(first)).is_ok());
        assert_eq!(
            store.list_at("/configmaps", None, Some(first - 1)),
            Err(Unavailable::Compacted)
        );
    }
}
