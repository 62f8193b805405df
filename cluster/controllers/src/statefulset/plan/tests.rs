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
    SetAction::Delete {
        name: name.into(),
        ordinal,
    }
}

#[test]
fn ordered_ready_creates_only_the_first_missing_pod() {
    let set = set(3, "OrderedReady");
    assert_eq!(plan(&set, &[], "rev1"), vec![SetAction::Create(0)]);
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
        vec![SetAction::Create(1)]
    );
}

#[test]
fn parallel_creates_everything_at_once() {
    let set = set(3, "Parallel");
    assert_eq!(
        plan(&set, &[pod("web-1", "Pending", false)], "rev1"),
        vec![SetAction::Create(0), SetAction::Create(2)]
    );
}

#[test]
fn failed_pod_is_deleted_to_be_recreated() {
    let set = set(2, "OrderedReady");
    assert_eq!(
        plan(&set, &[pod("web-0", "Failed", false)], "rev1"),
        vec![SetAction::Recreate {
            name: "web-0".into(),
            failed: true
        }]
    );
    assert_eq!(
        plan(&set, &[pod("web-0", "Succeeded", false)], "rev1"),
        vec![SetAction::Recreate {
            name: "web-0".into(),
            failed: false
        }]
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
    let names = RevisionNames {
        current: "rev1",
        update: "rev1",
        collision_count: 0,
    };
    let status = status(&set, &pods, names, 0);
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

fn on_revision(mut pod: Pod, revision: &str) -> Pod {
    pod.metadata
        .labels
        .get_or_insert_default()
        .insert(REVISION_LABEL.into(), revision.into());
    pod
}

fn partitioned(mut set: StatefulSet, partition: i32) -> StatefulSet {
    set.spec.as_mut().unwrap().update_strategy = serde_json::from_value(json!({
        "type": "RollingUpdate", "rollingUpdate": {"partition": partition},
    }))
    .unwrap();
    set
}

#[test]
fn partition_keeps_lower_ordinals_and_counts_from_the_start_ordinal() {
    let pods = [
        pod("web-0", "Running", true),
        pod("web-1", "Running", true),
        on_revision(pod("web-2", "Running", true), "rev2"),
    ];
    let set = partitioned(set(3, "OrderedReady"), 2);
    assert_eq!(plan(&set, &pods, "rev2"), vec![], "web-2 is the canary");
    let set = partitioned(self::set(3, "OrderedReady"), 1);
    assert_eq!(plan(&set, &pods, "rev2"), vec![delete("web-1", 1)]);

    let mut started = partitioned(self::set(2, "OrderedReady"), 1);
    started.spec.as_mut().unwrap().ordinals = serde_json::from_value(json!({"start": 5})).unwrap();
    let pods = [pod("web-5", "Running", true), pod("web-6", "Running", true)];
    assert_eq!(plan(&started, &pods, "rev2"), vec![delete("web-6", 6)]);
}

#[test]
fn on_delete_replaces_nothing() {
    let mut set = set(2, "OrderedReady");
    set.spec.as_mut().unwrap().update_strategy =
        serde_json::from_value(json!({"type": "OnDelete"})).unwrap();
    let pods = [pod("web-0", "Running", true), pod("web-1", "Running", true)];
    assert_eq!(plan(&set, &pods, "rev2"), vec![]);
}

#[test]
fn a_rolling_update_completes_when_every_pod_is_updated_and_ready() {
    let set = set(2, "OrderedReady");
    let names = RevisionNames {
        current: "rev1",
        update: "rev2",
        collision_count: 1,
    };
    let halfway = [
        pod("web-0", "Running", true),
        on_revision(pod("web-1", "Running", true), "rev2"),
    ];
    let status_now = status(&set, &halfway, names, 0);
    assert_eq!(status_now.current_revision.as_deref(), Some("rev1"));
    assert_eq!(
        (status_now.current_replicas, status_now.updated_replicas),
        (Some(1), Some(1))
    );
    assert_eq!(status_now.collision_count, Some(1));

    let done = [
        on_revision(pod("web-0", "Running", true), "rev2"),
        on_revision(pod("web-1", "Running", true), "rev2"),
    ];
    let status_done = status(&set, &done, names, 0);
    assert_eq!(status_done.current_revision.as_deref(), Some("rev2"));
    assert_eq!(status_done.current_replicas, Some(2));

    let not_ready = [
        on_revision(pod("web-0", "Running", true), "rev2"),
        on_revision(pod("web-1", "Running", false), "rev2"),
    ];
    let status_waiting = status(&set, &not_ready, names, 0);
    assert_eq!(status_waiting.current_revision.as_deref(), Some("rev1"));
}
