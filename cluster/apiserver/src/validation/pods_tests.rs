use super::*;
use serde_json::json;

fn pod_with_sub_path(sub_path: &str) -> Value {
    json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "volumeMounts": [{"name": "data", "mountPath": "/data", "subPath": sub_path}]}]},
    })
}

#[test]
fn sub_paths_must_descend() {
    for ok in ["", "a", "a/b", "a..b", "..a/b"] {
        assert!(
            spec_problems(&pod_with_sub_path(ok)["spec"], "spec", true).is_empty(),
            "{ok}"
        );
    }
    let problems = spec_problems(&pod_with_sub_path("../../../../etc")["spec"], "spec", true);
    assert_eq!(
        problems,
        [(
            "spec.containers[0].volumeMounts[0].subPath".to_string(),
            "Invalid value: \"../../../../etc\": must not contain '..'".to_string()
        )]
    );
    let problems = spec_problems(&pod_with_sub_path("/etc/../x")["spec"], "spec", false);
    let messages: Vec<&str> = problems.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(
        messages,
        [
            "Invalid value: \"/etc/../x\": must be a relative path",
            "Invalid value: \"/etc/../x\": must not contain '..'"
        ]
    );
}

#[test]
fn container_names_are_unique_dns_labels() {
    let spec = json!({"containers": [
        {"name": "x", "image": "nginx"}, {"name": "x", "image": "nginx"}, {"name": "Web_1", "image": "nginx"}
    ], "initContainers": [{"name": "x", "image": "busybox"}]});
    let causes = spec_problems(&spec, "spec", true);
    assert_eq!(
        causes[0],
        (
            "spec.containers[1].name".to_string(),
            "Duplicate value: \"x\"".to_string()
        )
    );
    assert_eq!(causes[1].0, "spec.containers[2].name");
    assert!(
        causes[1]
            .1
            .starts_with("Invalid value: \"Web_1\": a lowercase RFC 1123 label")
    );
    assert_eq!(
        causes[2],
        (
            "spec.initContainers[0].name".to_string(),
            "Duplicate value: \"x\"".to_string()
        )
    );
    // StatefulSet templates are not checked as pod specs.
    assert!(spec_problems(&spec, "spec.template.spec", false).is_empty());
}

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "p"}, "spec": spec})
}

#[test]
fn images_deadlines_and_tolerations_may_change() {
    let old = pod(json!({"containers": [{"name": "c", "image": "nginx"}],
        "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 5}]}));
    let new = pod(json!({"containers": [{"name": "c", "image": "nginx:1.27"}],
        "activeDeadlineSeconds": 30,
        "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 9}, {"key": "n", "operator": "Exists"}]}));
    assert_eq!(update_problems(&old, &new), Vec::<Cause>::new());
    let longer = pod(
        json!({"containers": [{"name": "c", "image": "nginx"}], "activeDeadlineSeconds": 60,
        "tolerations": [{"key": "k", "operator": "Exists"}]}),
    );
    assert_eq!(
        update_problems(&new, &longer),
        [(
            "spec.activeDeadlineSeconds".to_string(),
            "Invalid value: 60: must be less than or equal to previous value".to_string()
        )]
    );
    let dropped = pod(json!({"containers": [{"name": "c", "image": "nginx"}]}));
    assert_eq!(
        update_problems(&old, &dropped),
        [(
            "spec.tolerations".to_string(),
            "Forbidden: existing toleration can not be modified except its tolerationSeconds"
                .to_string()
        )]
    );
}

#[test]
fn other_fields_are_immutable() {
    let old = pod(
        json!({"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}),
    );
    let new = pod(
        json!({"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 81}]}]}),
    );
    let causes = update_problems(&old, &new);
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].0, "spec");
    assert!(
        causes[0]
            .1
            .starts_with(&format!("Forbidden: {IMMUTABLE_SPEC}\n  core.PodSpec{{\n"))
    );
    assert!(causes[0].1.contains(
        "+ \tContainers: [{\"image\":\"nginx\",\"name\":\"c\",\"ports\":[{\"containerPort\":81}]}],"
    ));
    let more = pod(
        json!({"containers": [{"name": "c", "image": "nginx"}, {"name": "d", "image": "nginx"}]}),
    );
    assert_eq!(
        update_problems(&old, &more),
        [(
            "spec.containers".to_string(),
            "Forbidden: pod updates may not add or remove containers".to_string()
        )]
    );
}
