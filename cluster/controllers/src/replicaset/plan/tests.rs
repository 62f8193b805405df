//! Replica diffing, scale-down ranking and status of the ReplicaSet controller.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::*;
use crate::pod_state::test_pods;

fn set(replicas: i32, min_ready_seconds: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": "frontend", "namespace": "default", "uid": "rs-uid", "generation": 4},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready_seconds,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "front"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
        },
    }))
    .unwrap()
}

fn at(seconds: i64) -> Time {
    Time(jiff::Timestamp::from_second(seconds).unwrap())
}

/// A pod on `node` (empty: unscheduled), created and (if ready) Ready at the given times.
fn pod(name: &str, phase: &str, ready: bool, node: &str, created: i64, ready_at: i64) -> Pod {
    let mut pod = test_pods::pod(name, phase, ready);
    pod.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    pod.metadata.creation_timestamp = Some(at(created));
    if !node.is_empty() {
        pod.spec.as_mut().unwrap().node_name = Some(node.into());
    }
    for condition in pod.status.as_mut().unwrap().conditions.as_mut().unwrap() {
        condition.last_transition_time = Some(at(ready_at));
    }
    pod
}

fn names(pods: &[&Pod]) -> Vec<String> {
    pods.iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect()
}

#[test]
fn creates_the_missing_and_nothing_when_even() {
    let a = pod("a", "Running", true, "n", 1, 1);
    assert_eq!(scale(&set(3, 0), &[&a]), Scale::Create(2));
    assert_eq!(scale(&set(1, 0), &[&a]), Scale::Nothing);
    assert_eq!(scale(&set(0, 0), &[]), Scale::Nothing);
}

#[test]
fn scale_down_prefers_unscheduled_pending_unready_then_newest() {
    let old_ready = pod("old-ready", "Running", true, "n", 10, 20);
    let new_ready = pod("new-ready", "Running", true, "n", 30, 40);
    let not_ready = pod("not-ready", "Running", false, "n", 5, 5);
    let pending = pod("pending", "Pending", false, "n", 1, 1);
    let unscheduled = pod("unscheduled", "Pending", false, "", 1, 1);
    let pods = [&old_ready, &new_ready, &not_ready, &pending, &unscheduled];
    assert_eq!(
        names(&deletion_order(&pods)),
        [
            "unscheduled",
            "pending",
            "not-ready",
            "new-ready",
            "old-ready"
        ]
    );
    assert_eq!(
        scale(&set(2, 0), &pods),
        Scale::Delete(vec![
            "unscheduled".into(),
            "pending".into(),
            "not-ready".into()
        ])
    );
}

#[test]
fn deletion_cost_and_crowded_nodes_go_first() {
    let mut cheap = pod("cheap", "Running", true, "a", 1, 1);
    cheap.metadata.annotations = Some([(POD_DELETION_COST.to_string(), "-5".to_string())].into());
    let alone = pod("alone", "Running", true, "b", 1, 1);
    let crowded1 = pod("crowded1", "Running", true, "c", 1, 1);
    let crowded2 = pod("crowded2", "Running", true, "c", 1, 1);
    let order = names(&deletion_order(&[&alone, &crowded1, &cheap, &crowded2]));
    assert_eq!(order[0], "cheap");
    assert_eq!(order[3], "alone");
}

#[test]
fn equal_readiness_prefers_more_recently_ready_then_restarts() {
    let long_ready = pod("long", "Running", true, "n", 1, 10);
    let just_ready = pod("just", "Running", true, "n", 1, 50);
    assert_eq!(
        names(&deletion_order(&[&long_ready, &just_ready])),
        ["just", "long"]
    );
    let mut restarted = pod("restarted", "Running", true, "n", 1, 10);
    restarted.status.as_mut().unwrap().container_statuses = Some(vec![
        serde_json::from_value(
            json!({"name": "c", "image": "nginx", "imageID": "", "ready": true,
                                      "restartCount": 3}),
        )
        .unwrap(),
    ]);
    assert_eq!(
        names(&deletion_order(&[&long_ready, &restarted])),
        ["restarted", "long"]
    );
}

#[test]
fn status_counts_labels_readiness_and_availability() {
    let mut partly_labelled = pod("partly", "Running", true, "n", 1, 100);
    partly_labelled.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    let mut full = pod("full", "Running", true, "n", 1, 10);
    full.metadata.labels = Some(
        [
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "front".to_string()),
        ]
        .into(),
    );
    let pending = pod("pending", "Pending", false, "n", 1, 1);
    let pods = [&partly_labelled, &full, &pending];

    let status = status(&set(3, 30), &pods, None, &at(110));
    assert_eq!(status.replicas, 3);
    assert_eq!(status.fully_labeled_replicas, Some(1));
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(
        status.available_replicas,
        Some(1),
        "Ready at 100 is not yet available at 110 with minReadySeconds 30"
    );
    assert_eq!(status.observed_generation, Some(4));
    assert_eq!(status.conditions, None);
    assert_eq!(next_availability_in(&set(3, 30), &pods, 110), Some(20));
    assert_eq!(next_availability_in(&set(3, 0), &pods, 110), None);
}

#[test]
fn failure_condition_is_set_once_and_cleared() {
    let mut rs = set(1, 0);
    let failed = status(
        &rs,
        &[],
        Some(("FailedCreate", "quota".to_string())),
        &at(5),
    );
    let conditions = failed.conditions.clone().unwrap();
    assert_eq!(conditions.len(), 1);
    assert_eq!(conditions[0].type_, REPLICA_FAILURE);
    assert_eq!(conditions[0].reason.as_deref(), Some("FailedCreate"));
    rs.status = Some(failed.clone());
    let again = status(
        &rs,
        &[],
        Some(("FailedCreate", "quota".to_string())),
        &at(9),
    );
    assert_eq!(
        again, failed,
        "unchanged failure: same status, nothing to write"
    );
    assert_eq!(status(&rs, &[], None, &at(9)).conditions, None);
}
