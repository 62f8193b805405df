//! The collector's work on the API server, as kube-controller-manager's `garbagecollector.go`
//! does it: `attemptToDeleteItem` (classify the owners live, then keep, unlink or delete),
//! `processDeletingDependentsItem` (an owner deleted in the foreground goes once its blocking
//! dependents are gone), `attemptToOrphanWorker` (owner references off, then the `orphan`
//! finalizer), and `removeFinalizer`.

use std::collections::HashMap;

use anyhow::Context as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Preconditions, PropagationPolicy};
use kube::{Api, Client, ResourceExt as _};

use super::graph::{FOREGROUND_FINALIZER, Graph, Node, ORPHAN_FINALIZER, Task};
use crate::merge_patch::MergePatch;
use crate::reconcile_error::is_not_found;

/// Resources by apiVersion and kind, to turn an owner reference into an API path.
pub(super) type ResourceMap = HashMap<(String, String), (ApiResource, bool)>;

/// How often a read-modify-write of one object is tried against concurrent writers.
const CONFLICT_RETRIES: usize = 5;

/// What an owner reference points at, looked up live (`classifyReferences`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OwnerState {
    /// Exists (same uid) and is not deleting its dependents: keeps the object alive.
    Solid,
    /// Absent, or another object of that name (`isDangling`).
    Dangling,
    /// Exists and is being deleted in the foreground: waits for its dependents to go.
    WaitingForDependents,
}

/// What to do with an object that has owners, given what its owners are.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Verdict {
    Keep,
    /// A solid owner keeps it; the references to gone or waiting owners come off.
    RemoveReferences(Vec<String>),
    Delete(PropagationPolicy),
    /// Waited for by an owner while one of its own dependents waits for its dependents
    /// too: its references stop blocking (a possible cycle), then it goes in the foreground.
    UnblockThenDeleteInForeground,
}

/// What the graph knows of an object's own dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dependents {
    None,
    Some,
    /// At least one of them is itself being deleted in the foreground.
    SomeDeletingTheirOwn,
}

/// `attemptToDeleteItem`'s decision. `owners` pairs each owner uid with its state;
/// `dependents` and `finalizers` are the object's own.
pub(super) fn verdict(
    owners: &[(String, OwnerState)],
    dependents: Dependents,
    finalizers: &[String],
) -> Verdict {
    let of = |state: OwnerState| owners.iter().filter(move |(_, s)| *s == state);
    if of(OwnerState::Solid).next().is_some() {
        let stale: Vec<String> = owners
            .iter()
            .filter(|(_, state)| *state != OwnerState::Solid)
            .map(|(uid, _)| uid.clone())
            .collect();
        return if stale.is_empty() {
            Verdict::Keep
        } else {
            Verdict::RemoveReferences(stale)
        };
    }
    if of(OwnerState::WaitingForDependents).next().is_some() {
        // Its own dependents must go first too, so the waiting owner waits for them all.
        match dependents {
            Dependents::None => {}
            Dependents::Some => return Verdict::Delete(PropagationPolicy::Foreground),
            Dependents::SomeDeletingTheirOwn => return Verdict::UnblockThenDeleteInForeground,
        }
    }
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    Verdict::Delete(if has(ORPHAN_FINALIZER) {
        PropagationPolicy::Orphan
    } else if has(FOREGROUND_FINALIZER) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    })
}

/// What the graph knows of `uid`'s dependents.
fn dependents_of(graph: &Graph, uid: &str) -> Dependents {
    let mut dependents = graph.dependents(uid).peekable();
    if dependents.peek().is_none() {
        Dependents::None
    } else if dependents.any(Node::is_deleting_dependents) {
        Dependents::SomeDeletingTheirOwn
    } else {
        Dependents::Some
    }
}

/// The collector's API side.
pub(super) struct Collector<'a> {
    pub client: &'a Client,
    pub by_kind: &'a ResourceMap,
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

    /// Does `task`; returns the work it leads to. An error means "try again later".
    pub async fn run(&self, graph: &Graph, task: &Task) -> anyhow::Result<Vec<Task>> {
        match task {
            Task::AttemptToDelete(uid) => self.attempt_to_delete(graph, uid).await,
            Task::AttemptToOrphan(uid) => {
                self.attempt_to_orphan(graph, uid).await?;
                Ok(Vec::new())
            }
        }
    }

    /// The object as the API server holds it now, if it is still the one the graph knows.
    async fn latest(&self, node: &Node) -> anyhow::Result<Option<DynamicObject>> {
        let found = self
            .api_for(node)
            .get_opt(&node.name)
            .await
            .with_context(|| format!("reading {} {}", node.resource.kind, node.name))?;
        Ok(found.filter(|object| object.uid().as_deref() == Some(node.uid.as_str())))
    }

    async fn attempt_to_delete(&self, graph: &Graph, uid: &str) -> anyhow::Result<Vec<Task>> {
        let Some(item) = graph.get(uid) else {
            return Ok(Vec::new());
        };
        if item.is_deleting_dependents() {
            return self.process_deleting_dependents(graph, item).await;
        }
        if item.deleting {
            // On its way out already; its dependents are looked at once it is gone.
            return Ok(Vec::new());
        }
        let Some(latest) = self.latest(item).await? else {
            // Gone or replaced: the watch brings the deletion.
            return Ok(Vec::new());
        };
        let owners = latest.owner_references();
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        let mut states = Vec::new();
        for owner in owners {
            states.push((owner.uid.clone(), self.owner_state(item, owner).await?));
        }
        match verdict(&states, dependents_of(graph, uid), latest.finalizers()) {
            Verdict::Keep => {}
            Verdict::RemoveReferences(uids) => self.remove_owner_references(item, &uids).await?,
            Verdict::Delete(policy) => self.delete(item, &latest, policy).await?,
            Verdict::UnblockThenDeleteInForeground => {
                self.unblock_owner_references(item).await?;
                // Deleted as it is after the unblocking, which moved its resourceVersion.
                if let Some(unblocked) = self.latest(item).await? {
                    self.delete(item, &unblocked, PropagationPolicy::Foreground)
                        .await?;
                }
            }
        }
        Ok(Vec::new())
    }

    /// `processDeletingDependentsItem`: without blocking dependents left, the owner's
    /// `foregroundDeletion` finalizer comes off; otherwise its blocking dependents are
    /// attempted (again).
    async fn process_deleting_dependents(
        &self,
        graph: &Graph,
        owner: &Node,
    ) -> anyhow::Result<Vec<Task>> {
        let blocking: Vec<Task> = graph
            .blocking_dependents(&owner.uid)
            .filter(|dependent| !dependent.is_deleting_dependents())
            .map(|dependent| Task::AttemptToDelete(dependent.uid.clone()))
            .collect();
        if graph.blocking_dependents(&owner.uid).next().is_none() {
            self.remove_finalizer(owner, FOREGROUND_FINALIZER).await?;
        }
        Ok(blocking)
    }

    /// Live lookup of one owner (`isDangling` plus the deletion state).
    async fn owner_state(
        &self,
        dependent: &Node,
        owner: &OwnerReference,
    ) -> anyhow::Result<OwnerState> {
        let Some((resource, namespaced)) = self
            .by_kind
            .get(&(owner.api_version.clone(), owner.kind.clone()))
        else {
            // An owner kind the API server does not serve cannot be checked: keep the object.
            tracing::trace!(api_version = %owner.api_version, kind = %owner.kind, "owner kind unknown to discovery");
            return Ok(OwnerState::Solid);
        };
        let api = match (&dependent.namespace, namespaced) {
            (Some(namespace), true) => {
                Api::<DynamicObject>::namespaced_with(self.client.clone(), namespace, resource)
            }
            // A cluster-scoped object cannot have a namespaced owner; upstream refuses to
            // collect it rather than guess, and so do we.
            (None, true) => return Ok(OwnerState::Solid),
            _ => Api::<DynamicObject>::all_with(self.client.clone(), resource),
        };
        let found = api
            .get_opt(&owner.name)
            .await
            .with_context(|| format!("looking up owner {} {}", owner.kind, owner.name))?;
        Ok(match found {
            Some(object) if object.uid().as_deref() == Some(owner.uid.as_str()) => {
                let deleting = object.metadata.deletion_timestamp.is_some();
                if deleting
                    && object
                        .finalizers()
                        .iter()
                        .any(|f| f == FOREGROUND_FINALIZER)
                {
                    OwnerState::WaitingForDependents
                } else {
                    OwnerState::Solid
                }
            }
            _ => OwnerState::Dangling,
        })
    }

    /// `deleteObject`: deletes `node` with `policy`, on the condition that it is still the
    /// object `latest` was read from (uid and resourceVersion), so that an object adopted
    /// meanwhile is not taken for garbage. If only the resourceVersion moved and the owner
    /// references are those the decision saw, the deletion is sent again with the uid alone.
    async fn delete(
        &self,
        node: &Node,
        latest: &DynamicObject,
        policy: PropagationPolicy,
    ) -> anyhow::Result<()> {
        tracing::debug!(kind = %node.resource.kind, name = %node.name, ?policy, "garbage collecting");
        let api = self.api_for(node);
        let params = |resource_version: Option<String>| DeleteParams {
            propagation_policy: Some(policy.clone()),
            preconditions: Some(Preconditions {
                uid: Some(node.uid.clone()),
                resource_version,
            }),
            ..DeleteParams::default()
        };
        let first = api
            .delete(&node.name, &params(latest.resource_version()))
            .await;
        match first {
            Ok(_) => return Ok(()),
            Err(error) if is_not_found(&error) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(error).context(format!("deleting {}", node.name)),
        }
        let Some(live) = self.latest(node).await? else {
            // Gone, or replaced by another object of that name: nothing of ours to delete.
            return Ok(());
        };
        if live.owner_references() != latest.owner_references() {
            anyhow::bail!(
                "the owner references of {} changed; deciding again",
                node.name
            );
        }
        match api.delete(&node.name, &params(None)).await {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(error).context(format!("deleting {}", node.name)),
        }
    }

    /// `attemptToOrphanWorker`: every dependent loses its reference to the owner, then the
    /// owner its `orphan` finalizer.
    async fn attempt_to_orphan(&self, graph: &Graph, uid: &str) -> anyhow::Result<()> {
        let Some(owner) = graph.get(uid) else {
            return Ok(());
        };
        for dependent in graph.dependents(uid) {
            self.remove_owner_references(dependent, &[uid.to_string()])
                .await?;
        }
        self.remove_finalizer(owner, ORPHAN_FINALIZER).await
    }

    /// Takes the references to `owner_uids` off `node`: a merge patch guarded by the
    /// resourceVersion, read again on a conflict (as upstream's JSON merge patch path).
    async fn remove_owner_references(
        &self,
        node: &Node,
        owner_uids: &[String],
    ) -> anyhow::Result<()> {
        self.rewrite(node, |object| {
            let owners = object.owner_references();
            let kept: Vec<&OwnerReference> = owners
                .iter()
                .filter(|owner| !owner_uids.contains(&owner.uid))
                .collect();
            (kept.len() != owners.len()).then(|| {
                let kept = (!kept.is_empty()).then_some(kept);
                serde_json::json!({ "ownerReferences": kept })
            })
        })
        .await
        .with_context(|| format!("removing owner references from {}", node.name))
    }

    /// `unblockOwnerReferences`: every owner reference of `node` with `blockOwnerDeletion:
    /// true` gets `false`.
    async fn unblock_owner_references(&self, node: &Node) -> anyhow::Result<()> {
        self.rewrite(node, |object| {
            let owners = object.owner_references();
            let blocking = |o: &OwnerReference| o.block_owner_deletion == Some(true);
            owners.iter().any(blocking).then(|| {
                let unblocked: Vec<OwnerReference> = owners
                    .iter()
                    .cloned()
                    .map(|mut owner| {
                        if blocking(&owner) {
                            owner.block_owner_deletion = Some(false);
                        }
                        owner
                    })
                    .collect();
                serde_json::json!({ "ownerReferences": unblocked })
            })
        })
        .await
        .with_context(|| format!("unblocking the owner references of {}", node.name))
    }

    /// `removeFinalizer`: the live object without `finalizer`, if it still has it.
    async fn remove_finalizer(&self, node: &Node, finalizer: &str) -> anyhow::Result<()> {
        self.rewrite(node, |object| {
            let finalizers = object.finalizers();
            let kept: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
            (kept.len() != finalizers.len()).then(|| {
                let kept = (!kept.is_empty()).then_some(kept);
                serde_json::json!({ "finalizers": kept })
            })
        })
        .await
        .with_context(|| format!("removing the {finalizer} finalizer from {}", node.name))
    }

    /// Reads `node` live and merge-patches the metadata `change` computes from it (nothing
    /// when it returns `None`), with the resourceVersion read, retrying on conflicts.
    async fn rewrite(
        &self,
        node: &Node,
        change: impl Fn(&DynamicObject) -> Option<serde_json::Value>,
    ) -> anyhow::Result<()> {
        let api = self.api_for(node);
        for _ in 0..CONFLICT_RETRIES {
            let Some(object) = self.latest(node).await? else {
                return Ok(());
            };
            let Some(mut metadata) = change(&object) else {
                return Ok(());
            };
            metadata["resourceVersion"] = serde_json::json!(object.resource_version());
            let patch = serde_json::json!({ "metadata": metadata });
            match api.merge_patch(&node.name, &patch).await {
                Ok(_) => return Ok(()),
                Err(error) if is_not_found(&error) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(error) => return Err(error.into()),
            }
        }
        anyhow::bail!("still conflicting after {CONFLICT_RETRIES} tries; will retry later")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(states: &[(&str, OwnerState)]) -> Vec<(String, OwnerState)> {
        states.iter().map(|(u, s)| (u.to_string(), *s)).collect()
    }

    #[test]
    fn a_solid_owner_keeps_the_object_and_stale_references_go() {
        use OwnerState::*;
        assert_eq!(
            verdict(&owners(&[("a", Solid)]), Dependents::None, &[]),
            Verdict::Keep
        );
        assert_eq!(
            verdict(
                &owners(&[("a", Solid), ("b", Dangling), ("c", WaitingForDependents)]),
                Dependents::None,
                &[]
            ),
            Verdict::RemoveReferences(vec!["b".into(), "c".into()])
        );
    }

    #[test]
    fn without_solid_owners_the_object_is_deleted() {
        use OwnerState::*;
        let delete = |policy| Verdict::Delete(policy);
        assert_eq!(
            verdict(&owners(&[("a", Dangling)]), Dependents::Some, &[]),
            delete(PropagationPolicy::Background)
        );
        assert_eq!(
            verdict(
                &owners(&[("a", WaitingForDependents)]),
                Dependents::None,
                &[]
            ),
            delete(PropagationPolicy::Background),
            "a dependent without dependents of its own goes in the background"
        );
        assert_eq!(
            verdict(
                &owners(&[("a", WaitingForDependents)]),
                Dependents::Some,
                &[]
            ),
            delete(PropagationPolicy::Foreground),
            "so that the waiting owner also waits for the dependent's dependents"
        );
        assert_eq!(
            verdict(
                &owners(&[("a", Dangling)]),
                Dependents::Some,
                &["orphan".into()]
            ),
            delete(PropagationPolicy::Orphan),
            "a deletion finalizer already on the object is honoured"
        );
    }

    #[test]
    fn a_possible_cycle_of_foreground_deletions_is_broken_by_unblocking() {
        use OwnerState::*;
        assert_eq!(
            verdict(
                &owners(&[("a", WaitingForDependents)]),
                Dependents::SomeDeletingTheirOwn,
                &[]
            ),
            Verdict::UnblockThenDeleteInForeground
        );
        assert_eq!(
            verdict(
                &owners(&[("a", Dangling)]),
                Dependents::SomeDeletingTheirOwn,
                &[]
            ),
            Verdict::Delete(PropagationPolicy::Background),
            "without a waiting owner there is nothing to unblock"
        );
    }
}
