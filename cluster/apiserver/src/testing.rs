//! An embedded API server with a kube client for it, started in one call.
//!
//! Why it exists: the tests of this crate, of the controllers and of DNS (and the example)
//! all need a real API server on a free loopback port and a client that authenticates to
//! it. One copy keeps the crypto-provider setup, the configuration and the kubeconfig shape
//! in one place instead of a near-identical copy per test suite. The kubectl tests (here and
//! in the cluster crate) find the real kubectl binaries through [`kubectl_binary`], so the
//! directory they come from is chosen in one place too.

use std::path::PathBuf;

use anyhow::Context as _;
use k8s_labs_node_api::NodeConnections;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::limits::ServingLimits;
use crate::{ApiServer, ApiServerConfig};

/// The Service range the test server allocates cluster IPs from (the kubeadm default).
const SERVICE_CIDR: &str = "10.96.0.0/12";
/// The version the test server reports from `/version`.
const KUBERNETES_VERSION: &str = "v1.33.0";

/// A running API server on a free loopback port, its bearer token and a client using it.
pub struct TestApiServer {
    /// The running server.
    pub server: ApiServer,
    /// A client for the server (over TLS, trusting its CA), authenticated with `token`.
    pub client: kube::Client,
    /// The random bearer token the server accepts.
    pub token: String,
}

impl TestApiServer {
    /// Starts a server without node agents (exec, attach and logs have no node to reach).
    pub async fn start() -> anyhow::Result<TestApiServer> {
        Self::start_with_nodes(NodeConnections::default()).await
    }

    /// Starts a server that reaches `nodes` for exec, attach and logs.
    pub async fn start_with_nodes(nodes: NodeConnections) -> anyhow::Result<TestApiServer> {
        Self::start_with(nodes, ServingLimits::default(), crate::HISTORY_LEN).await
    }

    /// Starts a server with `limits` instead of kube-apiserver's (small figures for tests).
    pub async fn start_with_limits(limits: ServingLimits) -> anyhow::Result<TestApiServer> {
        Self::start_with(NodeConnections::default(), limits, crate::HISTORY_LEN).await
    }

    /// Starts a server whose store keeps only `history_len` changes, so that a test reaches
    /// what lies past the history (410 Gone, expired continue tokens) in a few writes instead
    /// of [`crate::HISTORY_LEN`].
    pub async fn start_with_history_len(history_len: usize) -> anyhow::Result<TestApiServer> {
        let limits = ServingLimits::default();
        Self::start_with(NodeConnections::default(), limits, history_len).await
    }

    async fn start_with(
        nodes: NodeConnections,
        limits: ServingLimits,
        history_len: usize,
    ) -> anyhow::Result<TestApiServer> {
        // kube's TLS stack needs a process-wide provider; a second install fails harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let server = ApiServer::start(ApiServerConfig {
            bind: ([127, 0, 0, 1], 0).into(),
            token: token.clone(),
            service_cidr: SERVICE_CIDR.to_string(),
            kubernetes_version: KUBERNETES_VERSION.to_string(),
            nodes,
            limits,
            history_len,
        })
        .await?;
        let client = client_for(&server, Some(&token)).await?;
        Ok(TestApiServer {
            server,
            client,
            token,
        })
    }

    /// A kubeconfig for the server, trusting its CA, with the token: what kubectl and the
    /// Python client read.
    pub fn https_kubeconfig(&self) -> String {
        server_kubeconfig(&self.server, Some(&self.token))
    }

    /// A client that sends each request once. kube retries 5xx and 429 answers with backoff
    /// by default, which would hide the first answer, the one a test compares with
    /// kube-apiserver's.
    pub async fn client_without_retries(&self) -> anyhow::Result<kube::Client> {
        client_without_retries(&self.https_kubeconfig()).await
    }

    /// Sends `request` once (see [`TestApiServer::client_without_retries`]): the status and
    /// the body.
    pub async fn send_once(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> anyhow::Result<(u16, bytes::Bytes)> {
        let response = self
            .client_without_retries()
            .await?
            .send(request.map(Into::into))
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.into_body().collect_bytes().await?))
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// A kubeconfig for `url` with an optional bearer token (none: anonymous) and an optional
/// CA (PEM) the cluster entry trusts for https.
fn kubeconfig_yaml(url: &str, token: Option<&str>, ca_pem: Option<&str>) -> String {
    let ca = ca_pem
        .map(|pem| {
            format!(
                "    certificate-authority-data: {}\n",
                crate::defaults::base64(pem.as_bytes())
            )
        })
        .unwrap_or_default();
    let user = match token {
        Some(token) => format!("    token: {token}\n"),
        None => "    {}\n".to_string(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n{ca}\
         contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n\
         current-context: test\nusers:\n- name: test\n  user:\n{user}"
    )
}

/// A client for `kubeconfig` (YAML) that sends each request once (see
/// [`TestApiServer::client_without_retries`]).
pub async fn client_without_retries(kubeconfig: &str) -> anyhow::Result<kube::Client> {
    let kubeconfig = Kubeconfig::from_yaml(kubeconfig).context("parsing the test kubeconfig")?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    config.default_retry = false;
    Ok(kube::Client::try_from(config)?)
}

/// A kubeconfig for `server` (its HTTPS URL and CA) with an optional bearer token.
pub fn server_kubeconfig(server: &ApiServer, token: Option<&str>) -> String {
    kubeconfig_yaml(
        &server.https_url(),
        token,
        Some(server.ca_certificate_pem()),
    )
}

/// A kube client for `server` with an optional bearer token (none: anonymous requests).
pub async fn client_for(server: &ApiServer, token: Option<&str>) -> anyhow::Result<kube::Client> {
    let kubeconfig = Kubeconfig::from_yaml(&server_kubeconfig(server, token))
        .context("parsing the test kubeconfig")?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// The environment variable naming the directory of versioned kubectl binaries
/// (`kubectl.1.27` … `kubectl.1.33`) that the kubectl tests of this crate and of the cluster
/// run. CI machines without Debian's `kubectl` package (GitHub's Ubuntu runners) download the
/// releases into a directory of their own and name it here.
const KUBECTL_DIR_VAR: &str = "K8S_LABS_KUBECTL_DIR";

/// Where Debian's `kubectl` package installs its versioned binaries: the directory used when
/// [`KUBECTL_DIR_VAR`] is unset or empty.
const DEFAULT_KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";

/// The directory of versioned kubectl binaries: [`KUBECTL_DIR_VAR`] if set and not empty,
/// else [`DEFAULT_KUBECTL_DIR`].
fn kubectl_dir() -> PathBuf {
    match std::env::var_os(KUBECTL_DIR_VAR) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_KUBECTL_DIR),
    }
}

/// kubectl `1.<minor>` from the directory `K8S_LABS_KUBECTL_DIR` names (Debian's
/// `/usr/lib/google-cloud-sdk/bin` when unset or empty). Panics with one line naming the binary
/// and the variable when it is missing: the kubectl tests exist to run the real kubectl,
/// and one that skips a missing version would pass without proving anything about it.
pub fn kubectl_binary(minor: u32) -> PathBuf {
    let binary = kubectl_dir().join(format!("kubectl.1.{minor}"));
    assert!(
        binary.is_file(),
        "kubectl 1.{minor} is missing: {} is not a file; install Debian's kubectl package \
         (kubectl 1.27 … 1.33 in {DEFAULT_KUBECTL_DIR}) or set {KUBECTL_DIR_VAR} to a \
         directory holding kubectl.1.{minor}",
        binary.display()
    );
    binary
}
