//! Decoding and validation answered as kube-apiserver 1.33 answers them: status code,
//! reason, message and causes, through the HTTP API (raw bodies where a typed client could
//! not send them).

use k8s_labs_apiserver::testing::TestApiServer;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::Status;
use serde_json::{Value, json};

/// Sends `body` with `method` to `path`; the object answered, or the Status of the error.
async fn send(
    api: &TestApiServer,
    method: &str,
    path: &str,
    body: &Value,
) -> Result<Value, Status> {
    let content_type = if method == "PATCH" {
        "application/apply-patch+yaml"
    } else {
        "application/json"
    };
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", content_type)
        .body(serde_json::to_vec(body).unwrap())
        .unwrap();
    match api.client.request_text(request).await {
        Ok(text) => Ok(serde_json::from_str(&text).unwrap()),
        Err(kube::Error::Api(status)) => Err(*status),
        Err(other) => panic!("{other:?}"),
    }
}

/// The error a request got: code, reason, message.
fn refused<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn body_types_must_match_the_url() {
    let api = TestApiServer::start().await.unwrap();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
    let status = send(&api, "POST", CONFIGMAPS, &secret).await.unwrap_err();
    assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        status.message,
        "Secret in version \"v1\" cannot be handled as a ConfigMap: converting (v1.Secret) to (core.ConfigMap): unknown conversion"
    );
    let v9 = json!({"apiVersion": "v9", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let status = send(&api, "POST", CONFIGMAPS, &v9).await.unwrap_err();
    assert_eq!(
        (status.code, status.message.as_str()),
        (
            400,
            "ConfigMap in version \"v9\" cannot be handled as a ConfigMap: no kind \"ConfigMap\" is registered for version \"v9\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        )
    );
    // Without apiVersion and kind, the URL says what the body is (as curl users send it).
    let bare = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
    let created = send(&api, "POST", CONFIGMAPS, &bare).await.unwrap();
    assert_eq!(
        (created["kind"].as_str(), created["apiVersion"].as_str()),
        (Some("ConfigMap"), Some("v1"))
    );
    // PUT decodes the same way.
    let mut replaced = created.clone();
    replaced["kind"] = json!("Secret");
    let status = send(&api, "PUT", &format!("{CONFIGMAPS}/c"), &replaced)
        .await
        .unwrap_err();
    assert_eq!(status.code, 400);
    assert!(
        status
            .message
            .starts_with("Secret in version \"v1\" cannot be handled as a ConfigMap")
    );
    // Another version of the same kind decodes, then is not the version expected.
    let beta =
        json!({"apiVersion": "apps/v1beta2", "kind": "StatefulSet", "metadata": {"name": "web"}});
    let status = send(
        &api,
        "POST",
        "/apis/apps/v1/namespaces/default/statefulsets",
        &beta,
    )
    .await
    .unwrap_err();
    assert_eq!(
        (status.code, status.message.as_str()),
        (
            400,
            "the API version in the data (apps/v1beta2) does not match the expected API version (apps/v1)"
        )
    );
    // Server-side apply wants the exact type.
    let apply = format!("{CONFIGMAPS}/c?fieldManager=test");
    let status = send(&api, "PATCH", &apply, &secret).await.unwrap_err();
    assert_eq!(
        (status.code, status.message.as_str()),
        (400, "invalid object type: /v1, Kind=Secret")
    );
    api.shutdown().await;
}

#[tokio::test]
async fn object_names_follow_each_resources_rule() {
    let api = TestApiServer::start().await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(api.client.clone(), "default");
    let status = refused(
        maps.create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "a b"}})),
        )
        .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "ConfigMap \"a b\" is invalid: metadata.name: Invalid value: \"a b\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    let details = status.details.unwrap();
    assert_eq!(
        (details.kind.as_str(), details.name.as_str()),
        ("ConfigMap", "a b")
    );
    assert_eq!(
        (
            details.causes[0].reason.as_str(),
            details.causes[0].field.as_str()
        ),
        ("FieldValueInvalid", "metadata.name")
    );
    // ConfigMaps and Pods are subdomains: 253 and 64 characters are fine.
    let long = "c".repeat(253);
    maps.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": long}})),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    let pod = json!({"metadata": {"name": "p".repeat(64)}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    pods.create(&PostParams::default(), &from(pod))
        .await
        .unwrap();
    api.shutdown().await;
}

#[tokio::test]
async fn labels_for_namespaces_dns1035_for_services_prefixes_for_generate_names() {
    let api = TestApiServer::start().await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(api.client.clone(), "default");
    // Namespaces are labels, Services DNS-1035 labels.
    let namespaces: Api<Namespace> = Api::all(api.client.clone());
    let status = refused(
        namespaces
            .create(
                &PostParams::default(),
                &from(json!({"metadata": {"name": "a.b"}})),
            )
            .await,
    );
    assert_eq!(
        status.message,
        "Namespace \"a.b\" is invalid: metadata.name: Invalid value: \"a.b\": must not contain dots"
    );
    let services: Api<Service> = Api::namespaced(api.client.clone(), "default");
    let service = json!({"metadata": {"name": "0web"}, "spec": {"ports": [{"port": 80}]}});
    let status = refused(
        services
            .create(&PostParams::default(), &from(service))
            .await,
    );
    assert!(
        status.message.starts_with(
            "Service \"0web\" is invalid: metadata.name: Invalid value: \"0web\": a DNS-1035 label"
        ),
        "{}",
        status.message
    );
    // StatefulSet names become pod hostnames: labels since 1.27.
    let sets: Api<StatefulSet> = Api::namespaced(api.client.clone(), "default");
    let mut dotted = statefulset("web", "web");
    dotted.metadata.name = Some("web.x".into());
    let status = refused(sets.create(&PostParams::default(), &dotted).await);
    assert_eq!(
        status.message,
        "StatefulSet.apps \"web.x\" is invalid: metadata.name: Invalid value: \"web.x\": must not contain dots"
    );
    // generateName: the prefix is checked as a prefix, the generated name stays within 63.
    let status = refused(
        maps.create(
            &PostParams::default(),
            &from(json!({"metadata": {"generateName": "Web-"}})),
        )
        .await,
    );
    let fields: Vec<String> = status
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(fields, ["metadata.generateName", "metadata.name"]);
    let generated = maps
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"generateName": format!("{}-", "g".repeat(70))}})),
        )
        .await
        .unwrap();
    assert_eq!(generated.metadata.name.unwrap().len(), 63);
    let status = refused(
        maps.create(&PostParams::default(), &from(json!({"metadata": {}})))
            .await,
    );
    assert_eq!(
        status.message,
        "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required"
    );
    api.shutdown().await;
}

#[tokio::test]
async fn labels_annotations_finalizers_and_owners() {
    let api = TestApiServer::start().await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(api.client.clone(), "default");
    let create = |metadata: Value| {
        let maps = maps.clone();
        async move {
            refused(
                maps.create(&PostParams::default(), &from(json!({"metadata": metadata})))
                    .await,
            )
        }
    };
    let status = create(json!({"name": "c", "labels": {"a b": "x"}})).await;
    assert_eq!(
        status.message,
        "ConfigMap \"c\" is invalid: metadata.labels: Invalid value: \"a b\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    );
    let status = create(json!({"name": "c", "annotations": {"big": "x".repeat(300 * 1024)}})).await;
    assert_eq!(
        status.message,
        "ConfigMap \"c\" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes"
    );
    assert_eq!(
        status.details.unwrap().causes[0].reason,
        "FieldValueTooLong"
    );
    let status = create(json!({"name": "c", "finalizers": ["mine", "a b/c"]})).await;
    assert!(status.message.starts_with("ConfigMap \"c\" is invalid: [metadata.finalizers: Invalid value: \"a b/c\": prefix part a lowercase RFC 1123 subdomain"), "{}", status.message);
    assert!(status.message.contains("metadata.finalizers[0]: Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified"));
    let owner = |name: &str| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": "1", "controller": true});
    let status = create(
        json!({"name": "c", "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p"}]}),
    )
    .await;
    assert_eq!(
        status.message,
        "ConfigMap \"c\" is invalid: metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty"
    );
    let status = create(json!({"name": "c", "ownerReferences": [owner("a"), owner("b")]})).await;
    assert!(status.message.ends_with("Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/a and ReplicaSet/b"));
    // Updates are checked too.
    maps.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "ok"}})),
    )
    .await
    .unwrap();
    let relabel = Patch::Merge(json!({"metadata": {"labels": {"app": "a b"}}}));
    let status = refused(maps.patch("ok", &PatchParams::default(), &relabel).await);
    assert!(status.message.starts_with("ConfigMap \"ok\" is invalid: metadata.labels: Invalid value: \"a b\": a valid label must be"));
    api.shutdown().await;
}

fn statefulset(selector: &str, labels: &str) -> StatefulSet {
    from(json!({
        "metadata": {"name": "web"},
        "spec": {
            "serviceName": "nginx", "replicas": 1,
            "selector": {"matchLabels": {"app": selector}},
            "template": {"metadata": {"labels": {"app": labels}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
        }
    }))
}

#[tokio::test]
async fn statefulsets_as_kube_apiserver_checks_them() {
    let api = TestApiServer::start().await.unwrap();
    let sets: Api<StatefulSet> = Api::namespaced(api.client.clone(), "default");
    let status = refused(
        sets.create(&PostParams::default(), &statefulset("nginx", "web"))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "StatefulSet.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
    );
    let details = status.details.unwrap();
    assert_eq!(
        (details.group.as_str(), details.kind.as_str()),
        ("apps", "StatefulSet")
    );
    let mut on_delete: Value = serde_json::to_value(statefulset("web", "web")).unwrap();
    on_delete["spec"]["updateStrategy"] =
        json!({"type": "OnDelete", "rollingUpdate": {"partition": 1}});
    let status = refused(sets.create(&PostParams::default(), &from(on_delete)).await);
    assert_eq!(
        status.message,
        "StatefulSet.apps \"web\" is invalid: spec.updateStrategy.rollingUpdate: Invalid value: apps.RollingUpdateStatefulSetStrategy{Partition:1, MaxUnavailable:(*intstr.IntOrString)(nil)}: only allowed for updateStrategy 'RollingUpdate'"
    );
    sets.create(&PostParams::default(), &statefulset("web", "web"))
        .await
        .unwrap();
    // Replicas and the template may change; the service name may not.
    let allowed = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}});
    sets.patch("web", &PatchParams::default(), &Patch::Strategic(allowed))
        .await
        .unwrap();
    let forbidden = Patch::Merge(json!({"spec": {"serviceName": "other"}}));
    let status = refused(sets.patch("web", &PatchParams::default(), &forbidden).await);
    assert_eq!(
        status.message,
        "StatefulSet.apps \"web\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    );
    assert_eq!(
        status.details.unwrap().causes[0].reason,
        "FieldValueForbidden"
    );
    api.shutdown().await;
}

#[tokio::test]
async fn services_ports_and_cluster_ips() {
    let api = TestApiServer::start().await.unwrap();
    let services: Api<Service> = Api::namespaced(api.client.clone(), "default");
    let ports = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"name": "http", "port": 0}, {"name": "http", "port": 8080}, {"port": 9090}]}});
    let status = refused(services.create(&PostParams::default(), &from(ports)).await);
    assert_eq!(
        status.message,
        "Service \"web\" is invalid: [spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[1].name: Duplicate value: \"http\", spec.ports[2].name: Required value]"
    );
    let web = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}});
    services
        .create(&PostParams::default(), &from(web))
        .await
        .unwrap();
    let change = Patch::Merge(json!({"spec": {"clusterIP": "10.96.0.77"}}));
    let status = refused(
        services
            .patch("web", &PatchParams::default(), &change)
            .await,
    );
    assert_eq!(
        (status.code, status.message.as_str()),
        (
            422,
            "Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.77\"}: may not change once set"
        )
    );
    api.shutdown().await;
}

#[tokio::test]
async fn claims_are_immutable_but_bound_ones_grow() {
    let api = TestApiServer::start().await.unwrap();
    let classes: Api<StorageClass> = Api::all(api.client.clone());
    for (name, expandable) in [("expandable", true), ("standard", false)] {
        let class = json!({"metadata": {"name": name}, "provisioner": "example.com/p",
            "allowVolumeExpansion": expandable});
        classes
            .create(&PostParams::default(), &from(class))
            .await
            .unwrap();
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(api.client.clone(), "default");
    let bound = Patch::Merge(json!({"status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}));
    for (name, class) in [("data", "expandable"), ("fixed", "standard")] {
        let claim = json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
            "storageClassName": class, "resources": {"requests": {"storage": "1Gi"}}}});
        claims
            .create(&PostParams::default(), &from(claim))
            .await
            .unwrap();
    }
    // Unbound: the spec is immutable, the storage request included.
    let grow = Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}}));
    let status = refused(claims.patch("data", &PatchParams::default(), &grow).await);
    assert!(
        status.message.starts_with("PersistentVolumeClaim \"data\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n  core.PersistentVolumeClaimSpec{"),
        "{}",
        status.message
    );
    // Bound: the request may grow, where the class allows expansion.
    for name in ["data", "fixed"] {
        claims
            .patch_status(name, &PatchParams::default(), &bound)
            .await
            .unwrap();
    }
    let grown = claims
        .patch("data", &PatchParams::default(), &grow)
        .await
        .unwrap();
    assert_eq!(
        grown.spec.unwrap().resources.unwrap().requests.unwrap()["storage"].0,
        "2Gi"
    );
    let status = refused(claims.patch("fixed", &PatchParams::default(), &grow).await);
    assert_eq!(
        (status.code, status.reason.as_str(), status.message.as_str()),
        (
            403,
            "Forbidden",
            "persistentvolumeclaims \"fixed\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
        )
    );
    let modes = Patch::Merge(json!({"spec": {"accessModes": ["ReadWriteMany"]}}));
    let status = refused(claims.patch("data", &PatchParams::default(), &modes).await);
    assert!(
        status
            .message
            .contains("+ \tAccessModes: [\"ReadWriteMany\"],"),
        "{}",
        status.message
    );
    api.shutdown().await;
}

#[tokio::test]
async fn pods_name_containers_once_and_change_only_images() {
    let api = TestApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    let twins = json!({"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "x", "image": "nginx"}, {"name": "x", "image": "busybox"}]}});
    let status = refused(pods.create(&PostParams::default(), &from(twins)).await);
    assert_eq!(
        status.message,
        "Pod \"p\" is invalid: spec.containers[1].name: Duplicate value: \"x\""
    );
    assert_eq!(
        status.details.unwrap().causes[0].reason,
        "FieldValueDuplicate"
    );
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}});
    pods.create(&PostParams::default(), &from(pod))
        .await
        .unwrap();
    let image =
        Patch::Strategic(json!({"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}));
    pods.patch("p", &PatchParams::default(), &image)
        .await
        .unwrap();
    let port = Patch::Strategic(
        json!({"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 81}]}]}}),
    );
    let status = refused(pods.patch("p", &PatchParams::default(), &port).await);
    assert!(
        status.message.starts_with("Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n  core.PodSpec{"),
        "{}",
        status.message
    );
    let more = Patch::Strategic(
        json!({"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}),
    );
    let status = refused(pods.patch("p", &PatchParams::default(), &more).await);
    assert_eq!(
        status.message,
        "Pod \"p\" is invalid: spec.containers: Forbidden: pod updates may not add or remove containers"
    );
    api.shutdown().await;
}

/// Core Events get the generic registry's metadata validation (labels, annotations) and the
/// only name rule it has, a URL path segment (found by the fuzz test: their labels were not
/// checked at all).
#[tokio::test]
async fn core_events_get_the_generic_metadata_validation() {
    let api = TestApiServer::start().await.unwrap();
    let event = |name: &str, label: &str| {
        json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "labels": {"app": label}},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Test", "message": "m", "type": "Normal"})
    };
    let events = "/api/v1/namespaces/default/events";
    // Not a DNS subdomain, but a path segment: taken.
    let created = send(&api, "POST", events, &event("Pod:p.1", "web")).await;
    assert!(created.is_ok(), "{created:?}");
    let long = "x".repeat(64);
    let status = send(&api, "POST", events, &event("e2", &long))
        .await
        .unwrap_err();
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .message
            .starts_with("Event \"e2\" is invalid: metadata.labels: Invalid value: "),
        "{}",
        status.message
    );
    let status = send(&api, "POST", events, &event("a%b", "web"))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code, status.message.as_str()),
        (
            422,
            "Event \"a%b\" is invalid: metadata.name: Invalid value: \"a%b\": may not contain '%'"
        )
    );
}
