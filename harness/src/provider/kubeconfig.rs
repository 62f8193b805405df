//! Any cluster, through a kubeconfig: `--kubeconfig PATH`, or the kubeconfig kubectl would use
//! (`$KUBECONFIG`, a list of files merged the way kubectl merges them, else `~/.kube/config`).
//! Contexts are checked here so that a typo gets an answer naming the contexts there are,
//! not kube's bare "failed to load context".

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::facts::ClusterFacts;
use super::{ClusterKind, ClusterProvider, ConnectError};

/// Where the kubeconfig comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeconfigSource {
    /// One file, as `kubectl --kubeconfig PATH` reads it (`$KUBECONFIG` is then ignored).
    File(PathBuf),
    /// Files merged in order, the first to set a value winning (kubectl's `$KUBECONFIG` rules).
    Merged(Vec<PathBuf>),
}

impl KubeconfigSource {
    /// The kubeconfig kubectl uses without `--kubeconfig`: the files of `$KUBECONFIG`, or
    /// `~/.kube/config`.
    pub fn kubectl_default() -> Result<KubeconfigSource> {
        if let Some(value) = std::env::var_os("KUBECONFIG") {
            let paths: Vec<PathBuf> = std::env::split_paths(&value)
                .filter(|path| !path.as_os_str().is_empty())
                .collect();
            if !paths.is_empty() {
                return Ok(KubeconfigSource::Merged(paths));
            }
        }
        let home = std::env::home_dir().ok_or_else(|| {
            anyhow!("no --kubeconfig, no $KUBECONFIG and no home directory; pass --kubeconfig PATH")
        })?;
        Ok(KubeconfigSource::File(home.join(".kube").join("config")))
    }

    /// The file or files, for messages.
    pub fn describe(&self) -> String {
        match self {
            KubeconfigSource::File(path) => path.display().to_string(),
            KubeconfigSource::Merged(paths) => {
                let paths: Vec<String> = paths
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect();
                format!("$KUBECONFIG ({})", paths.join(":"))
            }
        }
    }

    /// Reads (and merges) the kubeconfig.
    pub fn read(&self) -> Result<Kubeconfig> {
        match self {
            KubeconfigSource::File(path) => read_file(path),
            KubeconfigSource::Merged(paths) => {
                paths
                    .iter()
                    .try_fold(Kubeconfig::default(), |merged, path| {
                        let next = read_file(path)?;
                        merged
                            .merge(next)
                            .with_context(|| format!("cannot merge kubeconfig {}", path.display()))
                    })
            }
        }
    }
}

fn read_file(path: &Path) -> Result<Kubeconfig> {
    if !path.exists() {
        return Err(anyhow!("kubeconfig {} does not exist", path.display()));
    }
    Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read kubeconfig {}", path.display()))
}

/// The context to use: `requested` if the kubeconfig has it, else its current context.
/// The errors name the contexts there are, which is what the user needs to fix the flag.
pub fn select_context(
    kubeconfig: &Kubeconfig,
    requested: Option<&str>,
    origin: &str,
) -> Result<String> {
    let names: Vec<&str> = kubeconfig
        .contexts
        .iter()
        .map(|context| context.name.as_str())
        .collect();
    let listed = if names.is_empty() {
        "it has no contexts".to_string()
    } else {
        format!("its contexts are: {}", names.join(", "))
    };
    let (name, how) = match (requested, kubeconfig.current_context.as_deref()) {
        (Some(name), _) => (name, "--context"),
        (None, Some(name)) if !name.is_empty() => (name, "its current-context"),
        (None, _) => {
            return Err(anyhow!(
                "kubeconfig {origin} has no current-context; pass --context NAME ({listed})"
            ));
        }
    };
    let Some(context) = kubeconfig
        .contexts
        .iter()
        .find(|context| context.name == name)
    else {
        return Err(anyhow!(
            "kubeconfig {origin} has no context {name:?} (named by {how}); {listed}"
        ));
    };
    let cluster = context
        .context
        .as_ref()
        .map(|context| context.cluster.as_str())
        .unwrap_or_default();
    if !kubeconfig
        .clusters
        .iter()
        .any(|named| named.name == cluster)
    {
        return Err(anyhow!(
            "context {name:?} of kubeconfig {origin} names cluster {cluster:?}, which the \
             kubeconfig does not define; fix the kubeconfig or pick another --context ({listed})"
        ));
    }
    Ok(name.to_string())
}

/// Points every cluster of `kubeconfig` at `https://host:port`. k3s writes its kubeconfig for
/// `https://127.0.0.1:6443` inside its container; from outside, the API server is wherever the
/// container engine mapped port 6443 to. Its certificate is valid for 127.0.0.1 and localhost.
pub fn point_servers_at(kubeconfig: &mut Kubeconfig, host: &str, port: u16) {
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    for named in &mut kubeconfig.clusters {
        if let Some(cluster) = named.cluster.as_mut() {
            cluster.server = Some(format!("https://{authority}"));
        }
    }
}

/// A client for `context` of `kubeconfig`, and the server URL it talks to (for messages).
/// Token, client-certificate, exec and auth-provider users all work: kube's loader handles them.
pub async fn client_for(
    kubeconfig: Kubeconfig,
    context: &str,
    origin: &str,
) -> Result<(Client, String)> {
    super::install_crypto_provider();
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .with_context(|| format!("cannot use context {context:?} of kubeconfig {origin}"))?;
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let client = Client::try_from(config).with_context(|| {
        format!("cannot build a client from context {context:?} of kubeconfig {origin}")
    })?;
    Ok((client, server))
}

/// A cluster someone else runs, reached through a kubeconfig. Nothing to create or destroy.
pub struct KubeconfigCluster {
    origin: String,
    context: String,
    server: String,
    kubeconfig: Kubeconfig,
    client: Client,
}

impl KubeconfigCluster {
    /// Reads the kubeconfig and builds a client for `context` (or the current context). Only
    /// usage errors can happen here (the cluster is first contacted by facts discovery).
    pub async fn connect(
        source: &KubeconfigSource,
        context: Option<&str>,
    ) -> Result<KubeconfigCluster, ConnectError> {
        let origin = source.describe();
        let kubeconfig = source.read().map_err(ConnectError::Config)?;
        let context =
            select_context(&kubeconfig, context, &origin).map_err(ConnectError::Config)?;
        let (client, server) = client_for(kubeconfig.clone(), &context, &origin)
            .await
            .map_err(ConnectError::Config)?;
        Ok(KubeconfigCluster {
            origin,
            context,
            server,
            kubeconfig,
            client,
        })
    }

    /// The API server URL of the chosen context.
    pub fn server(&self) -> &str {
        &self.server
    }
}

#[async_trait]
impl ClusterProvider for KubeconfigCluster {
    fn kind(&self) -> ClusterKind {
        ClusterKind::Kubeconfig
    }

    fn client(&self) -> Client {
        self.client.clone()
    }

    fn kubeconfig(&self) -> &Kubeconfig {
        &self.kubeconfig
    }

    fn context(&self) -> Option<&str> {
        Some(&self.context)
    }

    fn describe(&self, facts: &ClusterFacts) -> String {
        format!(
            "cluster {} at {} from kubeconfig {} (context {})",
            facts.server_version, self.server, self.origin, self.context
        )
    }

    async fn destroy(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two clusters, two contexts (one a token user, one a client-certificate user), and a
    /// current context that is not the first.
    fn two_context_kubeconfig(client_cert_pem: &str, client_key_pem: &str) -> String {
        use base64::Engine as _;
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: kind-labs
  cluster:
    server: https://127.0.0.1:40001
    insecure-skip-tls-verify: true
- name: cloud
  cluster:
    server: https://127.0.0.1:40002
    insecure-skip-tls-verify: true
users:
- name: token-user
  user:
    token: secret-token
- name: cert-user
  user:
    client-certificate-data: {}
    client-key-data: {}
contexts:
- name: kind-labs
  context:
    cluster: kind-labs
    user: cert-user
- name: cloud
  context:
    cluster: cloud
    user: token-user
    namespace: team
current-context: cloud
",
            encode(client_cert_pem),
            encode(client_key_pem)
        )
    }

    fn client_certificate() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["student".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write_temp(name: &str, text: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("k8s-labs-kubeconfig-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_current_context_is_used_unless_another_is_named() {
        let (cert, key) = client_certificate();
        let kubeconfig = Kubeconfig::from_yaml(&two_context_kubeconfig(&cert, &key)).unwrap();
        assert_eq!(select_context(&kubeconfig, None, "k").unwrap(), "cloud");
        assert_eq!(
            select_context(&kubeconfig, Some("kind-labs"), "k").unwrap(),
            "kind-labs"
        );
    }

    #[test]
    fn an_unknown_context_names_the_contexts_there_are() {
        let (cert, key) = client_certificate();
        let kubeconfig = Kubeconfig::from_yaml(&two_context_kubeconfig(&cert, &key)).unwrap();
        let error = select_context(&kubeconfig, Some("kind-lab"), "/tmp/k")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "kubeconfig /tmp/k has no context \"kind-lab\" (named by --context); its contexts \
             are: kind-labs, cloud"
        );
    }

    #[test]
    fn a_kubeconfig_without_current_context_asks_for_one() {
        let (cert, key) = client_certificate();
        let yaml = two_context_kubeconfig(&cert, &key).replace("current-context: cloud\n", "");
        let kubeconfig = Kubeconfig::from_yaml(&yaml).unwrap();
        let error = select_context(&kubeconfig, None, "k")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("has no current-context; pass --context NAME"),
            "{error}"
        );
        assert!(error.contains("kind-labs, cloud"), "{error}");
    }

    #[test]
    fn a_context_whose_cluster_is_missing_is_a_clear_error() {
        let (cert, key) = client_certificate();
        let yaml =
            two_context_kubeconfig(&cert, &key).replace("cluster: cloud\n", "cluster: gone\n");
        let kubeconfig = Kubeconfig::from_yaml(&yaml).unwrap();
        let error = select_context(&kubeconfig, None, "k")
            .unwrap_err()
            .to_string();
        assert!(error.contains("names cluster \"gone\""), "{error}");
    }

    #[tokio::test]
    async fn token_and_client_certificate_users_both_give_a_client() {
        let (cert, key) = client_certificate();
        let path = write_temp("auth", &two_context_kubeconfig(&cert, &key));
        let source = KubeconfigSource::File(path.clone());
        let token = KubeconfigCluster::connect(&source, None).await.unwrap();
        assert_eq!(token.context, "cloud");
        assert_eq!(token.server(), "https://127.0.0.1:40002");
        assert_eq!(token.client.default_namespace(), "team");
        let cert = KubeconfigCluster::connect(&source, Some("kind-labs"))
            .await
            .unwrap();
        assert_eq!(cert.server(), "https://127.0.0.1:40001");
        // The certificate is really loaded: a broken one is refused with the context named.
        let broken = write_temp(
            "broken-cert",
            &two_context_kubeconfig("not a certificate", "not a key"),
        );
        match KubeconfigCluster::connect(&KubeconfigSource::File(broken.clone()), Some("kind-labs"))
            .await
        {
            Err(ConnectError::Config(error)) => {
                assert!(
                    format!("{error:#}").contains("context \"kind-labs\""),
                    "{error:#}"
                )
            }
            other => panic!(
                "a broken client certificate was accepted: {:?}",
                other.err()
            ),
        }
        std::fs::remove_dir_all(broken.parent().unwrap()).unwrap();
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn a_missing_file_or_context_is_a_usage_error() {
        let missing = KubeconfigSource::File(PathBuf::from("/nonexistent/kubeconfig"));
        match KubeconfigCluster::connect(&missing, None).await {
            Err(ConnectError::Config(error)) => {
                assert_eq!(
                    error.to_string(),
                    "kubeconfig /nonexistent/kubeconfig does not exist"
                )
            }
            other => panic!("expected a usage error, got {:?}", other.err()),
        }
        let (cert, key) = client_certificate();
        let path = write_temp("missing-context", &two_context_kubeconfig(&cert, &key));
        let source = KubeconfigSource::File(path.clone());
        match KubeconfigCluster::connect(&source, Some("nope")).await {
            Err(ConnectError::Config(error)) => {
                assert!(error.to_string().contains("no context \"nope\""))
            }
            other => panic!("expected a usage error, got {:?}", other.err()),
        }
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn merged_kubeconfigs_keep_the_first_current_context() {
        let (cert, key) = client_certificate();
        let first = write_temp("merge-a", &two_context_kubeconfig(&cert, &key));
        let second_yaml = "apiVersion: v1
kind: Config
clusters:
- name: k3s
  cluster:
    server: https://127.0.0.1:40003
contexts:
- name: k3s
  context:
    cluster: k3s
current-context: k3s
";
        let second = write_temp("merge-b", second_yaml);
        let source = KubeconfigSource::Merged(vec![first.clone(), second.clone()]);
        let merged = source.read().unwrap();
        assert_eq!(merged.current_context.as_deref(), Some("cloud"));
        assert_eq!(select_context(&merged, Some("k3s"), "m").unwrap(), "k3s");
        assert!(source.describe().starts_with("$KUBECONFIG ("));
        for path in [first, second] {
            std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        }
    }

    #[test]
    fn k3s_servers_are_rewritten_to_the_mapped_port() {
        let mut kubeconfig = Kubeconfig::from_yaml(
            "apiVersion: v1
kind: Config
clusters:
- name: default
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: Zm9v
contexts:
- name: default
  context:
    cluster: default
    user: default
current-context: default
users:
- name: default
  user:
    token: t
",
        )
        .unwrap();
        point_servers_at(&mut kubeconfig, "localhost", 32768);
        let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:32768"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Zm9v"));
        point_servers_at(&mut kubeconfig, "::1", 40000);
        let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://[::1]:40000"));
    }
}
