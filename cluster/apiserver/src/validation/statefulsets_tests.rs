use super::*;
use serde_json::json;

/// A StatefulSet as it is stored after defaulting.
fn set(selector: Value, labels: Value) -> Value {
    json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1, "serviceName": "nginx", "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "revisionHistoryLimit": 10, "minReadySeconds": 0,
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "selector": selector,
            "template": {"metadata": {"labels": labels}, "spec": {
                "restartPolicy": "Always", "containers": [{"name": "nginx", "image": "nginx"}]}},
        }
    })
}

#[test]
fn a_valid_set_has_no_problems() {
    let valid = set(
        json!({"matchLabels": {"app": "nginx"}}),
        json!({"app": "nginx", "tier": "web"}),
    );
    assert_eq!(spec_problems(&valid), Vec::<Cause>::new());
    let expressions = set(
        json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["nginx", "web"]}]}),
        json!({"app": "web"}),
    );
    assert_eq!(spec_problems(&expressions), Vec::<Cause>::new());
}

#[test]
fn the_selector_must_select_the_template() {
    let wrong = set(
        json!({"matchLabels": {"app": "nginx"}}),
        json!({"app": "web"}),
    );
    assert_eq!(
        spec_problems(&wrong),
        [(
            "spec.template.metadata.labels".to_string(),
            "Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`".to_string()
        )]
    );
    let empty = set(json!({}), json!({"app": "web"}));
    assert_eq!(
        spec_problems(&empty),
        [(
            "spec.selector".to_string(),
            "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for statefulset".to_string()
        )]
    );
    let mut missing = set(json!(null), json!({"app": "web"}));
    missing["spec"].as_object_mut().unwrap().remove("selector");
    assert_eq!(
        spec_problems(&missing),
        [("spec.selector".to_string(), "Required value".to_string())]
    );
    let bad = set(
        json!({"matchExpressions": [{"key": "app", "operator": "Equals"}]}),
        json!({"app": "web"}),
    );
    assert_eq!(
        spec_problems(&bad)[0],
        (
            "spec.selector.matchExpressions[0].operator".to_string(),
            "Invalid value: \"Equals\": not a valid selector operator".to_string()
        )
    );
}

#[test]
fn rolling_update_only_with_its_strategy() {
    let mut on_delete = set(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    on_delete["spec"]["updateStrategy"] =
        json!({"type": "OnDelete", "rollingUpdate": {"partition": 2}});
    assert_eq!(
        spec_problems(&on_delete),
        [(
            "spec.updateStrategy.rollingUpdate".to_string(),
            "Invalid value: apps.RollingUpdateStatefulSetStrategy{Partition:2, MaxUnavailable:(*intstr.IntOrString)(nil)}: only allowed for updateStrategy 'RollingUpdate'".to_string()
        )]
    );
    on_delete["spec"]["updateStrategy"] = json!({"type": "Rolling"});
    assert_eq!(
        spec_problems(&on_delete)[0].1,
        "Invalid value: apps.StatefulSetUpdateStrategy{Type:\"Rolling\", RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}: must be 'RollingUpdate' or 'OnDelete'"
    );
    on_delete["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": -1}});
    on_delete["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    assert_eq!(
        spec_problems(&on_delete),
        [
            (
                "spec.updateStrategy.rollingUpdate.partition".to_string(),
                "Invalid value: -1: must be greater than or equal to 0".to_string()
            ),
            (
                "spec.template.spec.restartPolicy".to_string(),
                "Unsupported value: \"Never\": supported values: \"Always\"".to_string()
            )
        ]
    );
}

#[test]
fn updates_change_only_the_mutable_fields() {
    let old = set(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(5);
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    new["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    new["spec"]["minReadySeconds"] = json!(3);
    assert_eq!(update_problems(&old, &new), Vec::<Cause>::new());
    new["spec"]["serviceName"] = json!("other");
    new["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "www"}}]);
    assert_eq!(
        update_problems(&old, &new),
        [(
            "spec".to_string(),
            "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".to_string()
        )]
    );
}
