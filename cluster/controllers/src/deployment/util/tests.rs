use super::*;
use serde_json::json;

pub(crate) fn deployment(strategy: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 1,
            "annotations": {"kubernetes.io/change-cause": "first",
                "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": strategy,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
        }
    }))
    .unwrap()
}

#[test]
fn fnv32a_and_safe_encoding_are_upstreams() {
    assert_eq!(fnv32a(b""), 0x811c_9dc5);
    assert_eq!(fnv32a(b"a"), 0xe40c_292c);
    // `rand.SafeEncodeString("0123")`: 26 characters, byte 48 % 26 = 22 -> '6', 49 -> '7', ...
    assert_eq!(safe_encode("0123"), "6789");
}

#[test]
fn the_hash_changes_with_the_template_and_the_collision_count() {
    let d = deployment(json!({"type": "RollingUpdate"}));
    let plain = compute_hash(&template(&d), None);
    assert_eq!(plain, compute_hash(&template(&d), None));
    assert_ne!(plain, compute_hash(&template(&d), Some(1)));
    let mut other = template(&d);
    other.spec.as_mut().unwrap().containers[0].image = Some("nginx-slim".into());
    assert_ne!(plain, compute_hash(&other, None));
    assert!(
        plain
            .chars()
            .all(|c| "bcdfghjkmnpqrstvwxz2456789".contains(c))
    );
}

#[test]
fn fenceposts_scale_percentages_and_never_both_zero() {
    let total = 3;
    let quarter = IntOrString::String("25%".into());
    assert_eq!(scaled_value(&quarter, total, true), Ok(1));
    assert_eq!(scaled_value(&quarter, total, false), Ok(0));
    assert_eq!(scaled_value(&IntOrString::Int(2), total, false), Ok(2));
    assert!(scaled_value(&IntOrString::String("1".into()), total, true).is_err());
    let defaults = deployment(json!({"type": "RollingUpdate"}));
    assert_eq!(fenceposts(&defaults), Ok((1, 0)));
    let zero = deployment(json!({"type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}}));
    assert_eq!(fenceposts(&zero), Ok((0, 1)));
    let recreate = deployment(json!({"type": "Recreate"}));
    assert_eq!(
        (max_surge(&recreate), max_unavailable(&recreate)),
        (Ok(0), Ok(0))
    );
}

#[test]
fn templates_compare_without_the_hash_label() {
    let d = deployment(json!({}));
    let mut hashed = template(&d);
    let labels = hashed.metadata.as_mut().unwrap().labels.as_mut().unwrap();
    labels.insert(POD_TEMPLATE_HASH.into(), "abc".into());
    assert!(equal_ignore_hash(&hashed, &template(&d)));
    labels_of(&mut hashed).insert("tier".into(), "x".into());
    assert!(!equal_ignore_hash(&hashed, &template(&d)));
}

fn labels_of(t: &mut PodTemplateSpec) -> &mut BTreeMap<String, String> {
    t.metadata.as_mut().unwrap().labels.as_mut().unwrap()
}

#[test]
fn a_new_set_gets_the_revision_the_users_annotations_and_its_sizes() {
    let d = deployment(json!({"type": "RollingUpdate"}));
    let mut rs = ReplicaSet::default();
    assert_eq!(set_new_rs_annotations(&d, &mut rs, 1, false), Ok(true));
    let annotations = rs.metadata.annotations.clone().unwrap();
    assert_eq!(annotations[REVISION], "1");
    assert_eq!(annotations["kubernetes.io/change-cause"], "first");
    assert_eq!(annotations[DESIRED_REPLICAS], "3");
    assert_eq!(annotations[MAX_REPLICAS], "4");
    assert!(!annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    assert_eq!(set_new_rs_annotations(&d, &mut rs, 1, true), Ok(false));
}

#[test]
fn a_set_rolled_back_to_keeps_its_old_revisions() {
    let d = deployment(json!({}));
    let mut rs = ReplicaSet::default();
    rs.metadata.annotations = Some(BTreeMap::from([(REVISION.to_string(), "1".to_string())]));
    assert_eq!(set_new_rs_annotations(&d, &mut rs, 3, true), Ok(true));
    assert_eq!(annotation(&rs, REVISION), Some("3"));
    assert_eq!(annotation(&rs, REVISION_HISTORY), Some("1"));
    assert_eq!(set_new_rs_annotations(&d, &mut rs, 5, true), Ok(true));
    assert_eq!(annotation(&rs, REVISION_HISTORY), Some("1,3"));
    // A revision above the one offered (older sets deleted since) stays.
    assert_eq!(set_new_rs_annotations(&d, &mut rs, 2, true), Ok(false));
    assert_eq!(annotation(&rs, REVISION), Some("5"));
}

#[test]
fn the_revision_history_drops_its_oldest_entries_at_the_limit() {
    let long = vec!["9"; 1000].join(",");
    let appended = appended_history(&long, "12").unwrap();
    assert!(appended.len() <= MAX_REVISION_HISTORY_CHARS);
    assert!(appended.ends_with(",9,12"));
}
