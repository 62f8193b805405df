//! `kubectl drain` with the real kubectl 1.33: it cordons the node and evicts its pods
//! through `pods/eviction` (policy/v1 Eviction, listed in discovery), or with
//! `--disable-eviction` deletes them; client-go's typed client sends the Eviction and the
//! DeleteOptions as protobuf since 1.32. `--grace-period=0` reaches the server as a set zero,
//! so the pods go at once (this server has no node to wait for).

use crate::support::kubectl::Kubectl;
use k8s_labs_apiserver::testing::TestApiServer;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

/// Pods `names` on node-1.
async fn pods_on_the_node(pods: &Api<Pod>, names: &[&str]) {
    for name in names {
        let pod = json!({"metadata": {"name": name},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx"}]}});
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn kubectl_drain_evicts_or_deletes_the_nodes_pods() {
    let api = TestApiServer::start().await.unwrap();
    let nodes: Api<Node> = Api::all(api.client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "node-1"}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    let kubectl = Kubectl::new(&api, "apiserver-drain", 33);
    let drain = [
        "drain",
        "node-1",
        "--force",
        "--grace-period=0",
        "--timeout=20s",
        "-v=7",
    ];

    pods_on_the_node(&pods, &["a", "b"]).await;
    let (stdout, stderr) = kubectl.ok(&drain).await;
    for line in [
        "evicting pod default/a",
        "pod/a evicted",
        "pod/b evicted",
        "node/node-1 drained",
    ] {
        assert!(
            stdout.contains(line) || stderr.contains(line),
            "{line}: {stdout}{stderr}"
        );
    }
    assert!(
        stderr.contains("/api/v1/namespaces/default/pods/a/eviction"),
        "kubectl did not evict: {stderr}"
    );
    assert!(
        pods.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let node = nodes.get("node-1").await.unwrap();
    assert_eq!(node.spec.and_then(|s| s.unschedulable), Some(true));

    pods_on_the_node(&pods, &["c"]).await;
    let (stdout, stderr) = kubectl
        .ok(&[&drain[..], &["--disable-eviction"]].concat())
        .await;
    assert!(stdout.contains("pod/c deleted"), "{stdout}{stderr}");
    assert!(
        stderr.contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "kubectl sent no protobuf DeleteOptions: {stderr}"
    );
    assert!(
        pods.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    kubectl.remove();
}

/// An Eviction must name the pod of its URL, and the pod must exist (upstream's answers).
#[tokio::test]
async fn an_eviction_of_another_or_a_missing_pod_is_refused() {
    let api = TestApiServer::start().await.unwrap();
    let evict = |url_name: &str, body_name: &str| {
        let body = json!({"apiVersion": "policy/v1", "kind": "Eviction",
                          "metadata": {"name": body_name, "namespace": "default"}});
        http::Request::post(format!(
            "/api/v1/namespaces/default/pods/{url_name}/eviction"
        ))
        .header("Content-Type", "application/json")
        .body(body.to_string().into_bytes())
        .unwrap()
    };
    let (status, body) = api.send_once(evict("a", "b")).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"],
        "name in URL does not match name in Eviction object"
    );
    let (status, body) = api.send_once(evict("a", "a")).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some("pods \"a\" not found"))
    );
}
