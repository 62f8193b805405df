//! The garbage collector's picture of the cluster: every object's uid, owner references,
//! deletion state and finalizers (upstream's `GraphBuilder`), and which work each change
//! calls for (`processGraphChanges`, `processTransitions`). Pure: the API calls are in
//! `attempt`.

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt as _;
use kube::api::{ApiResource, DynamicObject};

/// The finalizer that asks the collector to orphan the dependents before the owner goes.
pub(super) const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer that asks the collector to delete the dependents before the owner goes.
pub(super) const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// What the graph remembers of one object.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub resource: ApiResource,
    pub namespaced: bool,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub owners: Vec<OwnerReference>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Node {
    /// The node of a watched object; `None` for an object without uid (never stored).
    pub fn of(resource: &ApiResource, namespaced: bool, object: &DynamicObject) -> Option<Node> {
        Some(Node {
            resource: resource.clone(),
            namespaced,
            namespace: object.namespace(),
            name: object.name_any(),
            uid: object.uid()?,
            owners: object.owner_references().to_vec(),
            deleting: object.metadata.deletion_timestamp.is_some(),
            finalizers: object.finalizers().to_vec(),
        })
    }

    fn has_finalizer(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }

    /// Being deleted in the foreground: waiting for its blocking dependents to go.
    pub fn is_deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND_FINALIZER)
    }

    /// Being deleted with orphan propagation: waiting for its dependents to be let go.
    pub fn is_orphaning(&self) -> bool {
        self.deleting && self.has_finalizer(ORPHAN_FINALIZER)
    }

    fn key(&self) -> ResourceKey {
        resource_key(&self.resource)
    }
}

/// A resource, by apiVersion and kind, as owner references name it.
pub(super) type ResourceKey = (String, String);

pub(super) fn resource_key(resource: &ApiResource) -> ResourceKey {
    (resource.api_version.clone(), resource.kind.clone())
}

/// Work for the collector, by the uid of the object it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Task {
    /// Delete the object if its owners are gone (or waiting for it), or, for an owner being
    /// deleted in the foreground, release it once its blocking dependents are gone
    /// (`attemptToDeleteItem`).
    AttemptToDelete(String),
    /// Take the owner's reference off its dependents, then its `orphan` finalizer
    /// (`attemptToOrphanWorker`).
    AttemptToOrphan(String),
}

/// Every object the watches have shown, by uid.
#[derive(Debug, Default)]
pub(super) struct Graph {
    nodes: HashMap<String, Node>,
    /// The uids each resource's watch has listed since it began (re)listing.
    relisting: HashMap<ResourceKey, HashSet<String>>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// The objects that name `uid` as an owner.
    pub fn dependents<'a>(&'a self, uid: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes
            .values()
            .filter(move |node| node.owners.iter().any(|owner| owner.uid == uid))
    }

    /// The dependents whose reference to `uid` has `blockOwnerDeletion: true`: those a
    /// foreground deletion of `uid` waits for.
    pub fn blocking_dependents<'a>(&'a self, uid: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes.values().filter(move |node| {
            node.owners
                .iter()
                .any(|owner| owner.uid == uid && owner.block_owner_deletion == Some(true))
        })
    }

    /// An object was added or changed: records it and returns the work it calls for.
    pub fn apply(&mut self, node: Node) -> Vec<Task> {
        if let Some(seen) = self.relisting.get_mut(&node.key()) {
            seen.insert(node.uid.clone());
        }
        let old = self.nodes.insert(node.uid.clone(), node.clone());
        let mut tasks = Vec::new();
        if node.is_orphaning() && !old.as_ref().is_some_and(Node::is_orphaning) {
            tasks.push(Task::AttemptToOrphan(node.uid.clone()));
        }
        if node.is_deleting_dependents() && !old.as_ref().is_some_and(Node::is_deleting_dependents)
        {
            tasks.extend(
                self.dependents(&node.uid)
                    .map(|dependent| Task::AttemptToDelete(dependent.uid.clone())),
            );
            tasks.push(Task::AttemptToDelete(node.uid.clone()));
        }
        let old_owners = old.map(|old| old.owners).unwrap_or_default();
        // An owner that no longer blocks on this object may be free to go now.
        for owner in &old_owners {
            let unblocked = node
                .owners
                .iter()
                .find(|o| o.uid == owner.uid)
                .is_none_or(|o| o.block_owner_deletion != owner.block_owner_deletion);
            if unblocked
                && self
                    .get(&owner.uid)
                    .is_some_and(Node::is_deleting_dependents)
            {
                tasks.push(Task::AttemptToDelete(owner.uid.clone()));
            }
        }
        // Owners nobody has seen may not exist (checked live), and an owner deleting its
        // dependents wants this one gone too, even if it appeared after that began.
        let needs_check = node.owners.iter().any(|owner| {
            let added = !old_owners.iter().any(|o| o.uid == owner.uid);
            match self.get(&owner.uid) {
                None => added,
                Some(owner) => owner.is_deleting_dependents() && !node.deleting,
            }
        });
        if needs_check {
            tasks.push(Task::AttemptToDelete(node.uid.clone()));
        }
        tasks
    }

    /// An object is gone: its dependents may be garbage now, and an owner deleting its
    /// dependents in the foreground may be free to go.
    pub fn remove(&mut self, uid: &str) -> Vec<Task> {
        let Some(gone) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        let mut tasks: Vec<Task> = self
            .dependents(uid)
            .map(|dependent| Task::AttemptToDelete(dependent.uid.clone()))
            .collect();
        for owner in &gone.owners {
            if self
                .get(&owner.uid)
                .is_some_and(Node::is_deleting_dependents)
            {
                tasks.push(Task::AttemptToDelete(owner.uid.clone()));
            }
        }
        tasks
    }

    /// A resource's watch starts a (re)list: what it lists next is the whole of it.
    pub fn relist_started(&mut self, resource: &ApiResource) {
        self.relisting
            .insert(resource_key(resource), HashSet::new());
    }

    /// A resource's (re)list is complete: objects of it that the list did not show were
    /// deleted while the watch was down, and are removed as if their deletion was seen.
    pub fn relist_done(&mut self, resource: &ApiResource) -> Vec<Task> {
        let key = resource_key(resource);
        let Some(seen) = self.relisting.remove(&key) else {
            return Vec::new();
        };
        let vanished: Vec<String> = self
            .nodes
            .values()
            .filter(|node| node.key() == key && !seen.contains(&node.uid))
            .map(|node| node.uid.clone())
            .collect();
        vanished.iter().flat_map(|uid| self.remove(uid)).collect()
    }
}

#[cfg(test)]
mod tests;
