//! The API server driven by kube-rs, as the labs, controllers and node agent drive it.

use futures::{StreamExt, TryStreamExt};
use k8s_labs_apiserver::testing::{TestApiServer, client_for};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
    }))
    .unwrap()
}

fn api_error_code(result: Result<impl std::fmt::Debug, kube::Error>) -> u16 {
    match result {
        Err(kube::Error::Api(status)) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn pod_create_get_list_update_delete() {
    let api = TestApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");

    let created = pods
        .create(&PostParams::default(), &pod("web-0"))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(
        meta.uid.is_some() && meta.creation_timestamp.is_some() && meta.resource_version.is_some()
    );
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("Always")
    );
    assert_eq!(
        created.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );

    assert_eq!(
        api_error_code(pods.create(&PostParams::default(), &pod("web-0")).await),
        409
    );

    let mut fetched = pods.get("web-0").await.unwrap();
    assert_eq!(fetched.metadata.uid, meta.uid);
    fetched
        .metadata
        .labels
        .get_or_insert_default()
        .insert("tier".into(), "front".into());
    let updated = pods
        .replace("web-0", &PostParams::default(), &fetched)
        .await
        .unwrap();
    assert_eq!(updated.metadata.labels.unwrap()["tier"], "front");
    assert_ne!(updated.metadata.resource_version, meta.resource_version);

    let list = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());

    pods.delete("web-0", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_error_code(pods.get("web-0").await), 404);
    assert_eq!(api_error_code(pods.get("nope").await), 404);
}

#[tokio::test]
async fn stale_update_conflicts_and_bad_names_are_invalid() {
    let api = TestApiServer::start().await.unwrap();
    let client = api.client.clone();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).unwrap();
    let first = maps.create(&PostParams::default(), &cm).await.unwrap();
    let mut second = first.clone();
    second
        .data
        .get_or_insert_default()
        .insert("a".into(), "2".into());
    maps.replace("c", &PostParams::default(), &second)
        .await
        .unwrap();
    // `first` carries the old resourceVersion now.
    match maps.replace("c", &PostParams::default(), &first).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409);
            assert!(
                status.message.contains("the object has been modified"),
                "{}",
                status.message
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let bad: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "Bad_Name"}})).unwrap();
    assert_eq!(
        api_error_code(maps.create(&PostParams::default(), &bad).await),
        422
    );
    let elsewhere: Api<ConfigMap> = Api::namespaced(client, "no-such-namespace");
    assert_eq!(
        api_error_code(elsewhere.create(&PostParams::default(), &cm).await),
        404
    );
}

#[tokio::test]
async fn bodies_over_3_mib_are_refused_as_kube_apiserver_refuses_them() {
    let api = TestApiServer::start().await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(api.client.clone(), "default");
    let map = |name: &str, bytes: usize| -> ConfigMap {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "data": {"blob": "x".repeat(bytes)},
        }))
        .unwrap()
    };
    match maps
        .create(&PostParams::default(), &map("big", 3 << 20))
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 413);
            assert_eq!(status.reason, "RequestEntityTooLarge");
            assert_eq!(status.message, "Request entity too large: limit is 3145728");
        }
        other => panic!("expected 413, got {other:?}"),
    }
    maps.create(&PostParams::default(), &map("fits", 1 << 20))
        .await
        .unwrap();
}

#[tokio::test]
async fn requests_without_the_token_are_unauthorized() {
    let api = TestApiServer::start().await.unwrap();
    let anonymous = client_for(&api.server, None).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(anonymous, "default");
    assert_eq!(api_error_code(pods.list(&ListParams::default()).await), 401);
    let wrong = client_for(&api.server, Some("wrong")).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(wrong, "default");
    assert_eq!(api_error_code(pods.list(&ListParams::default()).await), 401);
}

#[tokio::test]
async fn services_get_cluster_ips_from_the_range() {
    let api = TestApiServer::start().await.unwrap();
    let client = api.client.clone();
    let services: Api<Service> = Api::namespaced(client, "default");
    let kubernetes = services.get("kubernetes").await.unwrap();
    let spec = kubernetes.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.1"));
    assert_eq!(spec.ports.unwrap()[0].port, 443);

    let svc = |name: &str, ip: Option<&str>| -> Service {
        let mut spec = json!({"selector": {"app": "web"}, "ports": [{"port": 80}]});
        if let Some(ip) = ip {
            spec["clusterIP"] = json!(ip);
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
    };
    let web = services
        .create(&PostParams::default(), &svc("web", None))
        .await
        .unwrap();
    let spec = web.spec.unwrap();
    let ip: std::net::Ipv4Addr = spec.cluster_ip.clone().unwrap().parse().unwrap();
    assert_eq!(ip.octets()[0], 10);
    assert!((96..112).contains(&ip.octets()[1]), "{ip}");
    assert_eq!(spec.cluster_ips, Some(vec![ip.to_string()]));
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let port = &spec.ports.unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80))
    );

    let headless = services
        .create(&PostParams::default(), &svc("nginx", Some("None")))
        .await
        .unwrap();
    assert_eq!(headless.spec.unwrap().cluster_ip.as_deref(), Some("None"));

    let taken = services
        .create(&PostParams::default(), &svc("dns", Some(&ip.to_string())))
        .await;
    assert_eq!(api_error_code(taken), 422);
    let outside = services
        .create(&PostParams::default(), &svc("dns", Some("192.168.0.1")))
        .await;
    assert_eq!(api_error_code(outside), 422);

    // The IP is immutable, and free again once the Service is gone.
    let change = Patch::Merge(json!({"spec": {"clusterIP": "10.96.0.77"}}));
    assert_eq!(
        api_error_code(
            services
                .patch("web", &PatchParams::default(), &change)
                .await
        ),
        422
    );
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let reused = services
        .create(&PostParams::default(), &svc("dns", Some(&ip.to_string())))
        .await
        .unwrap();
    assert_eq!(reused.spec.unwrap().cluster_ip, Some(ip.to_string()));
}

#[tokio::test]
async fn namespace_deletion_terminates_until_finalized() {
    let api = TestApiServer::start().await.unwrap();
    let client = api.client.clone();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for builtin in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(names.contains(&builtin.to_string()), "{names:?}");
    }
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "lab"}})).unwrap();
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    assert_eq!(
        created.spec.unwrap().finalizers,
        Some(vec!["kubernetes".to_string()])
    );

    namespaces
        .delete("lab", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = namespaces.get("lab").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(
        terminating.status.as_ref().unwrap().phase.as_deref(),
        Some("Terminating")
    );
    let pods: Api<Pod> = Api::namespaced(client, "lab");
    assert_eq!(
        api_error_code(pods.create(&PostParams::default(), &pod("p")).await),
        403
    );

    let mut finalized = terminating.clone();
    finalized.spec.as_mut().unwrap().finalizers = Some(vec![]);
    namespaces
        .replace_subresource("finalize", "lab", &PostParams::default(), &finalized)
        .await
        .unwrap();
    assert_eq!(api_error_code(namespaces.get("lab").await), 404);
}

#[tokio::test]
async fn merge_json_and_strategic_patches() {
    let api = TestApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("p"))
        .await
        .unwrap();

    let merged = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.metadata.labels.as_ref().unwrap()["x"], "1");
    assert_eq!(merged.metadata.labels.as_ref().unwrap()["app"], "web");

    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/metadata/labels/x", "value": "2"},
        {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}
    ]))
    .unwrap();
    let patched = pods
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.as_ref().unwrap()["x"], "2");
    assert_eq!(patched.metadata.annotations.as_ref().unwrap()["a"], "b");

    // Containers merge by name: the patch changes one image and keeps the rest of the
    // container (a pod's containers can be neither added nor removed, as upstream).
    let image = json!({"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}});
    let strategic = pods
        .patch("p", &PatchParams::default(), &Patch::Strategic(image))
        .await
        .unwrap();
    let containers = strategic.spec.unwrap().containers;
    let seen: Vec<(String, Option<String>, Option<String>)> = containers
        .into_iter()
        .map(|c| (c.name, c.image, c.image_pull_policy))
        .collect();
    assert_eq!(
        seen,
        [(
            "nginx".to_string(),
            Some("nginx:1.27".to_string()),
            Some("Always".to_string())
        )]
    );

    let stale = json!({"metadata": {"resourceVersion": "1", "labels": {"x": "3"}}});
    assert_eq!(
        api_error_code(
            pods.patch("p", &PatchParams::default(), &Patch::Merge(stale))
                .await
        ),
        409
    );
    assert_eq!(
        api_error_code(
            pods.patch("nope", &PatchParams::default(), &Patch::Merge(json!({})))
                .await
        ),
        404
    );
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let api = TestApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    for (name, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
        let mut p = pod(name);
        p.metadata.labels = Some([("app".to_string(), app.to_string())].into());
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let names = |list: kube::core::ObjectList<Pod>| -> Vec<String> {
        list.items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect()
    };
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("app=web"))
                .await
                .unwrap()
        ),
        ["a", "b"]
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("app!=web"))
                .await
                .unwrap()
        ),
        ["c"]
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("app in (db,cache)"))
                .await
                .unwrap()
        ),
        ["c"]
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    let all: Api<Pod> = Api::all(pods.clone().into_client());
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );
}

#[tokio::test]
async fn raw_watch_sees_added_modified_deleted() {
    let api = TestApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    let start = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = pods
        .watch(&WatchParams::default(), &start)
        .await
        .unwrap()
        .boxed();
    pods.create(&PostParams::default(), &pod("w"))
        .await
        .unwrap();
    pods.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"v": "2"}}})),
    )
    .await
    .unwrap();
    pods.delete("w", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(p) => seen.push(("ADDED", p.metadata.name.unwrap())),
            WatchEvent::Modified(p) => seen.push(("MODIFIED", p.metadata.name.unwrap())),
            WatchEvent::Deleted(p) => seen.push(("DELETED", p.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ("ADDED", "w".to_string()),
            ("MODIFIED", "w".to_string()),
            ("DELETED", "w".to_string())
        ]
    );
}

#[tokio::test]
async fn runtime_watchers_see_changes_with_and_without_streaming_lists() {
    use kube::runtime::watcher::{self, Event};
    let api = TestApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("before"))
        .await
        .unwrap();
    for config in [
        watcher::Config::default(),
        watcher::Config::default().streaming_lists(),
    ] {
        let mut events = watcher::watcher(pods.clone(), config).boxed();
        let mut initial = Vec::new();
        loop {
            match events.try_next().await.unwrap().unwrap() {
                Event::Init => {}
                Event::InitApply(p) => initial.push(p.metadata.name.unwrap()),
                Event::InitDone => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(initial, ["before"]);
        pods.create(&PostParams::default(), &pod("during"))
            .await
            .unwrap();
        pods.delete("during", &DeleteParams::default())
            .await
            .unwrap();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            match events.try_next().await.unwrap().unwrap() {
                Event::Apply(p) => seen.push(format!("apply {}", p.metadata.name.unwrap())),
                Event::Delete(p) => seen.push(format!("delete {}", p.metadata.name.unwrap())),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seen, ["apply during", "delete during"]);
    }
}

#[tokio::test]
async fn watch_from_a_compacted_resource_version_is_gone() {
    let api = TestApiServer::start_with_history_len(crate::support::SHORT_HISTORY)
        .await
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(api.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "counter"}})).unwrap();
    let first = maps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    // One more change than the history keeps pushes `first` out of it.
    for i in 0..=crate::support::SHORT_HISTORY {
        let patch = Patch::Merge(json!({"data": {"n": i.to_string()}}));
        maps.patch("counter", &PatchParams::default(), &patch)
            .await
            .unwrap();
    }
    let mut stream = maps
        .watch(&WatchParams::default(), &first)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await {
        Ok(Some(WatchEvent::Error(status))) => assert_eq!(status.code, 410),
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}

#[tokio::test]
async fn filtered_watches_see_objects_enter_and_leave_and_get_bookmarks() {
    let api = TestApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    let params = WatchParams::default()
        .labels("app=web")
        .fields("spec.nodeName=node-1");
    let mut stream = pods.watch(&params, "0").await.unwrap().boxed();
    pods.create(&PostParams::default(), &pod("p"))
        .await
        .unwrap();
    // Binding the pod to node-1 brings it into the selection; relabelling takes it out.
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
        "target": {"kind": "Node", "name": "node-1"}});
    pods.create_subresource::<_, serde_json::Value>(
        "binding",
        "p",
        &PostParams::default(),
        &binding,
    )
    .await
    .unwrap();
    let relabel = Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}}));
    let last = pods
        .patch("p", &PatchParams::default(), &relabel)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(_) => seen.push("ADDED"),
            WatchEvent::Modified(_) => seen.push("MODIFIED"),
            WatchEvent::Deleted(_) => seen.push("DELETED"),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(seen, ["ADDED", "DELETED"]);

    // With bookmarks allowed (kube's default), a watch from "0" is a streaming list
    // (SetListOptionsDefaults): its initial state, here empty, ends with the
    // initial-events-end bookmark at the store's revision. Periodic bookmarks come a minute
    // apart; src/watch/tests.rs checks them on paused time.
    let params = WatchParams::default().labels("app=none");
    let mut stream = pods.watch(&params, "0").await.unwrap().boxed();
    let last: u64 = last.metadata.resource_version.unwrap().parse().unwrap();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Bookmark(b) => {
            assert!(b.metadata.resource_version.parse::<u64>().unwrap() >= last);
            let end = b.metadata.annotations.get("k8s.io/initial-events-end");
            assert_eq!(end.map(String::as_str), Some("true"));
        }
        other => panic!("unexpected {other:?}"),
    }
}
