//! Starts a real API server on a free port and a kube-rs client for it.
#![allow(dead_code)]

use k8s_labs_apiserver::{ApiServer, ApiServerConfig};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

pub const TOKEN: &str = "test-token-123";

pub async fn start() -> ApiServer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    ApiServer::start(ApiServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        token: TOKEN.to_string(),
        service_cidr: "10.96.0.0/12".to_string(),
        kubernetes_version: "v1.33.0".to_string(),
        nodes: Default::default(),
    })
    .await
    .unwrap()
}

/// A kubeconfig for `url`; with `ca_pem` the cluster entry trusts that CA (for https).
pub fn kubeconfig_yaml_with_ca(url: &str, token: Option<&str>, ca_pem: &str) -> String {
    let mut yaml = kubeconfig_yaml(url, token);
    let ca = base64(ca_pem.as_bytes());
    yaml = yaml.replace(
        &format!("    server: {url}\n"),
        &format!("    server: {url}\n    certificate-authority-data: {ca}\n"),
    );
    yaml
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn kubeconfig_yaml(url: &str, token: Option<&str>) -> String {
    let user = match token {
        Some(token) => format!("    token: {token}\n"),
        None => "    {}\n".to_string(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\nusers:\n- name: test\n  user:\n{user}"
    )
}

pub async fn client_with(url: &str, token: Option<&str>) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&kubeconfig_yaml(url, token)).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

pub async fn client(server: &ApiServer) -> Client {
    client_with(&server.url(), Some(TOKEN)).await
}
