// Each test binary uses a part of the helpers.
#![allow(dead_code)]

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
