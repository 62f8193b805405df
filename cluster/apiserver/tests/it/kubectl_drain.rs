//! `kubectl drain` with the real kubectl 1.33: it cordons the node and deletes its pods with
//! client-go's typed client, whose DeleteOptions come as protobuf since 1.32 (this server
//! serves no `pods/eviction`, so kubectl deletes, as on a cluster without the Eviction API).
//! `--grace-period=0` reaches the server as a set zero, so the pods go at once.

use crate::support::kubectl::Kubectl;
use k8s_labs_apiserver::testing::TestApiServer;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

#[tokio::test]
async fn kubectl_drain_cordons_the_node_and_deletes_its_pods() {
    let api = TestApiServer::start().await.unwrap();
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "node-1"}})).unwrap();
    Api::<Node>::all(api.client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    for name in ["a", "b"] {
        let pod = json!({"metadata": {"name": name},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx"}]}});
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .unwrap();
    }
    let kubectl = Kubectl::new(&api, "apiserver-drain", 33);
    let args = [
        "drain",
        "node-1",
        "--force",
        "--grace-period=0",
        "--timeout=20s",
        "-v=7",
    ];
    let (stdout, stderr) = kubectl.ok(&args).await;
    assert!(stdout.contains("node/node-1 drained"), "{stdout}{stderr}");
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
    let node = Api::<Node>::all(api.client.clone())
        .get("node-1")
        .await
        .unwrap();
    assert_eq!(node.spec.and_then(|s| s.unschedulable), Some(true));
    kubectl.remove();
}
