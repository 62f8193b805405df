//! The garbage collector: objects whose owners are all gone are deleted.
//!
//! Like kube-controller-manager's, it keeps a graph of every object's uid and owner
//! references, fed by watches on every resource discovery lists (with `list`, `watch` and
//! `delete`). When an owner disappears, or an object shows up whose owners are unknown, the
//! owners are looked up live on the API server (the watches of different resources are not
//! ordered with respect to each other) and, if none of them exists any more (by uid), the
//! object is deleted with background propagation, which cascades further down.
//!
//! It also honours the two deletion finalizers the API server sets for non-background
//! propagation: `orphan` (the dependents lose their owner reference) and
//! `foregroundDeletion` (the dependents are deleted first, then the owner goes).

use std::collections::HashMap;

use anyhow::Context as _;
use futures::StreamExt as _;
use futures::stream::SelectAll;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::{Discovery, Scope, verbs};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt as _};

use crate::reconcile_error::is_not_found;

const ORPHAN_FINALIZER: &str = "orphan";
const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// What the graph remembers of one object.
#[derive(Debug, Clone)]
struct Node {
    resource: ApiResource,
    namespaced: bool,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    deleting: bool,
    finalizers: Vec<String>,
}

/// Resources by group/version/kind, to turn an owner reference into an API path.
type ResourceMap = HashMap<(String, String), (ApiResource, bool)>;

/// Runs until `shutdown` resolves. Discovery failures are retried with a pause (the
/// API server may still be starting its discovery documents).
pub(crate) async fn run(
    client: Client,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    tokio::select! {
        () = shutdown => {}
        () = collect(client) => {}
    }
}

async fn collect(client: Client) {
    let resources = loop {
        match watchable_resources(&client).await {
            Ok(resources) => break resources,
            Err(error) => {
                tracing::debug!(%error, "garbage collector discovery failed, retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    };
    let by_kind: ResourceMap = resources
        .iter()
        .map(|(resource, namespaced)| {
            (
                (resource.api_version.clone(), resource.kind.clone()),
                (resource.clone(), *namespaced),
            )
        })
        .collect();

    let mut events = SelectAll::new();
    for (resource, namespaced) in resources {
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let stream = watcher(api, watcher::Config::default())
            .map(move |event| (resource.clone(), namespaced, event))
            .boxed();
        events.push(stream);
    }

    let mut graph: HashMap<String, Node> = HashMap::new();
    while let Some((resource, namespaced, event)) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::trace!(%error, "garbage collector watch error (retrying)");
                continue;
            }
        };
        let collector = Collector {
            client: &client,
            by_kind: &by_kind,
        };
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                let Some(uid) = object.uid() else { continue };
                let node = node_of(&resource, namespaced, &object);
                graph.insert(uid.clone(), node.clone());
                collector.on_present(&graph, &uid, &node).await;
            }
            watcher::Event::Delete(object) => {
                let Some(uid) = object.uid() else { continue };
                let gone = graph.remove(&uid);
                collector.on_gone(&graph, &uid, gone.as_ref()).await;
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
}

fn node_of(resource: &ApiResource, namespaced: bool, object: &DynamicObject) -> Node {
    Node {
        resource: resource.clone(),
        namespaced,
        namespace: object.namespace(),
        name: object.name_any(),
        owners: object.owner_references().to_vec(),
        deleting: object.metadata.deletion_timestamp.is_some(),
        finalizers: object.finalizers().to_vec(),
    }
}

/// Every resource the collector can follow: list, watch and delete.
async fn watchable_resources(client: &Client) -> anyhow::Result<Vec<(ApiResource, bool)>> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .context("discovering the API resources")?;
    Ok(discovery
        .groups()
        .flat_map(|group| group.recommended_resources())
        .filter(|(_, capabilities)| {
            capabilities.supports_operation(verbs::LIST)
                && capabilities.supports_operation(verbs::WATCH)
                && capabilities.supports_operation(verbs::DELETE)
        })
        .map(|(resource, capabilities)| (resource, capabilities.scope == Scope::Namespaced))
        .collect())
}

struct Collector<'a> {
    client: &'a Client,
    by_kind: &'a ResourceMap,
}

impl Collector<'_> {
    fn api_for(&self, node: &Node) -> Api<DynamicObject> {
        match (&node.namespace, node.namespaced) {
            (Some(namespace), true) => {
                Api::namespaced_with(self.client.clone(), namespace, &node.resource)
            }
            _ => Api::all_with(self.client.clone(), &node.resource),
        }
    }

    /// An object was added or changed.
    async fn on_present(&self, graph: &HashMap<String, Node>, uid: &str, node: &Node) {
        if node.deleting {
            if node.finalizers.iter().any(|f| f == ORPHAN_FINALIZER) {
                self.orphan_dependents(graph, uid, node).await;
            }
            if node.finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) {
                self.delete_dependents_first(graph, uid, node).await;
            }
        }
        let unknown_owner = node
            .owners
            .iter()
            .any(|owner| !graph.contains_key(&owner.uid));
        if unknown_owner && !node.deleting {
            self.delete_if_orphaned(node).await;
        }
    }

    /// An object is gone: its dependents may be orphans now, and an owner deleted in the
    /// foreground may be waiting for it.
    async fn on_gone(&self, graph: &HashMap<String, Node>, uid: &str, gone: Option<&Node>) {
        for dependent in graph
            .values()
            .filter(|node| node.owners.iter().any(|o| o.uid == uid))
        {
            if !dependent.deleting {
                self.delete_if_orphaned(dependent).await;
            }
        }
        for owner in gone.iter().flat_map(|node| node.owners.iter()) {
            if let Some(owner_node) = graph.get(&owner.uid)
                && owner_node.deleting
                && owner_node
                    .finalizers
                    .iter()
                    .any(|f| f == FOREGROUND_FINALIZER)
            {
                self.delete_dependents_first(graph, &owner.uid, owner_node)
                    .await;
            }
        }
    }

    /// Deletes `node` when none of its owners exists on the API server (by uid).
    async fn delete_if_orphaned(&self, node: &Node) {
        if node.owners.is_empty() {
            return;
        }
        for owner in &node.owners {
            match self.owner_exists(node, owner).await {
                Ok(false) => {}
                Ok(true) => return,
                Err(error) => {
                    tracing::debug!(%error, "garbage collector could not look up an owner");
                    return;
                }
            }
        }
        tracing::debug!(name = %node.name, "garbage collecting an object whose owners are gone");
        if let Err(error) = self
            .api_for(node)
            .delete(&node.name, &DeleteParams::background())
            .await
            && !is_not_found(&error)
        {
            tracing::debug!(%error, "garbage collector could not delete an object");
        }
    }

    async fn owner_exists(&self, dependent: &Node, owner: &OwnerReference) -> anyhow::Result<bool> {
        let Some((resource, namespaced)) = self
            .by_kind
            .get(&(owner.api_version.clone(), owner.kind.clone()))
        else {
            // An owner kind the API server does not serve cannot be checked: keep the object.
            tracing::trace!(api_version = %owner.api_version, kind = %owner.kind, "owner kind unknown to discovery");
            return Ok(true);
        };
        let api = match (&dependent.namespace, namespaced) {
            (Some(namespace), true) => {
                Api::<DynamicObject>::namespaced_with(self.client.clone(), namespace, resource)
            }
            _ => Api::<DynamicObject>::all_with(self.client.clone(), resource),
        };
        let found = api.get_opt(&owner.name).await?;
        Ok(found.is_some_and(|object| object.uid().as_deref() == Some(owner.uid.as_str())))
    }

    /// `orphan` finalizer: dependents lose the owner reference, then the finalizer goes.
    async fn orphan_dependents(&self, graph: &HashMap<String, Node>, uid: &str, node: &Node) {
        for dependent in graph
            .values()
            .filter(|n| n.owners.iter().any(|o| o.uid == uid))
        {
            let owners: Vec<&OwnerReference> =
                dependent.owners.iter().filter(|o| o.uid != uid).collect();
            let patch = serde_json::json!({ "metadata": { "ownerReferences": owners } });
            if let Err(error) = self
                .api_for(dependent)
                .patch(
                    &dependent.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                && !is_not_found(&error)
            {
                tracing::debug!(%error, "garbage collector could not orphan a dependent");
                return;
            }
        }
        self.remove_finalizer(node, ORPHAN_FINALIZER).await;
    }

    /// `foregroundDeletion` finalizer: delete the dependents; once none that blocks the
    /// owner's deletion is left, remove the finalizer so the owner goes.
    async fn delete_dependents_first(&self, graph: &HashMap<String, Node>, uid: &str, node: &Node) {
        let dependents: Vec<&Node> = graph
            .values()
            .filter(|n| n.owners.iter().any(|o| o.uid == uid))
            .collect();
        for dependent in &dependents {
            if !dependent.deleting
                && let Err(error) = self
                    .api_for(dependent)
                    .delete(&dependent.name, &DeleteParams::foreground())
                    .await
                && !is_not_found(&error)
            {
                tracing::debug!(%error, "garbage collector could not delete a dependent");
            }
        }
        let blocking = dependents.iter().any(|dependent| {
            dependent
                .owners
                .iter()
                .any(|o| o.uid == uid && o.block_owner_deletion == Some(true))
        });
        if !blocking {
            self.remove_finalizer(node, FOREGROUND_FINALIZER).await;
        }
    }

    async fn remove_finalizer(&self, node: &Node, finalizer: &str) {
        let remaining: Vec<&String> = node.finalizers.iter().filter(|f| *f != finalizer).collect();
        let patch = serde_json::json!({ "metadata": { "finalizers": remaining } });
        if let Err(error) = self
            .api_for(node)
            .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            && !is_not_found(&error)
        {
            tracing::debug!(%error, "garbage collector could not remove a finalizer");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_keeps_owner_references_and_deletion_state() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "default", "uid": "p",
                         "deletionTimestamp": "2024-01-01T00:00:00Z",
                         "finalizers": ["foregroundDeletion"],
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                              "name": "web", "uid": "s", "controller": true}]},
        }))
        .unwrap();
        let resource = ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&());
        let node = node_of(&resource, true, &object);
        assert_eq!(node.owners[0].uid, "s");
        assert!(node.deleting);
        assert_eq!(node.finalizers, vec!["foregroundDeletion".to_string()]);
        assert_eq!(node.namespace.as_deref(), Some("default"));
    }
}
