//! `cargo xtask cluster up`: a cluster to follow the tutorial by hand. The embedded cluster
//! lives in this process, so it runs in the foreground until Ctrl-C; a kind cluster outlives
//! the command, which creates it, writes its kubeconfig and says how to delete it.

use std::path::{Path, PathBuf};

use k8s_labs_cluster::{ClusterConfig, EmbeddedCluster};
use k8s_labs_harness::Provider;
use k8s_labs_harness::provider::{ClusterChoice, KubernetesVersion, install_crypto_provider};

use crate::{Exit, START_GRACE, Stop, report_connect_error, stop_signal};

/// Which cluster `cluster up` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UpKind {
    /// The cluster in this process, until Ctrl-C (needs root and scripts/install-deps).
    Embedded,
    /// A kind cluster that stays up after the command (needs `kind` on PATH, and Docker or podman).
    Kind,
}

/// Starts the chosen cluster and writes its kubeconfig to `kubeconfig_out`.
pub async fn cluster_up(
    kubeconfig_out: &Path,
    cluster: UpKind,
    version: Option<KubernetesVersion>,
) -> Exit {
    install_crypto_provider();
    let version = version.unwrap_or(KubernetesVersion::DEFAULT);
    if let Err(message) = version.check_supported() {
        eprintln!("error: {message}");
        return Exit::Usage;
    }
    let path = match absolute_with_parent(kubeconfig_out) {
        Ok(path) => path,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Usage;
        }
    };
    match cluster {
        UpKind::Embedded => embedded_up(&path, version).await,
        UpKind::Kind => kind_up(&path, version).await,
    }
}

/// Creates a kind cluster (deleted again if a signal comes first), writes its kubeconfig to
/// `path` and leaves it up.
async fn kind_up(path: &Path, version: KubernetesVersion) -> Exit {
    let choice = ClusterChoice::Kind {
        kubernetes_version: Some(version),
    };
    let provider = tokio::select! {
        provider = Provider::from_choice(choice) => provider,
        // Dropping the start kills kind and deletes the half-made cluster.
        stop = stop_signal() => return Exit::Signal(stop),
    };
    let provider = match provider {
        Ok(provider) => provider,
        Err(error) => return report_connect_error(error),
    };
    let (kubeconfig, _) = provider.cluster_kubeconfig();
    let written = serde_json::to_string(kubeconfig)
        .map_err(|error| error.to_string())
        .and_then(|text| std::fs::write(path, text).map_err(|error| error.to_string()));
    if let Err(error) = written {
        eprintln!(
            "error: cannot write {}: {error}; check that the directory is writable",
            path.display()
        );
        let _ = provider.stop().await;
        return Exit::Usage;
    }
    let notice = provider.keep_for_inspection();
    println!(
        "{}; kubeconfig written to {}",
        provider.describe(),
        path.display()
    );
    if let Err(error) = provider.stop().await {
        eprintln!("error: {error:#}");
        return Exit::Cluster;
    }
    println!("  export KUBECONFIG={}", path.display());
    println!("  kubectl get pods -A");
    if let Some(notice) = notice {
        println!("{notice}");
    }
    Exit::Passed
}

/// The embedded cluster in the foreground until Ctrl-C/SIGTERM, its kubeconfig written first.
async fn embedded_up(path: &Path, version: KubernetesVersion) -> Exit {
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

/// `path` made absolute (relative to the current directory), its parent directory created.
pub(crate) fn absolute_with_parent(path: &Path) -> Result<PathBuf, String> {
    let path = std::path::absolute(path)
        .map_err(|error| format!("invalid path {}: {error}", path.display()))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|error| {
            format!(
                "cannot create {}: {error}; choose another --kubeconfig-out",
                parent.display()
            )
        })?;
    }
    Ok(path)
}
