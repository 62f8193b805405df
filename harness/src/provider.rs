//! Where a lab runs: the embedded cluster started in this process, or any cluster reachable
//! through a kubeconfig. Labs see one face ([`Provider`]): a client, facts discovered at start,
//! and "on the node" commands.
//!
//! On a kubeconfig cluster the harness has no shell on a node. "On the node" commands then run
//! from a one-shot pod with `hostNetwork: true` in the lab namespace (the node's network view,
//! which is what the tutorial's node commands depend on), using an image known to carry the
//! program (see [`node_tool_image`]). A program with no known image, or a cluster that refuses
//! host-network pods, makes the step *skipped* with the reason, never silently passed.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_labs_cluster::{ClusterConfig, EmbeddedCluster};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::ListParams;
use kube::{Api, Client};

use crate::exec::{CommandOutput, OneShotPod};

/// Facts about the cluster, discovered at start and never assumed: labs use them where the
/// tutorial hard-codes its own cluster's values (e.g. the DNS server 10.96.0.10).
#[derive(Debug, Clone, Default)]
pub struct ClusterFacts {
    /// The cluster IP of the cluster DNS Service (`kube-dns`, or `coredns`, in kube-system).
    pub dns_service_ip: Option<IpAddr>,
    /// The API server's version, e.g. `v1.33.0`.
    pub server_version: String,
    /// The default StorageClass (annotation `storageclass.kubernetes.io/is-default-class`).
    pub default_storage_class: Option<String>,
}

/// Why connecting through a kubeconfig failed: the kubeconfig itself (a usage error the
/// user fixes in the file or flags) or the cluster it points at (an infrastructure error).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig cannot be read or used (missing file, bad YAML, unknown context).
    #[error("{0:#}")]
    Config(anyhow::Error),
    /// The cluster did not answer or refused the requests.
    #[error("{0:#}")]
    Cluster(anyhow::Error),
}

/// The result of asking for a command "on the node".
#[derive(Debug)]
pub enum NodeRun {
    /// The command ran; its output and exit status.
    Ran(CommandOutput),
    /// The provider cannot run it; the reason, for a skipped step.
    Unavailable(String),
}

enum Backend {
    Embedded(Box<EmbeddedCluster>),
    Kubeconfig {
        path: PathBuf,
        context: Option<String>,
    },
}

/// A cluster to run labs on, with its client and facts. Clones share the cluster; the
/// embedded one stops when [`Provider::stop`] is called on the last clone.
#[derive(Clone)]
pub struct Provider {
    backend: Arc<Backend>,
    client: Client,
    facts: ClusterFacts,
}

/// Installs the process-wide rustls crypto provider (ring) once, before any client is built:
/// rustls refuses to pick one itself when more than one is compiled in.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Provider {
    /// Starts the embedded cluster with `config` and connects to it.
    pub async fn embedded(config: ClusterConfig) -> Result<Provider> {
        install_crypto_provider();
        let cluster = EmbeddedCluster::start(config)
            .await
            .context("the embedded cluster did not start")?;
        let client = match cluster.client().await {
            Ok(client) => client,
            Err(error) => {
                let _ = cluster.stop().await;
                return Err(error.context("cannot build a client for the embedded cluster"));
            }
        };
        match discover_facts(&client).await {
            Ok(facts) => Ok(Provider {
                backend: Arc::new(Backend::Embedded(Box::new(cluster))),
                client,
                facts,
            }),
            Err(error) => {
                let _ = cluster.stop().await;
                Err(error)
            }
        }
    }

    /// Connects to the cluster of the kubeconfig at `path` (its current context, or `context`).
    pub async fn kubeconfig(path: &Path, context: Option<&str>) -> Result<Provider, ConnectError> {
        install_crypto_provider();
        let kubeconfig = kube::config::Kubeconfig::read_from(path)
            .with_context(|| format!("cannot read kubeconfig {}", path.display()))
            .map_err(ConnectError::Config)?;
        let options = kube::config::KubeConfigOptions {
            context: context.map(str::to_string),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .with_context(|| format!("cannot use kubeconfig {}", path.display()))
            .map_err(ConnectError::Config)?;
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config)
            .context("cannot build a Kubernetes client")
            .map_err(ConnectError::Config)?;
        let facts = discover_facts(&client)
            .await
            .with_context(|| format!("the cluster at {server} did not answer"))
            .map_err(ConnectError::Cluster)?;
        Ok(Provider {
            backend: Arc::new(Backend::Kubeconfig {
                path: path.to_path_buf(),
                context: context.map(str::to_string),
            }),
            client,
            facts,
        })
    }

    /// A client for the cluster (cheap to clone).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// What was discovered about the cluster at start.
    pub fn facts(&self) -> &ClusterFacts {
        &self.facts
    }

    /// The embedded cluster's kubeconfig, when this provider runs one.
    pub fn embedded_kubeconfig(&self) -> Option<&kube::config::Kubeconfig> {
        match self.backend.as_ref() {
            Backend::Embedded(cluster) => Some(cluster.kubeconfig()),
            Backend::Kubeconfig { .. } => None,
        }
    }

    /// One line saying which cluster this is, for the console.
    pub fn describe(&self) -> String {
        match self.backend.as_ref() {
            Backend::Embedded(_) => {
                format!("embedded cluster {}", self.facts.server_version)
            }
            Backend::Kubeconfig { path, context } => format!(
                "cluster {} from kubeconfig {}{}",
                self.facts.server_version,
                path.display(),
                context
                    .as_ref()
                    .map(|context| format!(" (context {context})"))
                    .unwrap_or_default()
            ),
        }
    }

    /// Runs `program args` "on the node", where pod IPs and the cluster DNS IP are reachable.
    /// `namespace` is where a helper pod goes when the provider needs one; `timeout` bounds it.
    pub async fn run_on_node(
        &self,
        namespace: &str,
        program: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<NodeRun> {
        match self.backend.as_ref() {
            Backend::Embedded(cluster) => {
                let mut command = cluster.node_command(program, args);
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
            Backend::Kubeconfig { .. } => {
                let Some(image) = node_tool_image(program) else {
                    return Ok(NodeRun::Unavailable(format!(
                        "no node access on a kubeconfig cluster and no known image with {program}"
                    )));
                };
                let mut command = vec![program.to_string()];
                command.extend(args.iter().map(|arg| arg.to_string()));
                let pod = OneShotPod::new("node-tool", image, command).host_network();
                match pod.run(&self.client, namespace, timeout).await {
                    Ok(output) => Ok(NodeRun::Ran(output)),
                    Err(error) => Ok(NodeRun::Unavailable(format!(
                        "no node access on a kubeconfig cluster, and a hostNetwork pod with \
                         {image} failed: {error:#}"
                    ))),
                }
            }
        }
    }

    /// Stops the embedded cluster (nothing to do for a kubeconfig cluster). Fails when a
    /// clone is still in use, since stopping would pull the cluster from under it.
    pub async fn stop(self) -> Result<()> {
        let backend = Arc::try_unwrap(self.backend)
            .map_err(|_| anyhow::anyhow!("the cluster is still in use by a lab run"))?;
        match backend {
            Backend::Embedded(cluster) => cluster.stop().await,
            Backend::Kubeconfig { .. } => Ok(()),
        }
    }
}

/// The image that carries `program` for "on the node" commands on a kubeconfig cluster.
/// busybox:1.28's `nslookup NAME SERVER` queries the given server directly, so the search-list
/// quirk of later busybox versions does not matter for fully qualified names.
pub fn node_tool_image(program: &str) -> Option<&'static str> {
    match program {
        "nslookup" => Some("busybox:1.28"),
        _ => None,
    }
}

/// Discovers the cluster's facts through the API.
pub async fn discover_facts(client: &Client) -> Result<ClusterFacts> {
    let version = client
        .apiserver_version()
        .await
        .context("GET /version failed")?;
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let mut dns_service_ip = None;
    for name in ["kube-dns", "coredns"] {
        match services.get_opt(name).await {
            Ok(Some(service)) => {
                dns_service_ip = service
                    .spec
                    .and_then(|spec| spec.cluster_ip)
                    .and_then(|ip| ip.parse().ok());
                if dns_service_ip.is_some() {
                    break;
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!("cannot read Service kube-system/{name}: {error}");
            }
        }
    }
    let default_storage_class = match Api::<StorageClass>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(classes) => default_storage_class(&classes.items),
        Err(error) => {
            // The embedded cluster serves no storage API yet; a cluster without one has no
            // default class, which is a fact, not an error.
            tracing::debug!("no StorageClasses: {error}");
            None
        }
    };
    Ok(ClusterFacts {
        dns_service_ip,
        server_version: version.git_version,
        default_storage_class,
    })
}

/// The name of the StorageClass annotated as the default, if exactly one or more claim it
/// (the API server takes the newest; we take the first in list order, which is rare enough).
fn default_storage_class(classes: &[StorageClass]) -> Option<String> {
    classes
        .iter()
        .find(|class| {
            class
                .metadata
                .annotations
                .as_ref()
                .and_then(|annotations| {
                    annotations.get("storageclass.kubernetes.io/is-default-class")
                })
                .is_some_and(|value| value == "true")
        })
        .and_then(|class| class.metadata.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn class(name: &str, default: Option<&str>) -> StorageClass {
        let mut class = StorageClass::default();
        class.metadata.name = Some(name.to_string());
        if let Some(value) = default {
            class.metadata.annotations = Some(BTreeMap::from([(
                "storageclass.kubernetes.io/is-default-class".to_string(),
                value.to_string(),
            )]));
        }
        class
    }

    #[test]
    fn finds_the_annotated_default_storage_class() {
        let classes = [
            class("slow", None),
            class("fast", Some("false")),
            class("standard", Some("true")),
        ];
        assert_eq!(
            default_storage_class(&classes),
            Some("standard".to_string())
        );
        assert_eq!(default_storage_class(&classes[..2]), None);
    }

    #[test]
    fn nslookup_has_a_node_tool_image_and_unknown_programs_do_not() {
        assert_eq!(node_tool_image("nslookup"), Some("busybox:1.28"));
        assert_eq!(node_tool_image("tcpdump"), None);
    }
}
