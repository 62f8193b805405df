//! An embedded API server with a kube client for it, started in one call.
//!
//! Why it exists: the tests of this crate, of the controllers and of DNS (and the example)
//! all need a real API server on a free loopback port and a client that authenticates to
//! it. One copy keeps the crypto-provider setup, the configuration and the kubeconfig shape
//! in one place instead of a near-identical copy per test suite.

use anyhow::Context as _;
use k8s_labs_node_api::NodeConnections;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::limits::ServingLimits;
use crate::{ApiServer, ApiServerConfig};

/// The Service range the test server allocates cluster IPs from (the kubeadm default).
pub const SERVICE_CIDR: &str = "10.96.0.0/12";
/// The version the test server reports from `/version`.
pub const KUBERNETES_VERSION: &str = "v1.33.0";

/// A running API server on a free loopback port, its bearer token and a client using it.
pub struct TestApiServer {
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
        Self::start_with(nodes, ServingLimits::default()).await
    }

    /// Starts a server with `limits` instead of kube-apiserver's (small figures for tests).
    pub async fn start_with_limits(limits: ServingLimits) -> anyhow::Result<TestApiServer> {
        Self::start_with(NodeConnections::default(), limits).await
    }

    async fn start_with(
        nodes: NodeConnections,
        limits: ServingLimits,
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

    /// Stops the server.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// A kubeconfig for `url` with an optional bearer token (none: anonymous) and an optional
/// CA (PEM) the cluster entry trusts for https.
pub fn kubeconfig_yaml(url: &str, token: Option<&str>, ca_pem: Option<&str>) -> String {
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
