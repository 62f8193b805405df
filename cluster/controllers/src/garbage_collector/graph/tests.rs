use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;

fn owner_ref(uid: &str, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "StatefulSet".into(),
        name: "web".into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(block),
    }
}

fn set(uid: &str, finalizers: &[&str], deleting: bool) -> Node {
    Node {
        resource: ApiResource::erase::<StatefulSet>(&()),
        namespaced: true,
        namespace: Some("default".into()),
        name: "web".into(),
        uid: uid.into(),
        owners: Vec::new(),
        deleting,
        finalizers: finalizers.iter().map(|f| f.to_string()).collect(),
    }
}

fn pod(uid: &str, owners: Vec<OwnerReference>) -> Node {
    Node {
        resource: ApiResource::erase::<Pod>(&()),
        namespaced: true,
        namespace: Some("default".into()),
        name: uid.into(),
        uid: uid.into(),
        owners,
        deleting: false,
        finalizers: Vec::new(),
    }
}

fn attempt(uid: &str) -> Task {
    Task::AttemptToDelete(uid.into())
}

#[test]
fn node_keeps_owner_references_and_deletion_state() {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "uid": "p",
                     "deletionTimestamp": "2024-01-01T00:00:00Z",
                     "finalizers": ["foregroundDeletion"],
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                          "name": "web", "uid": "s", "controller": true}]},
    }))
    .unwrap();
    let node = Node::of(&ApiResource::erase::<Pod>(&()), true, &object).unwrap();
    assert_eq!(node.owners[0].uid, "s");
    assert!(node.is_deleting_dependents());
    assert!(!node.is_orphaning());
    assert_eq!(node.namespace.as_deref(), Some("default"));
}

#[test]
fn an_owner_marked_orphan_is_orphaned_once() {
    let mut graph = Graph::default();
    assert!(graph.apply(set("s", &[], false)).is_empty());
    assert!(graph.apply(pod("p", vec![owner_ref("s", true)])).is_empty());
    let marked = set("s", &[ORPHAN_FINALIZER], true);
    assert_eq!(
        graph.apply(marked.clone()),
        [Task::AttemptToOrphan("s".into())]
    );
    assert!(graph.apply(marked).is_empty(), "only on the transition");
}

#[test]
fn a_foreground_deletion_attempts_every_dependent_then_the_owner() {
    let mut graph = Graph::default();
    graph.apply(set("s", &[], false));
    graph.apply(pod("a", vec![owner_ref("s", true)]));
    graph.apply(pod("b", vec![owner_ref("s", false)]));
    let mut tasks = graph.apply(set("s", &[FOREGROUND_FINALIZER], true));
    let owner = tasks.pop();
    tasks.sort_by_key(|t| format!("{t:?}"));
    assert_eq!(tasks, [attempt("a"), attempt("b")]);
    assert_eq!(owner, Some(attempt("s")));
    assert_eq!(
        graph
            .blocking_dependents("s")
            .map(|n| n.uid.as_str())
            .collect::<Vec<_>>(),
        ["a"]
    );
    // A dependent going away brings the owner back; so does one that stops blocking.
    assert_eq!(graph.remove("a"), [attempt("s")]);
    assert_eq!(
        graph.apply(pod("b", vec![owner_ref("s", true)])),
        [attempt("s"), attempt("b")],
        "blockOwnerDeletion changed, and the owner is deleting its dependents"
    );
}

#[test]
fn a_gone_owner_sends_its_dependents_to_be_checked() {
    let mut graph = Graph::default();
    graph.apply(set("s", &[], false));
    graph.apply(pod("a", vec![owner_ref("s", true)]));
    graph.apply(pod("lonely", Vec::new()));
    assert_eq!(graph.remove("s"), [attempt("a")]);
    assert!(graph.remove("s").is_empty(), "a second deletion is nothing");
}

#[test]
fn an_unknown_owner_is_checked_once_when_it_appears() {
    let mut graph = Graph::default();
    let orphan = pod("p", vec![owner_ref("ghost", true)]);
    assert_eq!(graph.apply(orphan.clone()), [attempt("p")]);
    assert!(
        graph.apply(orphan).is_empty(),
        "a status change is not a new owner"
    );
}

#[test]
fn a_relist_removes_what_it_no_longer_shows() {
    let mut graph = Graph::default();
    graph.apply(set("s", &[], false));
    graph.apply(pod("a", vec![owner_ref("s", true)]));
    graph.apply(pod("b", vec![owner_ref("s", true)]));
    let pods = ApiResource::erase::<Pod>(&());
    graph.relist_started(&pods);
    graph.apply(pod("a", vec![owner_ref("s", true)]));
    assert!(graph.relist_done(&pods).is_empty());
    assert!(
        graph.get("b").is_none(),
        "b vanished while the watch was down"
    );
    assert!(graph.get("s").is_some(), "other resources are not touched");
}
