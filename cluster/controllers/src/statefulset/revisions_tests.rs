//! Revisions of a StatefulSet's template.

use k8s_openapi::api::apps::v1::StatefulSet;
use serde_json::json;

use super::*;
use crate::controller_history::HASH_LABEL;
use crate::pod_state::test_pods;

fn web(image: &str) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "set-uid",
                     "annotations": {"kubernetes.io/change-cause": "kubectl set image"}},
        "spec": {
            "replicas": 3,
            "serviceName": "nginx",
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}},
                         "spec": {"containers": [{"name": "nginx", "image": image}]}},
        },
    }))
    .unwrap()
}

fn image_of(set: &StatefulSet) -> Option<String> {
    set.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
}

#[test]
fn a_revision_records_the_template_as_a_replacing_patch() {
    let revision = set_revision(&web("nginx"), 1, 0).unwrap();
    let data = &revision.data.as_ref().unwrap().0;
    assert_eq!(data["spec"]["template"]["$patch"], "replace");
    assert_eq!(
        data["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
    assert_eq!(
        data.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["spec"],
        "only the template, so a scale is no new revision"
    );
    let labels = revision.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["app"], "nginx");
    let name = revision.metadata.name.as_deref().unwrap();
    assert_eq!(name, format!("web-{}", labels[HASH_LABEL]));
    assert_eq!(
        revision.metadata.annotations.as_ref().unwrap()["kubernetes.io/change-cause"],
        "kubectl set image"
    );
    let owner = &revision.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.controller),
        ("set-uid", Some(true))
    );
}

#[test]
fn the_name_changes_with_the_template_only() {
    let first = set_revision(&web("nginx"), 1, 0).unwrap();
    let mut scaled = web("nginx");
    scaled.spec.as_mut().unwrap().replicas = Some(5);
    let same = set_revision(&scaled, 2, 0).unwrap();
    assert_eq!(same.metadata.name, first.metadata.name);
    assert_eq!(same.data, first.data);
    let changed = set_revision(&web("registry.k8s.io/nginx-slim:0.24"), 2, 0).unwrap();
    assert_ne!(changed.metadata.name, first.metadata.name);
}

#[test]
fn applying_a_revision_restores_its_template() {
    let old = set_revision(&web("nginx"), 1, 0).unwrap();
    let newer = web("registry.k8s.io/nginx-slim:0.24");
    let restored = apply_revision(&newer, &old).unwrap();
    assert_eq!(image_of(&restored).as_deref(), Some("nginx"));
    assert_eq!(restored.spec.as_ref().unwrap().replicas, Some(3));
}

fn revisions_of(numbers: &[i64]) -> SetRevisions {
    let history: Vec<ControllerRevision> = numbers
        .iter()
        .map(|n| set_revision(&web(&format!("nginx:{n}")), *n, 0).unwrap())
        .collect();
    SetRevisions {
        current: history[history.len() - 2].clone(),
        update: history[history.len() - 1].clone(),
        collision_count: 0,
        history,
    }
}

#[test]
fn history_keeps_the_limit_besides_live_revisions() {
    let mut set = web("nginx");
    set.spec.as_mut().unwrap().revision_history_limit = Some(2);
    let revisions = revisions_of(&[1, 2, 3, 4, 5, 6]);
    let mut pod = test_pods::pod("web-0", "Running", true);
    let on_first = revisions.history[0].metadata.name.clone().unwrap();
    pod.metadata
        .labels
        .get_or_insert_default()
        .insert(REVISION_LABEL.into(), on_first);
    let pruned: Vec<i64> = revisions_to_prune(&set, &revisions, &[pod])
        .iter()
        .map(|revision| revision.revision)
        .collect();
    // Live: 1 (a pod's), 5 (current), 6 (update); of 2, 3, 4 the newest two stay.
    assert_eq!(pruned, [2]);

    set.spec.as_mut().unwrap().revision_history_limit = None;
    assert!(
        revisions_to_prune(&set, &revisions, &[]).is_empty(),
        "10 by default"
    );
}

#[test]
fn pods_below_the_partition_come_from_the_current_revision() {
    let mut set = web("nginx");
    set.spec.as_mut().unwrap().update_strategy = serde_json::from_value(json!({
        "type": "RollingUpdate", "rollingUpdate": {"partition": 2},
    }))
    .unwrap();
    assert!(uses_current_revision(&set, 1));
    assert!(!uses_current_revision(&set, 2));
    set.spec.as_mut().unwrap().ordinals = serde_json::from_value(json!({"start": 3})).unwrap();
    assert!(uses_current_revision(&set, 4));
    assert!(!uses_current_revision(&set, 5));

    let mut on_delete = web("nginx");
    on_delete.spec.as_mut().unwrap().update_strategy =
        serde_json::from_value(json!({"type": "OnDelete"})).unwrap();
    on_delete.status =
        serde_json::from_value(json!({"replicas": 3, "currentReplicas": 3})).unwrap();
    assert!(
        !uses_current_revision(&on_delete, 0),
        "OnDelete: a deleted pod comes back updated"
    );
}
