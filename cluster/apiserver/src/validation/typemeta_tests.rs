use super::*;
use crate::registry::find;
use serde_json::json;

fn configmaps() -> &'static ResourceInfo {
    find("", "v1", "configmaps").unwrap()
}

fn check(resource: &ResourceInfo, object: Value) -> Result<(), String> {
    let body = serde_json::to_vec(&object).unwrap();
    check_body(resource, &object, &body).map_err(|e| {
        assert_eq!((e.code, e.reason), (400, "BadRequest"));
        e.message
    })
}

#[test]
fn matching_or_missing_type_fields_are_accepted() {
    assert_eq!(
        check(
            configmaps(),
            json!({"apiVersion": "v1", "kind": "ConfigMap"})
        ),
        Ok(())
    );
    assert_eq!(
        check(configmaps(), json!({"metadata": {"name": "c"}})),
        Ok(())
    );
    assert_eq!(check(configmaps(), json!({"kind": "ConfigMap"})), Ok(()));
    assert_eq!(check(configmaps(), json!({"apiVersion": "v1"})), Ok(()));
    let sets = find("apps", "v1", "statefulsets").unwrap();
    assert_eq!(
        check(
            sets,
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet"})
        ),
        Ok(())
    );
}

#[test]
fn another_kind_fails_to_convert() {
    assert_eq!(
        check(configmaps(), json!({"apiVersion": "v1", "kind": "Secret"})),
        Err("Secret in version \"v1\" cannot be handled as a ConfigMap: converting (v1.Secret) to (core.ConfigMap): unknown conversion".into())
    );
    let sets = find("apps", "v1", "statefulsets").unwrap();
    assert_eq!(
        check(sets, json!({"apiVersion": "apps/v1", "kind": "Deployment"})),
        Err("Deployment in version \"v1\" cannot be handled as a StatefulSet: converting (v1.Deployment) to (apps.StatefulSet): unknown conversion".into())
    );
}

#[test]
fn unknown_versions_and_kinds_are_not_registered() {
    assert_eq!(
        check(configmaps(), json!({"apiVersion": "v9", "kind": "ConfigMap"})),
        Err("ConfigMap in version \"v9\" cannot be handled as a ConfigMap: no kind \"ConfigMap\" is registered for version \"v9\" in scheme \"pkg/api/legacyscheme/scheme.go:30\"".into())
    );
    let pods = find("", "v1", "pods").unwrap();
    assert_eq!(
        check(pods, json!({"apiVersion": "v1", "kind": "pod"})),
        Err("pod in version \"v1\" cannot be handled as a Pod: no kind \"pod\" is registered for version \"v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\"".into())
    );
}

#[test]
fn another_version_of_the_same_type_is_not_the_expected_one() {
    let sets = find("apps", "v1", "statefulsets").unwrap();
    assert_eq!(
        check(sets, json!({"apiVersion": "apps/v1beta2", "kind": "StatefulSet"})),
        Err("the API version in the data (apps/v1beta2) does not match the expected API version (apps/v1)".into())
    );
    let events = find("", "v1", "events").unwrap();
    assert_eq!(
        check(events, json!({"apiVersion": "events.k8s.io/v1", "kind": "Event"})),
        Err("the API version in the data (events.k8s.io/v1) does not match the expected API version (v1)".into())
    );
}

#[test]
fn malformed_type_fields_are_unrecognized() {
    assert_eq!(
        check(configmaps(), json!({"apiVersion": "a/b/c"})),
        Err("the object provided is unrecognized (must be of type ConfigMap): unexpected GroupVersion string: a/b/c ({\"apiVersion\":\"a/b/c\"})".into())
    );
    let long = json!({"apiVersion": 1, "kind": "ConfigMap", "metadata": {"name": "c"}});
    assert_eq!(
        check(configmaps(), long),
        Err("the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; json parse error: json: cannot unmarshal number into Go struct field .apiVersion of type string ({\"apiVersion\":1,\"kind\":\"Config ...)".into())
    );
}

#[test]
fn apply_wants_the_exact_type() {
    let sets = find("apps", "v1", "statefulsets").unwrap();
    assert!(
        check_applied(
            sets,
            &json!({"apiVersion": "apps/v1", "kind": "StatefulSet"})
        )
        .is_ok()
    );
    let error = check_applied(
        sets,
        &json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
    )
    .unwrap_err();
    assert_eq!(
        (error.code, error.message.as_str()),
        (400, "invalid object type: apps/v1, Kind=Deployment")
    );
    let error = check_applied(
        configmaps(),
        &json!({"apiVersion": "v9", "kind": "ConfigMap"}),
    )
    .unwrap_err();
    assert_eq!(error.message, "invalid object type: /v9, Kind=ConfigMap");
}
