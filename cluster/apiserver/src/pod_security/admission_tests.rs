//! Admission decisions against a store, with the messages kube-apiserver's PodSecurity plugin
//! gives (`admission/admission.go`, `admission/response.go`).

use serde_json::{Value, json};

use super::*;
use crate::registry;
use crate::store::Change;

fn store_with_namespace(name: &str, labels: Value) -> Store {
    let store = Store::new();
    put(
        &store,
        "/namespaces",
        "",
        json!({"metadata": {"name": name, "labels": labels}}),
    );
    store
}

fn put(store: &Store, key: &'static str, namespace: &str, object: Value) {
    let name = str_at(&object, "/metadata/name")
        .unwrap_or_default()
        .to_string();
    store
        .mutate(key, namespace, &name, false, |_| Ok(Change::Put(object)))
        .unwrap();
}

fn target(group: &str, plural: &str, namespace: Option<&str>, sub: Option<&str>) -> Target {
    Target {
        resource: registry::find(group, "v1", plural).unwrap(),
        namespace: namespace.map(String::from),
        name: None,
        subresource: sub.map(String::from),
        watch_path: false,
    }
}

fn pods_in(namespace: &str) -> Target {
    target("", "pods", Some(namespace), None)
}

fn host_path_pod(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {
        "containers": [{"name": "c", "image": "nginx"}],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
    }})
}

fn plain_pod(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

const RESTRICTED_DETAIL: &str = "allowPrivilegeEscalation != false (container \"c\" must set \
    securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" \
    must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or \
    container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or \
    container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \
    \"Localhost\")";

fn warnings(review: ApiResult<Review>, store: &Store) -> Vec<String> {
    review.unwrap().into_warnings(store)
}

#[test]
fn enforce_refuses_a_violating_pod_with_upstreams_message() {
    let store = store_with_namespace(
        "x",
        json!({"pod-security.kubernetes.io/enforce": "baseline"}),
    );
    let error = Admission::prepare(&store, &pods_in("x"))
        .review(None, &host_path_pod("p"))
        .unwrap_err();
    assert_eq!((error.code, error.reason), (403, "Forbidden"));
    assert_eq!(
        error.message,
        "pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": hostPath volumes (volume \"h\")"
    );
    let allowed = Admission::prepare(&store, &pods_in("x")).review(None, &plain_pod("q"));
    assert!(warnings(allowed, &store).is_empty());
}

#[test]
fn restricted_lists_every_violation_in_order_and_echoes_the_version() {
    let labels = json!({
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "v1.33",
    });
    let store = store_with_namespace("x", labels);
    let error = Admission::prepare(&store, &pods_in("x"))
        .review(None, &plain_pod("p"))
        .unwrap_err();
    assert_eq!(
        error.message,
        format!(
            "pods \"p\" is forbidden: violates PodSecurity \"restricted:v1.33\": {RESTRICTED_DETAIL}"
        )
    );
}

#[test]
fn warn_allows_and_warns() {
    let store = store_with_namespace(
        "x",
        json!({"pod-security.kubernetes.io/warn": "restricted"}),
    );
    let review = Admission::prepare(&store, &pods_in("x")).review(None, &plain_pod("p"));
    assert_eq!(
        warnings(review, &store),
        [format!(
            "would violate PodSecurity \"restricted:latest\": {RESTRICTED_DETAIL}"
        )]
    );
    // Audit alone has no visible effect: there is no audit log.
    let store = store_with_namespace(
        "y",
        json!({"pod-security.kubernetes.io/audit": "restricted"}),
    );
    let review = Admission::prepare(&store, &pods_in("y")).review(None, &plain_pod("p"));
    assert!(warnings(review, &store).is_empty());
}

#[test]
fn workloads_are_warned_never_refused() {
    let store = store_with_namespace(
        "x",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    );
    let statefulset = json!({"metadata": {"name": "web"}, "spec": {"template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }}});
    for plural in ["statefulsets", "replicasets", "deployments"] {
        let target = target("apps", plural, Some("x"), None);
        let review = Admission::prepare(&store, &target).review(None, &statefulset);
        assert_eq!(
            warnings(review, &store),
            [format!(
                "would violate PodSecurity \"restricted:latest\": {RESTRICTED_DETAIL}"
            )],
            "{plural}: warn follows the stricter enforce level"
        );
    }
    // Their /scale and /status are not admitted.
    let scale = target("apps", "statefulsets", Some("x"), Some("scale"));
    let review = Admission::prepare(&store, &scale).review(Some(&statefulset), &statefulset);
    assert!(warnings(review, &store).is_empty());
}

#[test]
fn pod_updates_are_checked_only_when_images_or_containers_change() {
    let store = store_with_namespace(
        "x",
        json!({"pod-security.kubernetes.io/enforce": "baseline"}),
    );
    let old = host_path_pod("p");
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"a": "b"});
    let admission = Admission::prepare(&store, &pods_in("x"));
    assert!(admission.review(Some(&old), &relabelled).is_ok());
    let mut new_image = old.clone();
    new_image["spec"]["containers"][0]["image"] = json!("busybox");
    assert_eq!(
        admission.review(Some(&old), &new_image).unwrap_err().code,
        403
    );
    let mut ephemeral = old.clone();
    ephemeral["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}]);
    assert_eq!(
        admission.review(Some(&old), &ephemeral).unwrap_err().code,
        403
    );
    // This server does not refuse other spec changes yet, so they are checked too.
    let mut added_volume = plain_pod("p");
    let admission_plain = Admission::prepare(&store, &pods_in("x"));
    added_volume["spec"]["volumes"] = host_path_pod("p")["spec"]["volumes"].clone();
    let refused = admission_plain.review(Some(&plain_pod("p")), &added_volume);
    assert_eq!(refused.unwrap_err().code, 403);
    let mut tolerated = old.clone();
    tolerated["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
    tolerated["spec"]["activeDeadlineSeconds"] = json!(30);
    assert!(admission.review(Some(&old), &tolerated).is_ok());
    // The node's status updates go through /status, which is never checked.
    let status = target("", "pods", Some("x"), Some("status"));
    assert!(
        Admission::prepare(&store, &status)
            .review(Some(&old), &new_image)
            .is_ok()
    );
}

#[test]
fn a_pod_in_a_missing_namespace_is_an_internal_error_a_workload_is_allowed() {
    let store = Store::new();
    let error = Admission::prepare(&store, &pods_in("gone"))
        .review(None, &plain_pod("p"))
        .unwrap_err();
    assert_eq!(error.code, 500);
    assert_eq!(
        error.message,
        "Internal error occurred: failed to lookup namespace \"gone\""
    );
    let rs = target("apps", "replicasets", Some("gone"), None);
    assert!(
        Admission::prepare(&store, &rs)
            .review(None, &json!({}))
            .is_ok()
    );
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}})
}

fn namespaces() -> Target {
    target("", "namespaces", None, None)
}

#[test]
fn namespace_labels_must_parse() {
    let store = Store::new();
    let bad = namespace("x", json!({"pod-security.kubernetes.io/enforce": "foo"}));
    let error = Admission::prepare(&store, &namespaces())
        .review(None, &bad)
        .unwrap_err();
    assert_eq!((error.code, error.reason), (422, "Invalid"));
    assert_eq!(
        error.message,
        "Namespace \"x\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: \
         Invalid value: \"foo\": must be one of privileged, baseline, restricted"
    );
    let good = namespace("x", json!({}));
    let admission = Admission::prepare(&store, &namespaces());
    assert_eq!(admission.review(Some(&good), &bad).unwrap_err().code, 422);
    // Labels that were already bad do not block other updates.
    let mut relabelled = bad.clone();
    relabelled["metadata"]["labels"]["team"] = json!("a");
    assert!(admission.review(Some(&bad), &relabelled).is_ok());
    let worse = namespace("x", json!({"pod-security.kubernetes.io/enforce": "bar"}));
    assert_eq!(admission.review(Some(&bad), &worse).unwrap_err().code, 422);
}

#[test]
fn a_stricter_enforce_level_names_the_existing_pods_that_violate_it() {
    let store = store_with_namespace("x", json!({}));
    put(&store, "/pods", "x", host_path_pod("b"));
    put(&store, "/pods", "x", host_path_pod("a"));
    put(&store, "/pods", "x", plain_pod("c"));
    let old = namespace("x", json!({}));
    let new = namespace(
        "x",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    );
    let review = Admission::prepare(&store, &namespaces()).review(Some(&old), &new);
    assert_eq!(
        warnings(review, &store),
        [
            "existing pods in namespace \"x\" violate the new PodSecurity enforce level \"restricted:latest\"",
            "a (and 1 other pod): allowPrivilegeEscalation != false, unrestricted capabilities, \
             restricted volume types, runAsNonRoot != true, seccompProfile",
            "c: allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile",
        ]
    );
    // Relaxing, keeping, or setting privileged checks nothing.
    let baseline = namespace(
        "x",
        json!({"pod-security.kubernetes.io/enforce": "baseline"}),
    );
    let admission = Admission::prepare(&store, &namespaces());
    for (from, to) in [(&new, &baseline), (&new, &new), (&baseline, &old)] {
        assert!(warnings(admission.review(Some(from), to), &store).is_empty());
    }
    // A new version of the same level is checked again.
    let pinned = namespace(
        "x",
        json!({"pod-security.kubernetes.io/enforce": "baseline",
               "pod-security.kubernetes.io/enforce-version": "v1.30"}),
    );
    assert_eq!(
        warnings(admission.review(Some(&baseline), &pinned), &store),
        [
            "existing pods in namespace \"x\" violate the new PodSecurity enforce level \"baseline:v1.30\"",
            "a (and 1 other pod): hostPath volumes",
        ]
    );
}

#[test]
fn replicas_of_one_controller_are_checked_after_the_others() {
    let owned = |name: &str, uid: &str| {
        let mut pod = plain_pod(name);
        pod["metadata"]["ownerReferences"] = json!([{"uid": uid, "controller": true}]);
        pod
    };
    let pods = vec![
        owned("a-0", "a"),
        owned("a-1", "a"),
        plain_pod("p"),
        owned("b-0", "b"),
    ];
    let names: Vec<String> = prioritize(pods)
        .iter()
        .map(|p| str_at(p, "/metadata/name").unwrap().to_string())
        .collect();
    assert_eq!(names, ["a-0", "p", "b-0", "a-1"]);
}
