//! A ClusterIP Service, end to end through every part of the embedded cluster: the ReplicaSet
//! controller makes pods, the node runs the real nginx, the endpoints controller lists them,
//! DNS answers the Service name with its cluster IP, and the proxy carries the connection.
//! Needs root and `scripts/install-deps`.

use futures::{StreamExt, TryStreamExt};
use k8s_labs_cluster::{ClusterConfig, EmbeddedCluster};
use k8s_labs_podutil::is_pod_ready;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, AttachParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_by_service_name_reaches_the_pods_through_the_proxy() {
    let _turn = crate::support::cluster_turn().await;
    let cluster = EmbeddedCluster::start(ClusterConfig::default())
        .await
        .expect("the embedded cluster starts");
    let client = cluster.client().await.expect("client");
    let namespace = "default";

    let replicaset: ReplicaSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx" }] },
            },
        },
    }))
    .expect("replicaset");
    let service: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": "web" },
        "spec": { "selector": { "app": "web" }, "ports": [{ "port": 80, "targetPort": 80 }] },
    }))
    .expect("service");
    Api::<ReplicaSet>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &replicaset)
        .await
        .expect("create replicaset");
    Api::<Service>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &service)
        .await
        .expect("create service");

    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let ready = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut stream = watcher(pods.clone(), watcher::Config::default().labels("app=web"))
            .default_backoff()
            .applied_objects()
            .boxed();
        let mut ready = std::collections::BTreeSet::new();
        while let Some(pod) = stream.try_next().await.expect("watch pods") {
            let name = pod.metadata.name.clone().unwrap_or_default();
            if is_pod_ready(&pod) {
                ready.insert(name);
            }
            if ready.len() == 2 {
                return ready;
            }
        }
        ready
    })
    .await
    .expect("two pods become Ready within 60 s");
    let client_pod = ready.iter().next().expect("a ready pod").clone();

    // The endpoints and the proxy's listener follow the pods within moments; a few tries
    // cover that, each bounded by curl's own timeout.
    let mut last = String::new();
    for _ in 0..50 {
        let mut process = pods
            .exec(
                &client_pod,
                ["curl", "-s", "--max-time", "2", "http://web/"],
                &AttachParams::default().stderr(false),
            )
            .await
            .expect("exec curl");
        let stdout = process.stdout().expect("stdout");
        let body: Vec<u8> = read_all(stdout).await;
        let _ = process.join().await;
        last = String::from_utf8_lossy(&body).into_owned();
        if last.contains("<title>Welcome to nginx!</title>") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        last.contains("<title>Welcome to nginx!</title>"),
        "curl http://web/ from {client_pod} answered:\n{last}"
    );
    cluster.stop().await.expect("the cluster stops cleanly");
}

async fn read_all(mut reader: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let _ = reader.read_to_end(&mut buffer).await;
    buffer
}
