//! An embedded API server with a kube client for it, started in one call.
//!
//! Why it exists: the tests of this crate, of the controllers and of DNS (and the example)
//! all need a real API server on a free loopback port and a client that authenticates to
//! it. One copy keeps the crypto-provider setup, the configuration and the kubeconfig shape
//! in one place instead of a near-identical copy per test suite.

use anyhow::Context as _;
use k8s_labs_node_api::NodeConnections;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::{ApiServer, ApiServerConfig};

/// The Service range the test server allocates cluster IPs from (the kubeadm default).
pub const SERVICE_CIDR: &str = "10.96.0.0/12";
/// The version the test server reports from `/version`.
pub const KUBERNETES_VERSION: &str = "v1.33.0";

/// A running API server on a free loopback port, its bearer token and a client using it.
pub struct TestApiServer {
    pub server: ApiServer,
    /// A client for the plain-HTTP URL, authenticated with `token`.
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
        // kube's TLS stack needs a process-wide provider; a second install fails harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let server = ApiServer::start(ApiServerConfig {
            bind: ([127, 0, 0, 1], 0).into(),
            token: token.clone(),
            service_cidr: SERVICE_CIDR.to_string(),
            kubernetes_version: KUBERNETES_VERSION.to_string(),
            nodes,
        })
        .await?;
        let client = client_for(&server.url(), Some(&token)).await?;
        Ok(TestApiServer {
            server,
            client,
            token,
        })
    }

    /// A kubeconfig for the HTTPS URL, trusting the server's CA, with the token: what kubectl
    /// needs (client-go sends a bearer token only over TLS).
    pub fn https_kubeconfig(&self) -> String {
        kubeconfig_yaml(
            &self.server.https_url(),
            Some(&self.token),
            Some(self.server.ca_certificate_pem()),
        )
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

/// A kube client for `url` with an optional bearer token (none: anonymous requests).
pub async fn client_for(url: &str, token: Option<&str>) -> anyhow::Result<kube::Client> {
    let kubeconfig = Kubeconfig::from_yaml(&kubeconfig_yaml(url, token, None))
        .context("parsing the test kubeconfig")?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}
