//! What xtask does only with the embedded cluster (cargo feature `embedded`): its preflight
//! before labs run on it, and `cargo xtask cluster up` of it. A build without the feature
//! uses `embedded_absent.rs` in its place, which says so in one line.

use std::path::Path;

use k8s_labs_cluster::{ClusterConfig, EmbeddedCluster};
use k8s_labs_harness::provider::{ClusterChoice, KubernetesVersion};

use crate::{Exit, START_GRACE, Stop, kubeconfig_path, stop_signal};

/// Checks that the embedded cluster can run here when `choice` is it (root, the packages of
/// scripts/install-deps); otherwise prints why, as one line, and returns the exit code.
pub(crate) fn preflight(choice: &ClusterChoice) -> Result<(), Exit> {
    if matches!(choice, ClusterChoice::Embedded { .. })
        && let Err(error) = k8s_labs_cluster::preflight()
    {
        eprintln!("error: {error:#}; or run the labs on another cluster with --kubeconfig PATH");
        return Err(Exit::Cluster);
    }
    Ok(())
}

/// `cargo xtask cluster up` of the embedded cluster: in the foreground until Ctrl-C/SIGTERM,
/// its kubeconfig written to `kubeconfig_out` first.
pub(crate) async fn cluster_up(kubeconfig_out: &Path, version: KubernetesVersion) -> Exit {
    let path = match kubeconfig_path(kubeconfig_out) {
        Ok(path) => path,
        Err(exit) => return exit,
    };
    let path = path.as_path();
    if let Err(error) = k8s_labs_cluster::preflight() {
        eprintln!("error: {error:#}");
        return Exit::Cluster;
    }
    let config = ClusterConfig {
        kubeconfig_path: Some(path.to_path_buf()),
        kubernetes_version: version.to_string(),
        ..ClusterConfig::default()
    };
    let mut signals = tokio::spawn(stop_signal());
    let starting = EmbeddedCluster::start(config);
    tokio::pin!(starting);
    let cluster = tokio::select! {
        cluster = &mut starting => cluster,
        stop = &mut signals => {
            // Let the start finish, so that stopping removes all it created.
            if let Ok(Ok(cluster)) = tokio::time::timeout(START_GRACE, starting).await {
                let _ = cluster.stop().await;
            }
            return Exit::Signal(stop.unwrap_or(Stop::Interrupt));
        }
    };
    let cluster = match cluster {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!(
                "error: the embedded cluster did not start: {error:#}; fix that and run again"
            );
            return Exit::Cluster;
        }
    };
    if !path.is_file()
        && let Err(error) = std::fs::write(path, cluster.kubeconfig_yaml())
    {
        let error = format!("cannot write {}: {error}", path.display());
        eprintln!("error: {error}; check that the directory is writable");
        let _ = cluster.stop().await;
        return Exit::Usage;
    }
    println!(
        "embedded cluster running; kubeconfig written to {}",
        path.display()
    );
    println!("  export KUBECONFIG={}", path.display());
    println!("  kubectl get pods -A");
    println!("Ctrl-C stops it.");
    let stop = signals.await.unwrap_or(Stop::Interrupt);
    println!("stopping the embedded cluster...");
    if let Err(error) = cluster.stop().await {
        eprintln!("error: stopping the cluster failed: {error:#}; check for leftover processes");
        return Exit::Cluster;
    }
    Exit::Signal(stop)
}
