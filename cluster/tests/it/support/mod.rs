//! What the cluster's tests share: a scratch directory, the embedded cluster with its
//! kubeconfig for kubectl (one at a time), and the real kubectl (`kubectl`).

pub mod kubectl;

use std::path::PathBuf;

use k8s_labs_cluster::{ClusterConfig, EmbeddedCluster};

/// A scratch directory of this test process (kubeconfig, kubectl caches), named `prefix-<pid>`.
pub fn scratch_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// The embedded cluster, with its kubeconfig written to `<scratch>/kubeconfig` for kubectl.
pub async fn start_cluster(scratch: &std::path::Path) -> (EmbeddedCluster, PathBuf) {
    start_cluster_with(scratch, ClusterConfig::default()).await
}

/// [`start_cluster`] with other settings than the defaults (the kubeconfig path is set here).
pub async fn start_cluster_with(
    scratch: &std::path::Path,
    config: ClusterConfig,
) -> (EmbeddedCluster, PathBuf) {
    let kubeconfig = scratch.join("kubeconfig");
    let cluster = EmbeddedCluster::start(ClusterConfig {
        kubeconfig_path: Some(kubeconfig.clone()),
        ..config
    })
    .await
    .expect("the embedded cluster starts");
    (cluster, kubeconfig)
}

/// At most two embedded clusters at a time in this binary: every test that starts one takes
/// a turn first and keeps it to its end. A test waits on pods and kubectl most of its time, so
/// two overlap well on our 2-core machines (the binary: 67-76 s one at a time, 52 s two);
/// more would change what the tests of kubectl's timing "under load" measure.
static CLUSTERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Waits for this test's turn to run an embedded cluster.
pub async fn cluster_turn() -> tokio::sync::SemaphorePermit<'static> {
    CLUSTERS
        .acquire()
        .await
        .expect("the semaphore is never closed")
}
