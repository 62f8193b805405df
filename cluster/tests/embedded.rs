//! The embedded cluster as a whole: it starts, its parts find each other through the API, and
//! it leaves nothing behind when it stops. Needs root and `scripts/install-deps`.

use k8s_labs_cluster::{ClusterConfig, EmbeddedCluster};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::Api;

fn network_namespaces() -> Vec<String> {
    let output = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_serves_dns_on_the_node_and_cleans_up() {
    let cluster = EmbeddedCluster::start(ClusterConfig::default())
        .await
        .expect("the embedded cluster starts");
    let client = cluster.client().await.expect("client");

    let node = Api::<Node>::all(client.clone())
        .get(k8s_labs_cluster::NODE_NAME)
        .await
        .expect("the node is registered");
    let ready = node
        .status
        .and_then(|status| status.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|condition| condition.type_ == "Ready" && condition.status == "True");
    assert!(ready, "the node reports Ready");

    let kube_dns = Api::<Service>::namespaced(client.clone(), "kube-system")
        .get("kube-dns")
        .await
        .expect("kube-dns exists");
    let dns_ip = kube_dns.spec.and_then(|spec| spec.cluster_ip).expect("cluster IP");
    assert_eq!(dns_ip, "10.96.0.10");

    // The real bind9 nslookup, on the node, asks the cluster DNS for the API server's Service.
    let output = cluster
        .node_command("nslookup", &["kubernetes.default.svc.cluster.local", &dns_ip])
        .output()
        .await
        .expect("nslookup runs on the node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "nslookup failed: {stdout}");
    assert!(stdout.contains("Address: 10.96.0.1\n"), "unexpected answer:\n{stdout}");

    let ours: Vec<String> = network_namespaces()
        .into_iter()
        .filter(|name| name.starts_with("k8s-labs-"))
        .collect();
    assert!(!ours.is_empty(), "the node network namespace exists while running");
    cluster.stop().await.expect("the cluster stops cleanly");
    let left: Vec<String> = network_namespaces()
        .into_iter()
        .filter(|name| ours.contains(name))
        .collect();
    assert!(left.is_empty(), "network namespaces left behind: {left:?}");
}
