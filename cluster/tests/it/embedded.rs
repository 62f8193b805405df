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
    let _turn = crate::support::cluster_turn().await;
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
    let dns_ip = kube_dns
        .spec
        .and_then(|spec| spec.cluster_ip)
        .expect("cluster IP");
    assert_eq!(dns_ip, "10.96.0.10");

    // The real bind9 nslookup, on the node, asks the cluster DNS for the API server's Service.
    let output = cluster
        .node_command(
            "nslookup",
            &["kubernetes.default.svc.cluster.local", &dns_ip],
        )
        .output()
        .await
        .expect("nslookup runs on the node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "nslookup failed: {stdout}");
    assert!(
        stdout.contains("Address: 10.96.0.1\n"),
        "unexpected answer:\n{stdout}"
    );

    let prefix = format!("k8s-labs-{}-", cluster.instance());
    let ours = |name: &String| name.starts_with(&prefix);
    assert!(
        network_namespaces().iter().any(ours),
        "the node network namespace exists while running"
    );
    let state_dir = std::path::Path::new(k8s_labs_cluster::RUN_ROOT).join(cluster.instance());
    assert!(
        state_dir.is_dir(),
        "{} exists while running",
        state_dir.display()
    );
    cluster.stop().await.expect("the cluster stops cleanly");
    assert!(!state_dir.exists(), "{} is removed", state_dir.display());
    let left: Vec<String> = network_namespaces().into_iter().filter(ours).collect();
    assert!(left.is_empty(), "network namespaces left behind: {left:?}");
}
