//! Server-side apply, subresources, graceful deletion and discovery, driven by kube-rs.

use k8s_labs_apiserver::testing::TestApiServer;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::discovery::Discovery;
use serde_json::json;

fn statefulset(replicas: i32, image: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "serviceName": "nginx",
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80, "name": "web"}]}]}
            }
        }
    })
}

#[tokio::test]
async fn server_side_apply_creates_then_updates_a_statefulset() {
    let api = TestApiServer::start().await.unwrap();
    let sets: Api<StatefulSet> = Api::namespaced(api.client.clone(), "default");
    let params = PatchParams::apply("test");
    let created = sets
        .patch("web", &params, &Patch::Apply(statefulset(3, "nginx")))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.pod_management_policy.as_deref(), Some("OrderedReady"));
    assert_eq!(spec.revision_history_limit, Some(10));
    let managers = created.metadata.managed_fields.as_ref().unwrap();
    assert_eq!(managers[0].manager.as_deref(), Some("test"));
    assert_eq!(managers[0].operation.as_deref(), Some("Apply"));

    // Applying the same configuration again changes nothing.
    let again = sets
        .patch("web", &params, &Patch::Apply(statefulset(3, "nginx")))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        created.metadata.resource_version
    );

    let updated = sets
        .patch("web", &params, &Patch::Apply(statefulset(3, "nginx:1.25")))
        .await
        .unwrap();
    assert_eq!(updated.metadata.generation, Some(2));
    let template = updated.spec.unwrap().template.spec.unwrap();
    assert_eq!(template.containers.len(), 1);
    assert_eq!(template.containers[0].image.as_deref(), Some("nginx:1.25"));
    assert_eq!(
        template.containers[0].image_pull_policy.as_deref(),
        Some("Always")
    );

    // What the manager no longer applies is removed: here the container port.
    let mut without_ports = statefulset(3, "nginx:1.25");
    without_ports["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("ports");
    let pruned = sets
        .patch("web", &params, &Patch::Apply(without_ports))
        .await
        .unwrap();
    let container = &pruned.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(container.ports, None);
    assert_eq!(container.image.as_deref(), Some("nginx:1.25"));

    // Without a field manager, apply is invalid.
    let no_manager = PatchParams {
        field_manager: None,
        ..PatchParams::apply("x")
    };
    match sets
        .patch("web", &no_manager, &Patch::Apply(statefulset(1, "nginx")))
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 422),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn status_and_scale_subresources() {
    let api = TestApiServer::start().await.unwrap();
    let sets: Api<StatefulSet> = Api::namespaced(api.client.clone(), "default");
    let created: StatefulSet = serde_json::from_value(statefulset(3, "nginx")).unwrap();
    sets.create(&PostParams::default(), &created).await.unwrap();

    let mut current = sets.get("web").await.unwrap();
    current.status =
        Some(serde_json::from_value(json!({"replicas": 2, "readyReplicas": 1})).unwrap());
    let with_status = sets
        .replace_status("web", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(with_status.status.as_ref().unwrap().ready_replicas, Some(1));
    assert_eq!(with_status.metadata.generation, Some(1));

    // The main resource ignores status.
    let mut spec_change = with_status.clone();
    spec_change.status.as_mut().unwrap().ready_replicas = Some(3);
    spec_change.spec.as_mut().unwrap().min_ready_seconds = Some(5);
    let replaced = sets
        .replace("web", &PostParams::default(), &spec_change)
        .await
        .unwrap();
    assert_eq!(replaced.status.as_ref().unwrap().ready_replicas, Some(1));
    assert_eq!(replaced.metadata.generation, Some(2));

    let scale = sets.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    let status = scale.status.unwrap();
    assert_eq!(status.replicas, 2);
    assert_eq!(status.selector.as_deref(), Some("app=nginx"));

    let scaled = sets
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(5));
    assert_eq!(
        sets.get("web").await.unwrap().spec.unwrap().replicas,
        Some(5)
    );

    let status_patch = Patch::Merge(json!({"status": {"readyReplicas": 2}}));
    let patched = sets
        .patch_status("web", &PatchParams::default(), &status_patch)
        .await
        .unwrap();
    assert_eq!(patched.status.unwrap().ready_replicas, Some(2));
}

#[tokio::test]
async fn pods_on_a_node_terminate_gracefully_and_finalizers_hold_deletion() {
    let api = TestApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    let bound: Pod = serde_json::from_value(json!({
        "metadata": {"name": "bound"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &bound).await.unwrap();
    pods.delete("bound", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = pods.get("bound").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    // The node agent, once the containers are dead:
    pods.delete(
        "bound",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(pods.get_opt("bound").await.unwrap().is_none());

    let held: Pod = serde_json::from_value(json!({
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &held).await.unwrap();
    pods.delete("held", &DeleteParams::default()).await.unwrap();
    assert!(
        pods.get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    let release = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    pods.patch("held", &PatchParams::default(), &release)
        .await
        .unwrap();
    assert!(pods.get_opt("held").await.unwrap().is_none());
}

#[tokio::test]
async fn discovery_finds_core_apps_and_discovery_resources() {
    let api = TestApiServer::start().await.unwrap();
    let discovery = Discovery::new(api.client.clone()).run().await.unwrap();
    let mut found = Vec::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            found.push(format!(
                "{}/{} {:?}",
                resource.group, resource.plural, caps.scope
            ));
        }
    }
    for wanted in [
        "/pods Namespaced",
        "apps/statefulsets Namespaced",
        "discovery.k8s.io/endpointslices Namespaced",
        "/namespaces Cluster",
    ] {
        assert!(
            found.iter().any(|f| f == wanted),
            "{wanted} not in {found:?}"
        );
    }
}

#[tokio::test]
async fn events_k8s_io_events_are_core_events_in_another_shape() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event;
    let api = TestApiServer::start().await.unwrap();
    let client = api.client.clone();
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let event: Event = serde_json::from_value(json!({
        "metadata": {"name": "web-0.1"},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "regarding": {"kind": "Pod", "name": "web-0", "namespace": "default"},
        "note": "Created container nginx",
        "reason": "Created",
        "type": "Normal",
        "action": "Create",
        "reportingController": "kubelet",
        "reportingInstance": "node-1"
    }))
    .unwrap();
    let created = events.create(&PostParams::default(), &event).await.unwrap();
    assert_eq!(created.note.as_deref(), Some("Created container nginx"));

    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let listed = core.list(&Default::default()).await.unwrap().items;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].involved_object.name.as_deref(), Some("web-0"));
    assert_eq!(
        listed[0].message.as_deref(),
        Some("Created container nginx")
    );
    assert_eq!(listed[0].reporting_component.as_deref(), Some("kubelet"));
}

#[tokio::test]
async fn kube_clients_can_use_https_with_the_cluster_ca() {
    let api = TestApiServer::start().await.unwrap();
    let kubeconfig = api.https_kubeconfig();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(kube::Client::try_from(config).unwrap(), "default");
    assert!(
        pods.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_node_keeps_the_status_it_registers_with_a_pod_does_not() {
    use k8s_openapi::api::core::v1::Node;
    let api = TestApiServer::start().await.unwrap();
    let client = api.client.clone();
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "node-1"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap();
    let created = nodes.create(&PostParams::default(), &node).await.unwrap();
    assert_eq!(
        created.status.unwrap().conditions.unwrap()[0].status,
        "True"
    );

    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        "status": {"phase": "Running"}
    }))
    .unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));
}

#[tokio::test]
async fn put_creates_missing_endpoints_but_not_missing_configmaps() {
    use k8s_openapi::api::core::v1::{ConfigMap, Endpoints};
    let api = TestApiServer::start().await.unwrap();
    let client = api.client.clone();
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let ep: Endpoints =
        serde_json::from_value(json!({"metadata": {"name": "nginx"}, "subsets": []})).unwrap();
    endpoints
        .replace("nginx", &PostParams::default(), &ep)
        .await
        .unwrap();
    assert!(endpoints.get_opt("nginx").await.unwrap().is_some());

    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    match maps.replace("c", &PostParams::default(), &cm).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("{other:?}"),
    }
}

/// A `subPath` that leaves its volume is refused with kube-apiserver's 422, for pods and for
/// the pod templates of workloads, on create and on update (server-side apply included).
#[tokio::test]
async fn a_sub_path_that_leaves_its_volume_is_invalid() {
    let api = TestApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "escape"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox",
                "volumeMounts": [{"name": "scratch", "mountPath": "/host-etc",
                                  "subPath": "../../../../etc"}]}],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    }))
    .unwrap();
    match pods.create(&PostParams::default(), &pod).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
            assert_eq!(
                status.message,
                "Pod \"escape\" is invalid: spec.containers[0].volumeMounts[0].subPath: \
                 Invalid value: \"../../../../etc\": must not contain '..'"
            );
        }
        other => panic!("expected 422, got {other:?}"),
    }
    assert!(pods.get_opt("escape").await.unwrap().is_none());

    let sets: Api<StatefulSet> = Api::namespaced(api.client.clone(), "default");
    let mut set = statefulset(1, "nginx");
    set["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "www", "mountPath": "/www", "subPath": "/etc"}]);
    let refused = sets
        .patch("web", &PatchParams::apply("test"), &Patch::Apply(&set))
        .await;
    match refused {
        Err(kube::Error::Api(status)) => assert!(
            status.message.ends_with(
                "spec.template.spec.containers[0].volumeMounts[0].subPath: \
                 Invalid value: \"/etc\": must be a relative path"
            ),
            "{}",
            status.message
        ),
        other => panic!("expected 422, got {other:?}"),
    }
    // A valid set, then an update that escapes: refused, the stored set unchanged.
    sets.patch(
        "web",
        &PatchParams::apply("test"),
        &Patch::Apply(&statefulset(1, "nginx")),
    )
    .await
    .unwrap();
    let escape = json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx",
        "image": "nginx", "volumeMounts": [{"name": "www", "mountPath": "/www", "subPath": "a/../.."}]}]}}}});
    let code = match sets
        .patch("web", &PatchParams::default(), &Patch::Merge(&escape))
        .await
    {
        Err(kube::Error::Api(status)) => status.code,
        other => panic!("expected 422, got {other:?}"),
    };
    assert_eq!(code, 422);
    api.server.shutdown().await;
}
