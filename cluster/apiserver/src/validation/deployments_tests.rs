use super::*;
use crate::defaults::prepare_create;
use crate::registry::find;
use serde_json::json;

/// A Deployment as `kubectl apply` sends it, defaulted as the API server stores it.
fn deployment(strategy: Value, selector: Value) -> Value {
    let mut object = json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": selector,
            "strategy": strategy,
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "containers": [{"name": "nginx", "image": "nginx"}]}},
        }
    });
    let resource = find("apps", "v1", "deployments").unwrap();
    prepare_create(resource, &mut object, Some("default")).unwrap();
    object
}

fn web() -> Value {
    json!({"matchLabels": {"app": "web"}})
}

#[test]
fn a_missing_fencepost_is_defaulted_alone() {
    let d = deployment(json!({"rollingUpdate": {"maxUnavailable": 0}}), web());
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}})
    );
    assert_eq!(spec_problems(&d), Vec::<Cause>::new());
    let recreate = deployment(json!({"type": "Recreate"}), web());
    assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(spec_problems(&recreate), Vec::<Cause>::new());
}

#[test]
fn both_fenceposts_zero_is_invalid() {
    let d = deployment(
        json!({"rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}}),
        web(),
    );
    assert_eq!(
        spec_problems(&d),
        [(
            "spec.strategy.rollingUpdate.maxUnavailable".to_string(),
            "Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0".to_string()
        )]
    );
}

#[test]
fn bad_fenceposts_get_upstreams_messages() {
    let d = deployment(
        json!({"rollingUpdate": {"maxUnavailable": "150%", "maxSurge": "1"}}),
        web(),
    );
    assert_eq!(
        spec_problems(&d),
        [
            (
                "spec.strategy.rollingUpdate.maxSurge".to_string(),
                "Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"1\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')".to_string()
            ),
            (
                "spec.strategy.rollingUpdate.maxUnavailable".to_string(),
                "Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%".to_string()
            ),
        ]
    );
    let recreate = deployment(
        json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
        web(),
    );
    assert_eq!(
        spec_problems(&recreate),
        [(
            "spec.strategy.rollingUpdate".to_string(),
            "Forbidden: may not be specified when strategy `type` is 'Recreate'".to_string()
        )]
    );
}

#[test]
fn the_selector_must_match_and_stay() {
    let d = deployment(json!({}), json!({"matchLabels": {"app": "db"}}));
    assert_eq!(
        spec_problems(&d),
        [(
            "spec.template.metadata.labels".to_string(),
            "Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`".to_string()
        )]
    );
    let old = deployment(json!({}), web());
    let mut new = old.clone();
    new["spec"]["selector"] = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["db"]}]});
    assert_eq!(
        update_problems(&old, &new),
        [(
            "spec.selector".to_string(),
            "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\"}, MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"tier\", Operator:\"NotIn\", Values:[]string{\"db\"}}}}: field is immutable".to_string()
        )]
    );
}
