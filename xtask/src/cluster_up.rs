//! `cargo xtask cluster up`: a cluster to follow the tutorial by hand. The embedded cluster
//! lives in this process, so it runs in the foreground until Ctrl-C (see `crate::embedded`);
//! a kind cluster outlives the command, which creates it, writes its kubeconfig and says how
//! to delete it.

use std::path::Path;

use k8s_labs_harness::Provider;
use k8s_labs_harness::provider::{ClusterChoice, KubernetesVersion, install_crypto_provider};

use crate::{Exit, kubeconfig_path, report_connect_error, stop_signal};

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
    match cluster {
        UpKind::Embedded => crate::embedded::cluster_up(kubeconfig_out, version).await,
        UpKind::Kind => match kubeconfig_path(kubeconfig_out) {
            Ok(path) => kind_up(&path, version).await,
            Err(exit) => exit,
        },
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
