//! Ordinal decisions of the StatefulSet controller.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;
use crate::pod_state::test_pods;

fn set(replicas: i32, policy: &str) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "u", "generation": 2},
        "spec": {
            "replicas": replicas,
            "podManagementPolicy": policy,
            "serviceName": "nginx",
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
        },
    }))
    .unwrap()
}

fn pod(name: &str, phase: &str, ready: bool) -> Pod {
    let mut pod = test_pods::pod(name, phase, ready);
    pod.metadata.labels = Some(
        [(REVISION_LABEL.to_string(), "rev1".to_string())]
            .into_iter()
            .collect(),
    );
    pod
}

fn terminating(mut pod: Pod) -> Pod {
    pod.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::UNIX_EPOCH,
    ));
    pod
}

fn delete(name: &str, ordinal: i32) -> SetAction {
    SetAction::DeletePod {
        name: name.into(),
        ordinal,
    }
}

#[test]
fn ordered_ready_creates_only_the_first_missing_pod() {
    let set = set(3, "OrderedReady");
    assert_eq!(plan(&set, &[], "rev1"), vec![SetAction::CreatePod(0)]);
}

#[test]
fn ordered_ready_waits_for_the_predecessor_to_be_ready() {
    let set = set(3, "OrderedReady");
    assert_eq!(
        plan(&set, &[pod("web-0", "Pending", false)], "rev1"),
        vec![]
    );
    assert_eq!(
        plan(&set, &[pod("web-0", "Running", false)], "rev1"),
        vec![]
    );
    assert_eq!(
        plan(&set, &[pod("web-0", "Running", true)], "rev1"),
        vec![SetAction::CreatePod(1)]
    );
}

#[test]
fn parallel_creates_everything_at_once() {
    let set = set(3, "Parallel");
    assert_eq!(
        plan(&set, &[pod("web-1", "Pending", false)], "rev1"),
        vec![SetAction::CreatePod(0), SetAction::CreatePod(2)]
    );
}

#[test]
fn failed_pod_is_deleted_to_be_recreated() {
    let set = set(2, "OrderedReady");
    assert_eq!(
        plan(&set, &[pod("web-0", "Failed", false)], "rev1"),
        vec![delete("web-0", 0)]
    );
}

#[test]
fn scale_down_removes_the_highest_ordinal_first_one_at_a_time() {
    let set = set(1, "OrderedReady");
    let pods = [
        pod("web-0", "Running", true),
        pod("web-1", "Running", true),
        pod("web-2", "Running", true),
    ];
    assert_eq!(plan(&set, &pods, "rev1"), vec![delete("web-2", 2)]);
    let pods = [
        pod("web-0", "Running", true),
        pod("web-1", "Running", true),
        terminating(pod("web-2", "Running", true)),
    ];
    assert_eq!(
        plan(&set, &pods, "rev1"),
        vec![],
        "waits until web-2 is gone"
    );
}

#[test]
fn parallel_scale_down_removes_all_condemned() {
    let set = set(1, "Parallel");
    let pods = [
        pod("web-0", "Running", true),
        pod("web-1", "Running", true),
        pod("web-2", "Pending", false),
    ];
    assert_eq!(
        plan(&set, &pods, "rev1"),
        vec![delete("web-2", 2), delete("web-1", 1)]
    );
}

#[test]
fn rolling_update_replaces_old_revisions_from_the_top() {
    let set = set(2, "OrderedReady");
    let pods = [pod("web-0", "Running", true), pod("web-1", "Running", true)];
    assert_eq!(plan(&set, &pods, "rev2"), vec![delete("web-1", 1)]);
    assert_eq!(plan(&set, &pods, "rev1"), vec![]);
}

#[test]
fn status_counts_pods() {
    let mut set = set(3, "OrderedReady");
    set.status = None;
    let pods = [
        pod("web-0", "Running", true),
        pod("web-1", "Pending", false),
    ];
    let status = status(&set, &pods, "rev1", 0);
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(status.replicas, 2);
    assert_eq!(status.ready_replicas, Some(1));
    assert_eq!(status.available_replicas, Some(1));
    assert_eq!(status.updated_replicas, Some(2));
    assert_eq!(status.current_replicas, Some(2));
    assert_eq!(status.current_revision.as_deref(), Some("rev1"));
    assert_eq!(status.update_revision.as_deref(), Some("rev1"));
    assert_eq!(status.collision_count, Some(0));
}
