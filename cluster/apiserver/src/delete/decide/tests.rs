use serde_json::{Value, json};

use super::*;
use crate::registry::find;

fn statefulsets() -> &'static ResourceInfo {
    find("apps", "v1", "statefulsets").unwrap()
}

fn web(finalizers: &[&str]) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default", "uid": "u-1",
                     "resourceVersion": "7", "generation": 2, "finalizers": finalizers},
        "spec": {"replicas": 2},
    })
}

fn options(propagation: Option<Propagation>) -> DeleteOptions {
    DeleteOptions {
        propagation,
        ..DeleteOptions::default()
    }
}

fn marked(change: Change) -> Value {
    match change {
        Change::Put(object) => object,
        Change::Delete(_) => panic!("deleted, expected marked"),
        Change::Keep(_) => panic!("kept, expected marked"),
    }
}

#[test]
fn background_deletes_at_once() {
    for propagation in [None, Some(Propagation::Background)] {
        let change = decide(statefulsets(), &web(&[]), &options(propagation)).unwrap();
        assert!(matches!(change, Change::Delete(_)), "{propagation:?}");
    }
}

#[test]
fn batch_v1_jobs_orphan_their_pods_unless_asked_otherwise() {
    let jobs = find("batch", "v1", "jobs").unwrap();
    let job = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "u-2", "resourceVersion": "3"}});
    let object = marked(decide(jobs, &job, &options(None)).unwrap());
    assert_eq!(object["metadata"]["finalizers"], json!([ORPHAN_FINALIZER]));
    let change = decide(jobs, &job, &options(Some(Propagation::Background))).unwrap();
    assert!(matches!(change, Change::Delete(_)));
}

#[test]
fn orphan_and_foreground_mark_with_their_finalizer() {
    for (propagation, finalizer) in [
        (Propagation::Orphan, ORPHAN_FINALIZER),
        (Propagation::Foreground, FOREGROUND_FINALIZER),
    ] {
        let object =
            marked(decide(statefulsets(), &web(&[]), &options(Some(propagation))).unwrap());
        assert_eq!(object["metadata"]["finalizers"], json!([finalizer]));
        assert!(object["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(object["metadata"]["deletionGracePeriodSeconds"], 0);
        assert_eq!(
            object["metadata"]["generation"], 3,
            "first deletion bumps it"
        );
    }
}

#[test]
fn legacy_orphan_dependents_counts_as_a_policy() {
    let orphan = DeleteOptions {
        orphan_dependents: Some(true),
        ..DeleteOptions::default()
    };
    let object = marked(decide(statefulsets(), &web(&[]), &orphan).unwrap());
    assert_eq!(object["metadata"]["finalizers"], json!(["orphan"]));
    let keep = DeleteOptions {
        orphan_dependents: Some(false),
        ..DeleteOptions::default()
    };
    assert!(matches!(
        decide(statefulsets(), &web(&["orphan"]), &keep).unwrap(),
        Change::Delete(_)
    ));
}

#[test]
fn a_later_delete_may_switch_the_policy_and_keeps_other_finalizers() {
    let mut deleting = web(&["example.com/hold", "foregroundDeletion"]);
    deleting["metadata"]["deletionTimestamp"] = json!("2020-01-01T00:00:00Z");
    deleting["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    let object = marked(
        decide(
            statefulsets(),
            &deleting,
            &options(Some(Propagation::Orphan)),
        )
        .unwrap(),
    );
    assert_eq!(
        object["metadata"]["finalizers"],
        json!(["example.com/hold", "orphan"])
    );
    assert_eq!(
        object["metadata"]["deletionTimestamp"], "2020-01-01T00:00:00Z",
        "an earlier deletionTimestamp stays"
    );
    assert_eq!(object["metadata"]["generation"], 2);
    // Without a policy the object's own finalizers decide: nothing changes.
    assert!(matches!(
        decide(statefulsets(), &deleting, &options(None)).unwrap(),
        Change::Keep(_)
    ));
}

#[test]
fn events_never_get_deletion_finalizers() {
    let events = find("", "v1", "events").unwrap();
    let event = json!({"metadata": {"name": "e", "namespace": "default", "uid": "e"}});
    assert!(matches!(
        decide(events, &event, &options(Some(Propagation::Foreground))).unwrap(),
        Change::Delete(_)
    ));
}

#[test]
fn preconditions_fail_with_upstreams_words() {
    let stale = DeleteOptions {
        resource_version: Some("6".into()),
        ..DeleteOptions::default()
    };
    let error = decide(statefulsets(), &web(&[]), &stale).err().unwrap();
    assert_eq!(error.code, 409);
    assert_eq!(
        error.message,
        "Operation cannot be fulfilled on StatefulSet.apps \"web\": the ResourceVersion in the precondition (6) does not match the ResourceVersion in record (7). The object might have been modified"
    );
    let other = DeleteOptions {
        uid: Some("u-2".into()),
        ..DeleteOptions::default()
    };
    let pods = find("", "v1", "pods").unwrap();
    let pod = json!({"metadata": {"name": "p", "uid": "u-1"}});
    assert_eq!(
        decide(pods, &pod, &other).err().unwrap().message,
        "Operation cannot be fulfilled on Pod \"p\": the UID in the precondition (u-2) does not match the UID in record (u-1). The object might have been deleted and then recreated"
    );
}

fn bound_pod() -> Value {
    json!({
        "metadata": {"name": "p", "namespace": "default", "uid": "p"},
        "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 30},
        "status": {"phase": "Running"},
    })
}

#[test]
fn pods_on_a_node_get_their_grace_period_and_only_shorter_ones_later() {
    let pods = find("", "v1", "pods").unwrap();
    let first = marked(decide(pods, &bound_pod(), &options(None)).unwrap());
    assert_eq!(first["metadata"]["deletionGracePeriodSeconds"], 30);
    let longer = DeleteOptions {
        grace_period: Some(60),
        propagation: Some(Propagation::Orphan),
        ..DeleteOptions::default()
    };
    assert!(
        matches!(decide(pods, &first, &longer).unwrap(), Change::Keep(_)),
        "a pending graceful deletion ignores a longer period and the policy"
    );
    let shorter = DeleteOptions {
        grace_period: Some(10),
        ..DeleteOptions::default()
    };
    let second = marked(decide(pods, &first, &shorter).unwrap());
    assert_eq!(second["metadata"]["deletionGracePeriodSeconds"], 10);
    let at = |v: &Value| {
        v["metadata"]["deletionTimestamp"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    assert_eq!(
        at(&first).as_second() - at(&second).as_second(),
        20,
        "the deadline moves back by the difference"
    );
    let now = DeleteOptions {
        grace_period: Some(0),
        ..DeleteOptions::default()
    };
    assert!(matches!(
        decide(pods, &second, &now).unwrap(),
        Change::Delete(_)
    ));
}

#[test]
fn unscheduled_pods_go_at_once_unless_a_finalizer_holds_them() {
    let pods = find("", "v1", "pods").unwrap();
    let mut pod = bound_pod();
    pod["spec"]["nodeName"] = json!("");
    assert!(matches!(
        decide(pods, &pod, &options(None)).unwrap(),
        Change::Delete(_)
    ));
    let held = marked(decide(pods, &pod, &options(Some(Propagation::Orphan))).unwrap());
    assert_eq!(held["metadata"]["finalizers"], json!(["orphan"]));
    assert_eq!(held["metadata"]["deletionGracePeriodSeconds"], 0);
}

fn namespace(spec_finalizers: &[&str]) -> Value {
    json!({
        "metadata": {"name": "lab", "uid": "n"},
        "spec": {"finalizers": spec_finalizers},
        "status": {"phase": "Active"},
    })
}

#[test]
fn namespaces_terminate_first_and_go_once_finalized() {
    let namespaces = find("", "v1", "namespaces").unwrap();
    let first = marked(
        decide(
            namespaces,
            &namespace(&[]),
            &options(Some(Propagation::Foreground)),
        )
        .unwrap(),
    );
    assert_eq!(first["status"]["phase"], "Terminating");
    assert_eq!(
        first["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    let mut terminating = namespace(&["kubernetes"]);
    terminating["metadata"]["deletionTimestamp"] = json!("2020-01-01T00:00:00Z");
    assert!(matches!(
        decide(namespaces, &terminating, &options(None)).unwrap(),
        Change::Keep(_)
    ));
    terminating["spec"]["finalizers"] = json!([]);
    assert!(matches!(
        decide(namespaces, &terminating, &options(None)).unwrap(),
        Change::Delete(_)
    ));
    let wrong = DeleteOptions {
        uid: Some("m".into()),
        ..DeleteOptions::default()
    };
    assert_eq!(
        decide(namespaces, &namespace(&[]), &wrong)
            .err()
            .unwrap()
            .message,
        "Operation cannot be fulfilled on namespaces \"lab\": Precondition failed: UID in precondition: m, UID in object meta: n"
    );
}
