//! The embedded Kubernetes cluster: an API server, the controllers, a node agent that runs pods
//! on runc inside network namespaces of its own, cluster DNS and a service proxy, all in one
//! process.
//!
//! It exists because the machines this project is developed and tested on cannot run a real
//! cluster; a lab runner never run against a cluster is a toy. Every part except the API server
//! is an API client, so what the labs see here is what they would see on kind or k3s.

mod bootstrap;
pub mod dns_pod;
mod kubeconfig;

pub use kubeconfig::CONTEXT_NAME;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use k8s_labs_apiserver::{ApiServer, ApiServerConfig};
use k8s_labs_controllers::{ControllerConfig, ControllerManager};
use k8s_labs_dns::{DnsConfig, DnsServer};
use k8s_labs_net::{NodeNetwork, NodeNetworkConfig};
use k8s_labs_node::{NodeAgent, NodeConfig, NodeHandle, NodeUserNamespaces};
use k8s_labs_node_api::NodeConnections;
use k8s_labs_proxy::ServiceProxy;

/// Where every cluster keeps its runtime state (one directory per running cluster, with the
/// owner's PID), so that a new start can tell a crashed cluster's leftovers from a live one.
pub use k8s_labs_node::RUN_ROOT;

/// The controllers' clock, for [`ClusterConfig::controller_clock`].
pub use k8s_labs_controllers::Clock;

/// The node's default sampling period for resource metrics.
pub use k8s_labs_node::DEFAULT_METRICS_PERIOD;

/// The single node's name, as `kubectl get nodes` shows it.
pub const NODE_NAME: &str = "k8s-labs-node";

/// The cluster domain, as in every kubeadm/kind cluster.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Settings of one embedded cluster. The defaults are the ranges of a kubeadm cluster, which
/// the tutorial's outputs show (pods in 10.244.0.0/16, cluster DNS on 10.96.0.10).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Pod network, e.g. `10.244.0.0/16`. Lives only inside the cluster's node network namespace.
    pub pod_cidr: String,
    /// Service network, e.g. `10.96.0.0/12`.
    pub service_cidr: String,
    /// The cluster IP of the `kube-dns` Service in `kube-system`.
    pub dns_ip: Ipv4Addr,
    /// What `/version` and the node report, `vMAJOR.MINOR[.PATCH]`, e.g. `v1.33.0` (a missing
    /// patch is reported as `.0`, as a real server always names one). Checked at start.
    pub kubernetes_version: String,
    /// Where to write the kubeconfig, if anywhere.
    pub kubeconfig_path: Option<PathBuf>,
    /// The clock the controllers schedule CronJobs by: the wall clock, or one ahead of it
    /// (so that a CronJob's first run is already due when it is created).
    pub controller_clock: Clock,
    /// How often the node samples its containers' CPU and memory, which `kubectl top`
    /// shows (the rate between the two latest samples): [`DEFAULT_METRICS_PERIOD`], as
    /// metrics-server's resolution, unless a test wants readings sooner. Every reading is a
    /// real cgroup reading whatever the period.
    pub metrics_period: std::time::Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            pod_cidr: "10.244.0.0/16".to_string(),
            service_cidr: "10.96.0.0/12".to_string(),
            dns_ip: Ipv4Addr::new(10, 96, 0, 10),
            kubernetes_version: "v1.33.0".to_string(),
            kubeconfig_path: None,
            controller_clock: Clock::system(),
            metrics_period: DEFAULT_METRICS_PERIOD,
        }
    }
}

/// A running embedded cluster. Stop it with [`EmbeddedCluster::stop`]; everything it started
/// (processes, mounts, network namespaces) is gone afterwards. A process that dies without
/// stopping leaves its state behind for the next start to remove.
pub struct EmbeddedCluster {
    kubeconfig: kube::config::Kubeconfig,
    kubeconfig_yaml: String,
    network: Arc<NodeNetwork>,
    state_dir: PathBuf,
    /// The node's user namespace (which owns the node network) and its pods' id ranges.
    user_namespaces: Option<NodeUserNamespaces>,
    parts: Option<Parts>,
}

/// What runs, in the order it is stopped.
struct Parts {
    dns_pod: tokio::task::JoinHandle<()>,
    nodes: NodeConnections,
    node: NodeHandle,
    proxy: ServiceProxy,
    dns: DnsServer,
    controllers: ControllerManager,
    apiserver: ApiServer,
}

impl EmbeddedCluster {
    /// Starts the cluster and returns once the API server answers, the cluster DNS serves and
    /// the node is registered.
    pub async fn start(mut config: ClusterConfig) -> Result<EmbeddedCluster> {
        config.kubernetes_version = normalized_kubernetes_version(&config.kubernetes_version)?;
        preflight()?;
        let run_root = Path::new(RUN_ROOT);
        k8s_labs_node::cleanup_leftovers(run_root)
            .context("removing what an earlier embedded cluster left behind")?;
        let (instance, state_dir) = k8s_labs_node::claim_instance(run_root)?;
        let image_dir = Path::new(k8s_labs_node::DEFAULT_IMAGE_DIR);
        let user_namespaces = NodeUserNamespaces::create(&state_dir, image_dir);
        let network_config = NodeNetworkConfig {
            instance,
            pod_cidr: config.pod_cidr.clone(),
            local_addresses: vec![config.dns_ip],
        };
        let network = match &user_namespaces {
            Some(namespaces) => NodeNetwork::create_with(network_config, &|path: &Path| {
                namespaces.node.bind_network_namespace(path)
            }),
            None => NodeNetwork::create(network_config),
        };
        let network = match network {
            Ok(network) => network,
            Err(error) => {
                let _ = remove_state_dir(&state_dir);
                return Err(error.context("creating the node network namespace"));
            }
        };
        let network = Arc::new(network);
        let mut cluster = EmbeddedCluster {
            kubeconfig: kube::config::Kubeconfig::default(),
            kubeconfig_yaml: String::new(),
            network,
            state_dir,
            user_namespaces,
            parts: None,
        };
        match cluster.start_parts(&config).await {
            Ok(()) => Ok(cluster),
            Err(error) => {
                if let Err(stop_error) = cluster.stop().await {
                    tracing::warn!("cleaning up after a failed start: {stop_error:#}");
                }
                Err(error)
            }
        }
    }

    async fn start_parts(&mut self, config: &ClusterConfig) -> Result<()> {
        let nodes = NodeConnections::default();
        let token = kubeconfig::random_token();
        let apiserver = ApiServer::start(ApiServerConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            token: token.clone(),
            service_cidr: config.service_cidr.clone(),
            kubernetes_version: config.kubernetes_version.clone(),
            nodes: nodes.clone(),
            limits: Default::default(),
            history_len: k8s_labs_apiserver::HISTORY_LEN,
        })
        .await
        .context("starting the API server")?;
        self.kubeconfig_yaml = kubeconfig::render(
            &apiserver.https_url(),
            apiserver.ca_certificate_pem(),
            &token,
        );
        self.kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml)
            .context("reading the generated kubeconfig")?;
        if let Some(path) = &config.kubeconfig_path {
            kubeconfig::write(path, &self.kubeconfig_yaml)?;
        }
        let client = self.client().await?;
        bootstrap::create_cluster_dns_service(&client, config.dns_ip).await?;

        // Provisioned volumes live on the node, below its root directory (removed at stop).
        let controllers = ControllerManager::start_with(
            client.clone(),
            ControllerConfig {
                clock: config.controller_clock,
                ..ControllerConfig::default()
            },
        )
        .await
        .context("starting the controllers")?;
        let dns = self.start_dns(&client, config).await?;
        // kube-dns's address is served by the DNS server itself, in the node network.
        let proxy = ServiceProxy::start(
            client.clone(),
            self.network.clone(),
            vec![("kube-system".to_string(), "kube-dns".to_string())],
        )
        .await
        .context("starting the service proxy")?;
        let node = self.start_node(&client, config).await?;
        nodes.register(NODE_NAME, node.connection());
        let dns_pod = dns_pod::DnsPod {
            client: client.clone(),
            network: self.network.clone(),
            node: NODE_NAME.to_string(),
            dns_ip: config.dns_ip,
            cluster_domain: CLUSTER_DOMAIN.to_string(),
        }
        .start()
        .await?;
        self.parts = Some(Parts {
            dns_pod,
            nodes,
            node,
            proxy,
            dns,
            controllers,
            apiserver,
        });
        Ok(())
    }

    /// Cluster DNS on the kube-dns address, bound (UDP and TCP) in the node network.
    async fn start_dns(&self, client: &kube::Client, config: &ClusterConfig) -> Result<DnsServer> {
        let dns_address = SocketAddr::from((config.dns_ip, 53));
        let udp = self.network.bind_udp(dns_address).with_context(|| {
            format!("binding cluster DNS on udp {dns_address} in the node network")
        })?;
        let tcp = self.network.bind_tcp(dns_address).with_context(|| {
            format!("binding cluster DNS on tcp {dns_address} in the node network")
        })?;
        let dns = DnsServer::start(
            client.clone(),
            udp,
            tcp,
            DnsConfig {
                cluster_domain: CLUSTER_DOMAIN.to_string(),
                ttl: 5,
            },
        )
        .await
        .context("starting cluster DNS")?;
        Ok(dns)
    }

    /// The node agent (kubelet and runtime) of the cluster's one node.
    async fn start_node(
        &self,
        client: &kube::Client,
        config: &ClusterConfig,
    ) -> Result<NodeHandle> {
        let node = NodeAgent::start(
            client.clone(),
            NodeConfig {
                node_name: NODE_NAME.to_string(),
                state_dir: self.state_dir.clone(),
                network: self.network.clone(),
                dns_ip: config.dns_ip,
                cluster_domain: CLUSTER_DOMAIN.to_string(),
                kubelet_version: config.kubernetes_version.clone(),
                image_dir: k8s_labs_node::DEFAULT_IMAGE_DIR.into(),
                image_sources: k8s_labs_node::ImageSources::discover()?,
                pulled_image_dir: k8s_labs_node::DEFAULT_PULLED_IMAGE_DIR.into(),
                user_namespaces: self.user_namespaces.clone(),
                metrics_period: config.metrics_period,
                eviction_period: k8s_labs_node::DEFAULT_EVICTION_PERIOD,
            },
        )
        .await
        .context("starting the node agent")?;
        Ok(node)
    }

    /// A kubeconfig for the cluster: server `https://127.0.0.1:<port>` with its CA, a bearer token.
    pub fn kubeconfig(&self) -> &kube::config::Kubeconfig {
        &self.kubeconfig
    }

    /// The id of this cluster run: its network namespaces are named `k8s-labs-<instance>-…`
    /// and its state lives in `/run/k8s-labs/<instance>`.
    pub fn instance(&self) -> &str {
        self.network.instance()
    }

    /// The same kubeconfig as YAML, for writing where kubectl can read it.
    pub fn kubeconfig_yaml(&self) -> &str {
        &self.kubeconfig_yaml
    }

    /// A client for the cluster, authenticated with the cluster's token.
    pub async fn client(&self) -> Result<kube::Client> {
        install_crypto_provider();
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(self.kubeconfig.clone(), &options)
            .await
            .context("loading the embedded cluster's kubeconfig")?;
        kube::Client::try_from(config).context("building a client for the embedded cluster")
    }

    /// A command that runs "on the node": inside the cluster's node network namespace, where
    /// pod IPs and the cluster DNS address are reachable (and nowhere else on the host).
    pub fn node_command(&self, program: &str, args: &[&str]) -> tokio::process::Command {
        self.network.command(program, args)
    }

    /// Stops everything the cluster started and removes its network namespaces and mounts.
    pub async fn stop(self) -> Result<()> {
        let EmbeddedCluster {
            network,
            state_dir,
            parts,
            ..
        } = self;
        let mut first_error = None;
        if let Some(parts) = parts {
            parts.dns_pod.abort();
            parts.nodes.unregister(NODE_NAME);
            if let Err(error) = parts.node.shutdown().await {
                first_error.get_or_insert(error.context("stopping the node agent"));
            }
            parts.proxy.shutdown().await;
            parts.dns.shutdown().await;
            parts.controllers.shutdown().await;
            parts.apiserver.shutdown().await;
        }
        if let Err(error) = network.destroy() {
            first_error.get_or_insert(error.context("removing the node network"));
        }
        if let Err(error) = remove_state_dir(&state_dir) {
            first_error.get_or_insert(error);
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Removes the instance directory, unmounting what is mounted below it first (the pin of the
/// node's user namespace).
fn remove_state_dir(state_dir: &Path) -> Result<()> {
    k8s_labs_node::unmount_under(state_dir)?;
    match std::fs::remove_dir_all(state_dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow::Error::new(error).context(format!("removing {}", state_dir.display())))
        }
        _ => Ok(()),
    }
}

/// Checks what the embedded cluster needs from the machine (root, runc, iproute2, the
/// programs of the image catalog) and says in one line what is missing and how to install it.
pub fn preflight() -> Result<()> {
    k8s_labs_node::preflight().map_err(|missing| anyhow::anyhow!("{missing}"))
}

/// kube's client panics when two rustls providers are compiled in and none is chosen; we
/// compile only ring, but choosing it explicitly keeps that true whatever a dependency adds.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `version` as the cluster reports it (`v1.34` becomes `v1.34.0`), or one line saying what a
/// valid version looks like: a typo must not start a cluster that claims a nonsense version.
pub fn normalized_kubernetes_version(version: &str) -> Result<String> {
    let invalid = || {
        anyhow::anyhow!(
            "invalid Kubernetes version {version:?}: expected vMAJOR.MINOR or \
             vMAJOR.MINOR.PATCH, e.g. v1.33 or v1.33.0"
        )
    };
    let numbers: Vec<&str> = version
        .strip_prefix('v')
        .ok_or_else(invalid)?
        .split('.')
        .collect();
    if !(2..=3).contains(&numbers.len())
        || numbers
            .iter()
            .any(|number| number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()))
    {
        return Err(invalid());
    }
    let patch = numbers.get(2).copied().unwrap_or("0");
    Ok(format!("v{}.{}.{patch}", numbers[0], numbers[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_versions_are_checked_and_given_a_patch() {
        assert_eq!(normalized_kubernetes_version("v1.33.0").unwrap(), "v1.33.0");
        assert_eq!(normalized_kubernetes_version("v1.35").unwrap(), "v1.35.0");
        for bad in ["1.33", "v1", "v1.33.0.1", "v1.x", "v1..2", "v1.33-rc.1", ""] {
            let error = normalized_kubernetes_version(bad).unwrap_err().to_string();
            assert!(error.contains("expected vMAJOR.MINOR"), "{bad}: {error}");
        }
    }
}
