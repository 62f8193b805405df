//! The embedded cluster (`k8s_labs_cluster`) behind the [`ClusterProvider`] face: started in
//! this process, with a real shell "on the node" (its node network namespace).

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use k8s_labs_cluster::{ClusterConfig, EmbeddedCluster};
use kube::Client;
use kube::config::Kubeconfig;

use super::facts::ClusterFacts;
use super::version::KubernetesVersion;
use super::{ClusterKind, ClusterProvider, ConnectError, NodeRun};
use crate::exec::CommandOutput;

/// A running embedded cluster and a client for it.
pub struct EmbeddedProvider {
    cluster: EmbeddedCluster,
    client: Client,
}

impl EmbeddedProvider {
    /// Starts the embedded cluster reporting Kubernetes `version`: an unsupported version
    /// is a [`ConnectError::Config`], a failed start a [`ConnectError::Cluster`].
    pub async fn create_version(
        version: KubernetesVersion,
    ) -> Result<EmbeddedProvider, ConnectError> {
        version
            .check_supported()
            .map_err(|message| ConnectError::Config(anyhow!(message)))?;
        let config = ClusterConfig {
            kubernetes_version: version.to_string(),
            ..ClusterConfig::default()
        };
        EmbeddedProvider::create(config)
            .await
            .map_err(ConnectError::Cluster)
    }

    /// Starts the embedded cluster with `config` (its version checked first) and builds a
    /// client; a failed start removes whatever it had created.
    pub async fn create(config: ClusterConfig) -> Result<EmbeddedProvider> {
        super::install_crypto_provider();
        let cluster = EmbeddedCluster::start(config)
            .await
            .context("the embedded cluster did not start")?;
        match cluster.client().await {
            Ok(client) => Ok(EmbeddedProvider { cluster, client }),
            Err(error) => {
                if let Err(stop_error) = cluster.stop().await {
                    tracing::warn!(
                        "stopping the embedded cluster after a failed start: {stop_error:#}"
                    );
                }
                Err(error.context("cannot build a client for the embedded cluster"))
            }
        }
    }
}

#[async_trait]
impl ClusterProvider for EmbeddedProvider {
    fn kind(&self) -> ClusterKind {
        ClusterKind::Embedded
    }

    fn client(&self) -> Client {
        self.client.clone()
    }

    fn kubeconfig(&self) -> &Kubeconfig {
        self.cluster.kubeconfig()
    }

    fn context(&self) -> Option<&str> {
        Some(k8s_labs_cluster::CONTEXT_NAME)
    }

    fn describe(&self, facts: &ClusterFacts) -> String {
        format!("embedded cluster {}", facts.server_version)
    }

    fn pulls_images(&self) -> bool {
        false
    }

    async fn run_on_node(
        &self,
        _client: &Client,
        _namespace: &str,
        program: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<NodeRun> {
        let mut command = self.cluster.node_command(program, args);
        command.kill_on_drop(true);
        let output = tokio::time::timeout(timeout, command.output())
            .await
            .with_context(|| format!("{program} on the node took longer than {timeout:?}"))?
            .with_context(|| format!("cannot run {program} on the node"))?;
        Ok(NodeRun::Ran(CommandOutput {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            exit_code: output.status.code(),
        }))
    }

    async fn destroy(self: Box<Self>) -> Result<()> {
        self.cluster.stop().await
    }
}
