//! Where a lab runs: the embedded cluster started in this process, an ephemeral k3s in a
//! container, or any cluster reachable through a kubeconfig. Each is a [`ClusterProvider`];
//! labs see one face ([`Provider`]): a client, facts discovered at start, and "on the node"
//! commands, and never know which cluster they run on.
//!
//! On a cluster other than the embedded one the harness has no shell on a node. "On the node"
//! commands then run from a one-shot pod with `hostNetwork: true` in the lab namespace (the
//! node's network view, which is what the tutorial's node commands depend on), using an image
//! known to carry the program (see [`node_tool_image`]). A program with no known image, or a
//! cluster that refuses host-network pods, makes the step *skipped* with the reason, never
//! silently passed.

/// Needs the `embedded` feature.
#[cfg(feature = "embedded")]
pub mod embedded;
/// Needs the `k3s` feature.
#[cfg(feature = "k3s")]
pub mod engine;
pub mod export;
pub mod facts;
mod features;
/// Needs the `k3s` feature.
#[cfg(feature = "k3s")]
pub mod k3s;
pub mod kind;
pub mod kind_nodes;
pub mod kubeconfig;
pub mod version;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use async_trait::async_trait;
use kube::Client;

use crate::exec::{CommandOutput, OneShotPod};

#[cfg(feature = "k3s")]
pub use engine::EngineEnv;
pub use facts::{ClusterFacts, discover_facts};
pub use features::Backends;
pub use kind::KindEnv;
pub use kubeconfig::KubeconfigSource;
pub use version::KubernetesVersion;

/// Why connecting failed: the user's choice (flags, kubeconfig, a missing container engine),
/// fixed by changing them, or the cluster (did not start, did not answer), an infrastructure
/// error. Either way the message is one line that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The choice cannot be used (missing file, bad YAML, unknown context, no Docker for k3s).
    #[error("{0:#}")]
    Config(anyhow::Error),
    /// The cluster did not start, did not answer or refused the requests.
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

/// Which kind of cluster a provider runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterKind {
    /// The cluster in this process (`k8s_labs_cluster`).
    Embedded,
    /// An ephemeral k3s in a container, removed at the end.
    K3s,
    /// An ephemeral kind cluster, deleted at the end.
    Kind,
    /// A cluster someone else runs, through a kubeconfig.
    Kubeconfig,
}

/// Which cluster to run on, as the command line chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterChoice {
    /// Start the embedded cluster, reporting `kubernetes_version` (default v1.33.0).
    Embedded {
        /// What the cluster's `/version` reports.
        kubernetes_version: Option<KubernetesVersion>,
    },
    /// Start k3s in a container of the local Docker-compatible engine.
    K3s {
        /// Which k3s release (default [`KubernetesVersion::DEFAULT`]).
        kubernetes_version: Option<KubernetesVersion>,
    },
    /// Create a kind cluster with the `kind` binary on PATH.
    Kind {
        /// Which node image (default [`KubernetesVersion::DEFAULT`]), see [`kind_nodes`].
        kubernetes_version: Option<KubernetesVersion>,
    },
    /// Use the cluster of a kubeconfig.
    Kubeconfig {
        /// The kubeconfig (`None`: the one kubectl uses, `$KUBECONFIG` or `~/.kube/config`).
        path: Option<PathBuf>,
        /// The context (`None`: its current context).
        context: Option<String>,
    },
}

/// One cluster behind the common face: how to reach it, what it is, what it logged, and how
/// to take it down. Created by each implementation's own constructor
/// ([`embedded::EmbeddedProvider::create`], [`k3s::K3sProvider::create`],
/// [`kubeconfig::KubeconfigCluster::connect`]), usually through [`Provider::from_choice`].
#[async_trait]
pub trait ClusterProvider: Send + Sync {
    /// Which kind of cluster this is.
    fn kind(&self) -> ClusterKind;

    /// A client for the cluster (cheap to clone).
    fn client(&self) -> Client;

    /// The kubeconfig that reaches the cluster (for kubectl, or to write next to a report).
    fn kubeconfig(&self) -> &kube::config::Kubeconfig;

    /// The context of [`ClusterProvider::kubeconfig`] in use, when it has one.
    fn context(&self) -> Option<&str> {
        None
    }

    /// One line saying which cluster this is, for the start of a run.
    fn describe(&self, facts: &ClusterFacts) -> String;

    /// Whether pods pull their images from a registry (slow the first time): true for every
    /// real cluster, false for the embedded one, whose images are local programs.
    fn pulls_images(&self) -> bool {
        true
    }

    /// The API server's version, e.g. `v1.33.0`.
    async fn version(&self) -> Result<String> {
        Ok(self.client().apiserver_version().await?.git_version)
    }

    /// Writes the cluster's logs under `dir`: kube-system's and `namespaces`' pod logs and
    /// events (and for k3s, the server's own log). Returns the files written.
    async fn export_logs(&self, dir: &Path, namespaces: &[&str]) -> Result<Vec<PathBuf>> {
        export::export_namespaces(&self.client(), dir, namespaces).await
    }

    /// Runs `program args` "on the node" (default: from a hostNetwork pod in `namespace`).
    async fn run_on_node(
        &self,
        client: &Client,
        namespace: &str,
        program: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<NodeRun> {
        run_in_host_network_pod(client, namespace, program, args, timeout).await
    }

    /// Asks that [`ClusterProvider::destroy`] leave the cluster up, for a namespace kept for
    /// inspection; returns the line telling a person how to reach it and delete it later.
    /// `None` when this cluster cannot outlive the run (the embedded one lives in this
    /// process) or was never this run's to delete.
    fn keep_for_inspection(&self) -> Option<String> {
        None
    }

    /// Takes the cluster down if this provider started it (the embedded cluster stops, the
    /// k3s container is removed, the kind cluster deleted unless kept); a kubeconfig cluster
    /// is left as it was.
    async fn destroy(self: Box<Self>) -> Result<()>;
}

/// A cluster to run labs on, with its client and facts. Clones share the cluster; it is taken
/// down when [`Provider::stop`] is called on the last clone.
#[derive(Clone)]
pub struct Provider {
    backend: Arc<Box<dyn ClusterProvider>>,
    client: Client,
    facts: ClusterFacts,
}

/// Installs the process-wide rustls crypto provider (ring) once, before any client is built:
/// rustls refuses to pick one itself when more than one is compiled in.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An ephemeral k3s of `version` (default [`KubernetesVersion::DEFAULT`]) in the container
/// engine `engine` names.
#[cfg(feature = "k3s")]
async fn k3s_backend(
    version: Option<KubernetesVersion>,
    engine: &EngineEnv,
) -> Result<Box<dyn ClusterProvider>, ConnectError> {
    let version = version.unwrap_or(KubernetesVersion::DEFAULT);
    Ok(Box::new(k3s::K3sProvider::create(version, engine).await?))
}

impl Provider {
    /// Creates or connects to the chosen cluster and discovers its facts. A cluster this
    /// created is taken down again when discovery fails. A choice whose backend this build
    /// of the harness lacks (features `embedded`, `k3s`) is a [`ConnectError::Config`].
    pub async fn from_choice(choice: ClusterChoice) -> Result<Provider, ConnectError> {
        install_crypto_provider();
        let backend: Box<dyn ClusterProvider> = match choice {
            #[cfg(feature = "embedded")]
            ClusterChoice::Embedded { kubernetes_version } => Box::new(
                embedded::EmbeddedProvider::create_version(
                    kubernetes_version.unwrap_or(KubernetesVersion::DEFAULT),
                )
                .await?,
            ),
            #[cfg(feature = "k3s")]
            ClusterChoice::K3s { kubernetes_version } => {
                k3s_backend(kubernetes_version, &EngineEnv::from_process()).await?
            }
            #[cfg(not(feature = "embedded"))]
            ClusterChoice::Embedded { .. } => {
                return Err(ConnectError::Config(anyhow!(features::NO_EMBEDDED)));
            }
            #[cfg(not(feature = "k3s"))]
            ClusterChoice::K3s { .. } => {
                return Err(ConnectError::Config(anyhow!(features::NO_K3S)));
            }
            ClusterChoice::Kind { kubernetes_version } => Box::new(
                kind::KindProvider::create(
                    kubernetes_version.unwrap_or(KubernetesVersion::DEFAULT),
                    &KindEnv::from_process(),
                )
                .await?,
            ),
            ClusterChoice::Kubeconfig { path, context } => {
                let source = match path {
                    Some(path) => KubeconfigSource::File(path),
                    None => KubeconfigSource::kubectl_default().map_err(ConnectError::Config)?,
                };
                Box::new(kubeconfig::KubeconfigCluster::connect(&source, context.as_deref()).await?)
            }
        };
        Provider::with_backend(backend).await
    }

    /// [`Provider::from_choice`] with the container engine for k3s looked up in `engine`
    /// instead of this process's environment. Needs the `k3s` feature.
    #[cfg(feature = "k3s")]
    pub async fn from_choice_with(
        choice: ClusterChoice,
        engine: &EngineEnv,
    ) -> Result<Provider, ConnectError> {
        let ClusterChoice::K3s { kubernetes_version } = choice else {
            return Provider::from_choice(choice).await;
        };
        install_crypto_provider();
        Provider::with_backend(k3s_backend(kubernetes_version, engine).await?).await
    }

    /// Wraps a created cluster: discovers its facts, and destroys it when that fails.
    pub async fn with_backend(backend: Box<dyn ClusterProvider>) -> Result<Provider, ConnectError> {
        let client = backend.client();
        match discover_facts(&client).await {
            Ok(facts) => Ok(Provider {
                backend: Arc::new(backend),
                client,
                facts,
            }),
            Err(error) => {
                let error = error.context(format!(
                    "the {} at {} did not answer",
                    kind_name(backend.kind()),
                    server_of(backend.kubeconfig(), backend.context()).unwrap_or("?")
                ));
                if let Err(destroy_error) = backend.destroy().await {
                    tracing::warn!(
                        "taking the cluster down after a failed start: {destroy_error:#}"
                    );
                }
                Err(ConnectError::Cluster(error))
            }
        }
    }

    /// Starts the embedded cluster with `config` and connects to it. Needs the `embedded`
    /// feature.
    #[cfg(feature = "embedded")]
    pub async fn embedded(config: k8s_labs_cluster::ClusterConfig) -> Result<Provider> {
        let backend = embedded::EmbeddedProvider::create(config).await?;
        Provider::with_backend(Box::new(backend))
            .await
            .map_err(|error| match error {
                ConnectError::Config(error) | ConnectError::Cluster(error) => error,
            })
    }

    /// Connects to the cluster of the kubeconfig at `path` (its current context, or `context`).
    pub async fn kubeconfig(path: &Path, context: Option<&str>) -> Result<Provider, ConnectError> {
        Provider::from_choice(ClusterChoice::Kubeconfig {
            path: Some(path.to_path_buf()),
            context: context.map(str::to_string),
        })
        .await
    }

    /// A client for the cluster (cheap to clone).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// What was discovered about the cluster at start.
    pub fn facts(&self) -> &ClusterFacts {
        &self.facts
    }

    /// Which kind of cluster this is.
    pub fn kind(&self) -> ClusterKind {
        self.backend.kind()
    }

    /// Whether pods pull images from a registry, so first starts are slow (see
    /// [`ClusterProvider::pulls_images`]): waits should be longer and say "pulling image".
    pub fn pulls_images(&self) -> bool {
        self.backend.pulls_images()
    }

    /// The kubeconfig that reaches the cluster, and the context in use.
    pub fn cluster_kubeconfig(&self) -> (&kube::config::Kubeconfig, Option<&str>) {
        (self.backend.kubeconfig(), self.backend.context())
    }

    /// The embedded cluster's kubeconfig, when this provider runs one.
    pub fn embedded_kubeconfig(&self) -> Option<&kube::config::Kubeconfig> {
        (self.backend.kind() == ClusterKind::Embedded).then(|| self.backend.kubeconfig())
    }

    /// One line saying which cluster this is, with its version, for the console.
    pub fn describe(&self) -> String {
        self.backend.describe(&self.facts)
    }

    /// Asks the API server for its version now (the facts hold the one seen at start).
    pub async fn version(&self) -> Result<String> {
        self.backend.version().await
    }

    /// Writes the cluster's logs and events (kube-system and `namespaces`) under `dir`.
    pub async fn export_logs(&self, dir: &Path, namespaces: &[&str]) -> Result<Vec<PathBuf>> {
        self.backend.export_logs(dir, namespaces).await
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
        self.backend
            .run_on_node(&self.client, namespace, program, args, timeout)
            .await
    }

    /// Leaves a cluster this run created up after [`Provider::stop`], for a kept namespace;
    /// the line to print says how to reach and delete it. `None`: it cannot be kept.
    pub fn keep_for_inspection(&self) -> Option<String> {
        self.backend.keep_for_inspection()
    }

    /// Takes the cluster down if this provider started it (nothing to do for a kubeconfig
    /// cluster). Fails when a clone is still in use, since that would pull the cluster from
    /// under it.
    pub async fn stop(self) -> Result<()> {
        let backend = Arc::try_unwrap(self.backend)
            .map_err(|_| anyhow!("the cluster is still in use by a lab run"))?;
        backend.destroy().await
    }
}

fn kind_name(kind: ClusterKind) -> &'static str {
    match kind {
        ClusterKind::Embedded => "embedded cluster",
        ClusterKind::K3s => "k3s cluster",
        ClusterKind::Kind => "kind cluster",
        ClusterKind::Kubeconfig => "cluster",
    }
}

/// The API server URL of `context` (or the current context) in `kubeconfig`, for messages.
fn server_of<'a>(
    kubeconfig: &'a kube::config::Kubeconfig,
    context: Option<&str>,
) -> Option<&'a str> {
    let context = context.or(kubeconfig.current_context.as_deref())?;
    let cluster = &kubeconfig
        .contexts
        .iter()
        .find(|named| named.name == context)?
        .context
        .as_ref()?
        .cluster;
    kubeconfig
        .clusters
        .iter()
        .find(|named| &named.name == cluster)?
        .cluster
        .as_ref()?
        .server
        .as_deref()
}

/// "On the node" without a node shell: `program` in a hostNetwork one-shot pod.
async fn run_in_host_network_pod(
    client: &Client,
    namespace: &str,
    program: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<NodeRun> {
    let Some(image) = node_tool_image(program) else {
        return Ok(NodeRun::Unavailable(format!(
            "no node access on this cluster and no known image with {program}"
        )));
    };
    let mut command = vec![program.to_string()];
    command.extend(args.iter().map(|arg| arg.to_string()));
    let pod = OneShotPod::new("node-tool", image, command).host_network();
    match pod.run(client, namespace, timeout).await {
        Ok(output) => Ok(NodeRun::Ran(output)),
        Err(error) => Ok(NodeRun::Unavailable(format!(
            "no node access on this cluster, and a hostNetwork pod with {image} failed: {error:#}"
        ))),
    }
}

/// The image that carries `program` for "on the node" commands on a cluster without a node
/// shell. busybox:1.28's `nslookup NAME SERVER` queries the given server directly, so the
/// search-list quirk of later busybox versions does not matter for fully qualified names.
pub fn node_tool_image(program: &str) -> Option<&'static str> {
    match program {
        "nslookup" => Some("busybox:1.28"),
        _ => None,
    }
}

// They start the embedded cluster and route a k3s choice; the default build runs them.
#[cfg(all(test, feature = "embedded", feature = "k3s"))]
mod tests;
