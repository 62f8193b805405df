//! The kubeconfig that kube-rs and kubectl use to reach the embedded API server.

use std::path::Path;

use anyhow::{Context, Result};
use rand::Rng;

/// The context, cluster and user name in the kubeconfig, so `kubectl config get-contexts`
/// says which cluster this is.
pub const CONTEXT_NAME: &str = "k8s-labs-embedded";

/// A bearer token nobody can guess: the API server answers 401 without it, so another local
/// user cannot drive the cluster (which runs as root) through the loopback port.
pub fn random_token() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Renders a kubeconfig for `server` (HTTPS: client-go sends a bearer token only over TLS)
/// trusting `ca_pem`, with `token`, and the namespace `default` as kubectl expects.
pub fn render(server: &str, ca_pem: &str, token: &str) -> String {
    use base64::Engine as _;
    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {CONTEXT_NAME}
  cluster:
    server: {server}
    certificate-authority-data: {ca_data}
users:
- name: {CONTEXT_NAME}
  user:
    token: {token}
contexts:
- name: {CONTEXT_NAME}
  context:
    cluster: {CONTEXT_NAME}
    user: {CONTEXT_NAME}
    namespace: default
current-context: {CONTEXT_NAME}
preferences: {{}}
"
    )
}

/// Writes the kubeconfig readable by its owner only (it holds the token).
pub fn write(path: &Path, yaml: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing the kubeconfig to {}", path.display()))?;
    file.write_all(yaml.as_bytes())
        .with_context(|| format!("writing the kubeconfig to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_kubeconfig_is_read_back_by_kube() {
        let yaml = render(
            "https://127.0.0.1:6443",
            "-----BEGIN CERTIFICATE-----",
            "abc123",
        );
        let config = kube::config::Kubeconfig::from_yaml(&yaml).expect("kube reads it");
        assert_eq!(config.current_context.as_deref(), Some(CONTEXT_NAME));
        let cluster = config.clusters[0].cluster.as_ref().expect("cluster entry");
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(
            cluster.certificate_authority_data.as_deref(),
            Some("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t")
        );
    }

    #[test]
    fn tokens_differ_and_are_long() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 48);
    }
}
