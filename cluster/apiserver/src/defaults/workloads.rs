//! Defaults of the apps/v1 workloads: `SetDefaults_StatefulSet`, `SetDefaults_ReplicaSet`,
//! `SetDefaults_Deployment` (pkg/apis/apps/v1/defaults.go), each with its pod template's.

use serde_json::{Value, json};

use super::json::{object_mut, object_mut_in, set_default};
use super::pod::default_template;

pub(crate) fn default_statefulset(object: &mut Value) {
    if let Some(spec) = object_mut(object, "spec") {
        set_default(spec, "replicas", json!(1));
        set_default(spec, "podManagementPolicy", json!("OrderedReady"));
        set_default(spec, "revisionHistoryLimit", json!(10));
        set_default(
            spec,
            "persistentVolumeClaimRetentionPolicy",
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
        );
        set_default(spec, "minReadySeconds", json!(0));
    }
    default_update_strategy(object);
    default_template(object);
    if let Some(status) = object_mut(object, "status") {
        set_default(status, "replicas", json!(0));
        set_default(status, "availableReplicas", json!(0));
    }
}

/// `SetDefaults_StatefulSet`'s update strategy: no type is RollingUpdate (with an empty
/// rollingUpdate), and a RollingUpdate's rollingUpdate gets partition 0; OnDelete is left
/// alone, so that a rollingUpdate given with it is refused by validation.
fn default_update_strategy(object: &mut Value) {
    let Some(strategy) = object
        .get_mut("spec")
        .and_then(|spec| object_mut(spec, "updateStrategy"))
    else {
        return;
    };
    if strategy
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        strategy.insert("type".into(), json!("RollingUpdate"));
        if strategy.get("rollingUpdate").is_none_or(Value::is_null) {
            strategy.insert("rollingUpdate".into(), json!({}));
        }
    }
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
        && let Some(rolling) = strategy
            .get_mut("rollingUpdate")
            .and_then(Value::as_object_mut)
    {
        set_default(rolling, "partition", json!(0));
    }
}

pub(crate) fn default_replicaset(object: &mut Value) {
    if let Some(spec) = object_mut(object, "spec") {
        set_default(spec, "replicas", json!(1));
    }
    default_template(object);
    if let Some(status) = object_mut(object, "status") {
        set_default(status, "replicas", json!(0));
    }
}

pub(crate) fn default_deployment(object: &mut Value) {
    if let Some(spec) = object_mut(object, "spec") {
        set_default(spec, "replicas", json!(1));
        // `SetDefaults_Deployment`: the type first, then each missing fencepost of a
        // RollingUpdate on its own (a manifest that sets only `maxUnavailable: 0` still
        // gets `maxSurge: 25%`).
        if let Some(strategy) = object_mut_in(spec, "strategy") {
            set_default(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type") == Some(&json!("RollingUpdate"))
                && let Some(rolling) = object_mut_in(strategy, "rollingUpdate")
            {
                set_default(rolling, "maxUnavailable", json!("25%"));
                set_default(rolling, "maxSurge", json!("25%"));
            }
        }
        set_default(spec, "revisionHistoryLimit", json!(10));
        set_default(spec, "progressDeadlineSeconds", json!(600));
    }
    default_template(object);
}
