//! Matching claims to volumes.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use serde_json::json;

use super::*;

fn claim(size: &str, modes: &[&str], class: Option<&str>) -> PersistentVolumeClaim {
    let mut spec = json!({"accessModes": modes, "resources": {"requests": {"storage": size}}});
    if let Some(class) = class {
        spec["storageClassName"] = json!(class);
    }
    serde_json::from_value(json!({
        "metadata": {"name": "data", "namespace": "default", "uid": "claim-uid"},
        "spec": spec,
    }))
    .unwrap()
}

fn volume(name: &str, size: &str, modes: &[&str], class: &str) -> PersistentVolume {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"speed": "fast"}},
        "spec": {"capacity": {"storage": size}, "accessModes": modes, "storageClassName": class,
                 "hostPath": {"path": "/tmp/x"}},
        "status": {"phase": "Available"},
    }))
    .unwrap()
}

fn name(volume: Option<&PersistentVolume>) -> Option<&str> {
    volume.and_then(|v| v.metadata.name.as_deref())
}

#[test]
fn smallest_sufficient_volume_of_the_class_wins() {
    let volumes = vec![
        volume("big", "10Gi", &["ReadWriteOnce"], "standard"),
        volume("small", "500Mi", &["ReadWriteOnce"], "standard"),
        volume(
            "fits",
            "2Gi",
            &["ReadWriteOnce", "ReadOnlyMany"],
            "standard",
        ),
        volume("other-class", "1Gi", &["ReadWriteOnce"], "fast"),
        volume("wrong-mode", "1Gi", &["ReadOnlyMany"], "standard"),
    ];
    let wanted = claim("1Gi", &["ReadWriteOnce"], Some("standard"));
    assert_eq!(name(best_match(&wanted, &volumes)), Some("fits"));
    let too_big = claim("20Gi", &["ReadWriteOnce"], Some("standard"));
    assert_eq!(name(best_match(&too_big, &volumes)), None);
    let no_class = claim("1Gi", &["ReadWriteOnce"], Some(""));
    assert_eq!(name(best_match(&no_class, &volumes)), None);
}

#[test]
fn claimed_and_released_volumes_are_skipped_but_pre_bound_wins() {
    let mut taken = volume("taken", "1Gi", &["ReadWriteOnce"], "standard");
    taken.spec.as_mut().unwrap().claim_ref = Some(
        serde_json::from_value(json!({"namespace": "default", "name": "other", "uid": "u2"}))
            .unwrap(),
    );
    let mut released = volume("released", "1Gi", &["ReadWriteOnce"], "standard");
    released.status.as_mut().unwrap().phase = Some("Released".into());
    let wanted = claim("1Gi", &["ReadWriteOnce"], Some("standard"));
    assert_eq!(name(best_match(&wanted, &[taken.clone(), released])), None);

    // Pre-bound by name only (what a user writes), even if it is larger or of another class.
    let mut pre_bound = volume("pre-bound", "5Gi", &["ReadWriteOnce"], "manual");
    pre_bound.spec.as_mut().unwrap().claim_ref =
        Some(serde_json::from_value(json!({"namespace": "default", "name": "data"})).unwrap());
    let free = volume("free", "1Gi", &["ReadWriteOnce"], "standard");
    assert_eq!(
        name(best_match(&wanted, &[free, taken, pre_bound.clone()])),
        Some("pre-bound")
    );
    assert!(is_claimed_by(&pre_bound, &wanted));
    assert!(!is_bound_to(&pre_bound, &wanted), "no uid yet: not bound");
}

#[test]
fn claim_selector_filters_by_volume_labels() {
    let volumes = vec![volume("fast", "1Gi", &["ReadWriteOnce"], "")];
    let mut wanted = claim("1Gi", &["ReadWriteOnce"], Some(""));
    wanted.spec.as_mut().unwrap().selector =
        Some(serde_json::from_value(json!({"matchLabels": {"speed": "slow"}})).unwrap());
    assert_eq!(name(best_match(&wanted, &volumes)), None);
    wanted.spec.as_mut().unwrap().selector =
        Some(serde_json::from_value(json!({"matchLabels": {"speed": "fast"}})).unwrap());
    assert_eq!(name(best_match(&wanted, &volumes)), Some("fast"));
}

#[test]
fn bound_status_copies_the_volume() {
    let wanted = claim("1Gi", &["ReadWriteOnce"], Some("standard"));
    let fits = volume(
        "fits",
        "2Gi",
        &["ReadWriteOnce", "ReadOnlyMany"],
        "standard",
    );
    let status = bound_claim_status(&wanted, &fits);
    assert_eq!(status.phase.as_deref(), Some("Bound"));
    assert_eq!(status.capacity.unwrap()["storage"].0, "2Gi");
    assert_eq!(status.access_modes.unwrap().len(), 2);
    let reference = reference_to(&wanted);
    assert_eq!(reference.kind.as_deref(), Some("PersistentVolumeClaim"));
    assert_eq!(reference.uid.as_deref(), Some("claim-uid"));
}
