use super::*;
use crate::deployment::util::tests::deployment;
use serde_json::json;

fn at(second: i64) -> Time {
    Time(jiff::Timestamp::from_second(second).unwrap())
}

fn set(name: &str, replicas: i32, ready: i32, available: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {}},
        "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": available},
    }))
    .unwrap()
}

fn reason(status: &DeploymentStatus, type_: &str) -> Option<String> {
    get_condition(status, type_).and_then(|c| c.reason.clone())
}

#[test]
fn counts_come_from_the_sets_and_zero_is_left_out() {
    let d = deployment(json!({"type": "RollingUpdate"}));
    let sets = [set("web-old", 2, 2, 2), set("web-new", 2, 1, 0)];
    let status = calculate_status(&d, &sets, Some(&sets[1]), &at(0));
    assert_eq!(status.replicas, Some(4));
    assert_eq!(status.updated_replicas, Some(2));
    assert_eq!(status.ready_replicas, Some(3));
    assert_eq!(status.available_replicas, Some(2));
    assert_eq!(status.unavailable_replicas, Some(2));
    assert_eq!(status.observed_generation, Some(1));
    // 3 replicas, maxUnavailable 25% of 3 = 0: 2 available is not enough.
    let available = get_condition(&status, AVAILABLE).unwrap();
    assert_eq!(available.status, "False");
    assert_eq!(
        available.reason.as_deref(),
        Some("MinimumReplicasUnavailable")
    );
    assert_eq!(
        available.message.as_deref(),
        Some("Deployment does not have minimum availability.")
    );
    let done = [set("web-new", 3, 3, 3)];
    let status = calculate_status(&d, &done, Some(&done[0]), &at(0));
    assert_eq!(status.unavailable_replicas, None);
    assert_eq!(
        reason(&status, AVAILABLE).as_deref(),
        Some("MinimumReplicasAvailable")
    );
}

#[test]
fn progressing_follows_the_rollout_to_its_end() {
    let mut d = deployment(json!({"type": "RollingUpdate"}));
    let sets = [set("web-old", 3, 3, 3), set("web-new", 1, 0, 0)];
    let status = rollout_status(&d, &sets, Some(&sets[1]), &at(10));
    let progressing = get_condition(&status, PROGRESSING).unwrap();
    assert_eq!(progressing.reason.as_deref(), Some("ReplicaSetUpdated"));
    assert_eq!(
        progressing.message.as_deref(),
        Some("ReplicaSet \"web-new\" is progressing.")
    );
    assert_eq!(seconds_to_deadline(&d, &status, &at(10)), Some(601));
    d.status = Some(status);
    let done = [set("web-old", 0, 0, 0), set("web-new", 3, 3, 3)];
    let status = rollout_status(&d, &done, Some(&done[1]), &at(20));
    let progressing = get_condition(&status, PROGRESSING).unwrap();
    assert_eq!(
        progressing.reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );
    assert_eq!(
        progressing.message.as_deref(),
        Some("ReplicaSet \"web-new\" has successfully progressed.")
    );
    assert_eq!(seconds_to_deadline(&d, &status, &at(20)), None);
}

#[test]
fn no_progress_past_the_deadline_times_out() {
    let mut d = deployment(json!({"type": "RollingUpdate"}));
    let sets = [set("web-new", 3, 0, 0)];
    let mut status = DeploymentStatus::default();
    set_condition(
        &mut status,
        condition(
            PROGRESSING,
            "True",
            NEW_RS_CREATED,
            "Created".into(),
            &at(0),
        ),
    );
    status.replicas = Some(3);
    status.updated_replicas = Some(3);
    d.status = Some(status);
    let before = rollout_status(&d, &sets, Some(&sets[0]), &at(600));
    assert_eq!(
        reason(&before, PROGRESSING).as_deref(),
        Some(NEW_RS_CREATED)
    );
    let after = rollout_status(&d, &sets, Some(&sets[0]), &at(601));
    let progressing = get_condition(&after, PROGRESSING).unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_deref()),
        ("False", Some("ProgressDeadlineExceeded"))
    );
    assert_eq!(
        progressing.message.as_deref(),
        Some("ReplicaSet \"web-new\" has timed out progressing.")
    );
}

#[test]
fn pausing_and_resuming_show_in_progressing() {
    let mut d = deployment(json!({"type": "RollingUpdate"}));
    assert!(paused_status(&d, &at(0)).is_none());
    d.spec.as_mut().unwrap().paused = Some(true);
    let paused = paused_status(&d, &at(0)).unwrap();
    let progressing = get_condition(&paused, PROGRESSING).unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.message.as_deref()),
        ("Unknown", Some("Deployment is paused"))
    );
    d.status = Some(paused);
    assert!(paused_status(&d, &at(1)).is_none());
    d.spec.as_mut().unwrap().paused = Some(false);
    let resumed = paused_status(&d, &at(2)).unwrap();
    assert_eq!(
        reason(&resumed, PROGRESSING).as_deref(),
        Some("DeploymentResumed")
    );
}
