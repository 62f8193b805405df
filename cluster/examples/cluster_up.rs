//! Runs the embedded cluster alone until Ctrl-C, writing its kubeconfig, for poking at it with
//! kubectl without building the labs: `cargo run -p k8s-labs-cluster --example cluster_up --
//! /tmp/kubeconfig` (as root).

use k8s_labs_cluster::{ClusterConfig, EmbeddedCluster};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/embedded-cluster-kubeconfig".to_string());
    let cluster = EmbeddedCluster::start(ClusterConfig {
        kubeconfig_path: Some(path.clone().into()),
        ..ClusterConfig::default()
    })
    .await?;
    println!("embedded cluster running; kubeconfig: {path}");
    tokio::signal::ctrl_c().await?;
    cluster.stop().await
}
