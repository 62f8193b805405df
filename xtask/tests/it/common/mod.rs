//! What the xtask tests share: an embedded cluster started separately and reached through a
//! kubeconfig file, the way a user points `cargo xtask` at kind, k3s or a cloud cluster.
//! Every test that runs an embedded cluster (in this process or in an `xtask` it starts)
//! takes a [`cluster_turn`] first.

use std::path::PathBuf;

use k8s_labs_cluster::{ClusterConfig, EmbeddedCluster};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;

/// At most two embedded clusters at a time in this binary (as the cluster crate's tests run
/// theirs): every test that starts one, itself or through an `xtask` it runs, takes a turn
/// first and keeps it to its end. A lab run waits on pods most of its time, so two overlap
/// well on our 2-core machines.
static CLUSTERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Waits for this test's turn to run an embedded cluster; the turn lasts as long as the permit.
pub async fn cluster_turn() -> tokio::sync::SemaphorePermit<'static> {
    CLUSTERS
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

/// Starts an embedded cluster and writes its kubeconfig into a fresh scratch directory
/// `xtask-<name>-<pid>`; returns the cluster, the kubeconfig's path and the directory.
pub async fn start_cluster(name: &str) -> (EmbeddedCluster, PathBuf, PathBuf) {
    k8s_labs_cluster::preflight().expect("the embedded cluster can run here");
    let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let cluster = EmbeddedCluster::start(ClusterConfig::default())
        .await
        .expect("the embedded cluster starts");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.kubeconfig_yaml()).expect("the kubeconfig is written");
    (cluster, kubeconfig, dir)
}

/// Namespaces the labs created (by their managed-by label).
pub async fn lab_namespaces(cluster: &EmbeddedCluster) -> Vec<String> {
    let client = cluster.client().await.expect("a client of the cluster");
    Api::<Namespace>::all(client)
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=k8s-labs"))
        .await
        .expect("the namespaces are listed")
        .items
        .into_iter()
        .filter_map(|namespace| namespace.metadata.name)
        .collect()
}
