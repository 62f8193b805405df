use super::*;
use crate::deployment::util::tests::deployment;
use crate::deployment::util::{MAX_REPLICAS, REVISION};
use serde_json::json;

/// A set created at `created` (seconds) with `replicas` of which `available` are available.
fn set(name: &str, created: i64, replicas: i32, available: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name, "uid": name,
            "creationTimestamp": jiff::Timestamp::from_second(created).unwrap().to_string(),
            "annotations": {DESIRED_REPLICAS: "3", MAX_REPLICAS: "4"}},
        "spec": {"replicas": replicas, "selector": {}},
        "status": {"replicas": replicas, "availableReplicas": available},
    }))
    .unwrap()
}

fn rolling(max_surge: serde_json::Value, max_unavailable: serde_json::Value) -> Deployment {
    deployment(json!({"type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}}))
}

fn sizes(sets: &[ReplicaSet]) -> Vec<i32> {
    sets.iter().map(rs_replicas).collect()
}

/// Runs the rolling update's steps (`rolloutRolling`) with pods that become available one
/// step after they are asked for, until nothing changes; returns each step's
/// (total, available) pods.
fn simulate(d: &Deployment, sets: &mut [ReplicaSet], new: usize) -> Vec<(i32, i32)> {
    let mut seen = Vec::new();
    for _ in 0..50 {
        let old: Vec<usize> = (0..sets.len()).filter(|i| *i != new).collect();
        let target = new_rs_target(d, sets, new).unwrap();
        let mut plan: Plan = target
            .filter(|t| *t != rs_replicas(&sets[new]))
            .map(|t| vec![(new, t)])
            .unwrap_or_default();
        if plan.is_empty() {
            plan = old_scale_downs(d, sets, &old, Some(new)).unwrap();
        }
        for set in sets.iter_mut() {
            let status = set.status.as_mut().unwrap();
            status.available_replicas = status.available_replicas.min(Some(status.replicas));
        }
        seen.push((replica_count(&*sets), available_count(&*sets)));
        if plan.is_empty() {
            break;
        }
        for (i, replicas) in plan {
            sets[i].spec.as_mut().unwrap().replicas = Some(replicas);
        }
        // The ReplicaSet controller: pods appear (and become available) or go.
        for set in sets.iter_mut() {
            let replicas = rs_replicas(set);
            let status = set.status.as_mut().unwrap();
            let previous = status.replicas;
            status.replicas = replicas;
            status.available_replicas = Some(replicas.min(previous));
        }
        let new_status = sets[new].status.as_mut().unwrap();
        new_status.available_replicas = Some(new_status.replicas);
    }
    seen
}

/// Rolls 3 pods from an old set to a new one; every step stays within `most` pods in all
/// and at least `least` available.
fn rolls_within(d: &Deployment, most: i32, least: i32) -> Vec<(i32, i32)> {
    let mut sets = vec![set("old", 0, 3, 3), set("new", 10, 0, 0)];
    let steps = simulate(d, &mut sets, 1);
    assert_eq!(sizes(&sets), [0, 3]);
    let within = |(total, available): &(i32, i32)| *total <= most && *available >= least;
    assert!(steps.iter().all(within), "{steps:?}");
    steps
}

#[test]
fn max_unavailable_zero_never_drops_below_replicas() {
    let steps = rolls_within(&rolling(json!("25%"), json!(0)), 4, 3);
    assert!(steps.len() > 3, "one pod at a time: {steps:?}");
}

#[test]
fn max_surge_zero_replaces_within_max_unavailable() {
    rolls_within(&rolling(json!(0), json!(1)), 3, 2);
}

#[test]
fn the_new_set_grows_within_max_surge() {
    let d = rolling(json!(1), json!(0));
    let sets = [set("old", 0, 3, 3), set("new", 10, 0, 0)];
    assert_eq!(new_rs_replicas(&d, &sets, &sets[1]), Ok(1));
    assert_eq!(new_rs_target(&d, &sets, 1), Ok(Some(1)));
    let full = [set("old", 0, 3, 3), set("new", 10, 1, 0)];
    assert_eq!(new_rs_replicas(&d, &full, &full[1]), Ok(1));
    let too_big = [set("new", 10, 5, 5)];
    assert_eq!(new_rs_target(&d, &too_big, 0), Ok(Some(3)));
    let recreate = deployment(json!({"type": "Recreate"}));
    assert_eq!(new_rs_replicas(&recreate, &sets, &sets[1]), Ok(3));
}

#[test]
fn unhealthy_old_pods_go_first() {
    let d = rolling(json!(1), json!(1));
    // Two old sets; the older has 2 pods of which none is available.
    let sets = [
        set("oldest", 0, 2, 0),
        set("old", 5, 2, 2),
        set("new", 10, 1, 1),
    ];
    let plan = old_scale_downs(&d, &sets, &[0, 1], Some(2)).unwrap();
    // maxScaledDown = 5 - 2 - 0 = 3: the 2 unhealthy first, then 1 available (3 > 2).
    assert_eq!(plan, [(0, 0), (1, 1)]);
}

#[test]
fn nothing_shrinks_while_the_new_pods_are_unavailable() {
    let d = rolling(json!(1), json!(0));
    let sets = [set("old", 0, 3, 3), set("new", 10, 1, 0)];
    assert_eq!(old_scale_downs(&d, &sets, &[0], Some(1)), Ok(Vec::new()));
}

#[test]
fn scaling_mid_rollout_is_proportional() {
    // `replicas` 10 -> 15 with maxSurge 3 while 8 old and 5 new pods run (max was 13).
    let mut d = rolling(json!(3), json!(2));
    d.spec.as_mut().unwrap().replicas = Some(15);
    let mut old = set("old", 0, 8, 8);
    let mut new = set("new", 10, 5, 5);
    for rs in [&mut old, &mut new] {
        let annotations = rs.metadata.annotations.as_mut().unwrap();
        annotations.insert(DESIRED_REPLICAS.into(), "10".into());
        annotations.insert(MAX_REPLICAS.into(), "13".into());
    }
    let sets = [old, new];
    assert!(is_scaling_event(&d, &sets));
    assert_eq!(
        proportional_scale(&d, &sets, Some(1), 13),
        Ok(vec![(0, 11), (1, 7)])
    );
}

#[test]
fn one_active_set_takes_all_replicas() {
    let mut d = rolling(json!(1), json!(0));
    d.spec.as_mut().unwrap().replicas = Some(1);
    let sets = [set("old", 0, 0, 0), set("new", 10, 3, 3)];
    assert!(is_scaling_event(&d, &sets));
    assert_eq!(proportional_scale(&d, &sets, Some(1), 3), Ok(vec![(1, 1)]));
}

#[test]
fn history_beyond_the_limit_goes_lowest_revision_first() {
    let mut d = rolling(json!(1), json!(0));
    d.spec.as_mut().unwrap().revision_history_limit = Some(1);
    let mut old: Vec<ReplicaSet> = (1..=3)
        .map(|n| {
            let mut rs = set(&format!("r{n}"), n, 0, 0);
            let annotations = rs.metadata.annotations.as_mut().unwrap();
            annotations.insert(REVISION.into(), n.to_string());
            rs
        })
        .collect();
    old.swap(0, 2);
    let refs: Vec<&ReplicaSet> = old.iter().collect();
    assert_eq!(history_to_delete(&d, &refs), ["r1", "r2"]);
    // A set that still has pods is kept.
    old[2].spec.as_mut().unwrap().replicas = Some(1);
    let refs: Vec<&ReplicaSet> = old.iter().collect();
    assert_eq!(history_to_delete(&d, &refs), ["r2"]);
}
