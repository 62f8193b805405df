//! An ephemeral k3s in a container (testcontainers-modules' K3s): privileged, as k3s runs its
//! own containerd and cgroups inside; its kubeconfig read from the container and pointed at the
//! port the engine mapped 6443 to; removed on [`ClusterProvider::destroy`], and on drop (a run
//! stopped by Ctrl-C drops the provider, or the half-started container, on its way out).

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use kube::Client;
use kube::config::Kubeconfig;
use testcontainers::ContainerAsync;
use testcontainers::core::{ExecCommand, ImageExt};
use testcontainers::runners::AsyncRunner;
use testcontainers_modules::k3s::{K3s, KUBE_SECURE_PORT};

use super::engine::{EngineEnv, require_engine};
use super::facts::ClusterFacts;
use super::kubeconfig::{client_for, point_servers_at, select_context};
use super::version::KubernetesVersion;
use super::{ClusterKind, ClusterProvider, ConnectError};

/// The image k3s is published as.
pub const K3S_IMAGE: &str = "rancher/k3s";

/// The k3s tag for each supported minor version, when `--k8s-version` names no patch: the
/// newest patch release seen published for that minor (update with new k3s releases).
pub const K3S_TAGS: [(u32, &str); 5] = [
    (33, "v1.33.11-k3s1"),
    (34, "v1.34.9-k3s1"),
    (35, "v1.35.8-k3s1"),
    (36, "v1.36.4-k3s1"),
    (37, "v1.37.1-k3s1"),
];

/// Where k3s writes its kubeconfig inside the container.
const KUBECONFIG_IN_CONTAINER: &str = "/etc/rancher/k3s/k3s.yaml";

/// How long the container may take to start, including pulling the image on a slow link.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(600);

/// The `rancher/k3s` tag for `version`: `v1.33.4` → `v1.33.4-k3s1`; `v1.33` → the pinned
/// patch of [`K3S_TAGS`]. One line of error for versions the labs or the table do not cover.
pub fn k3s_tag(version: KubernetesVersion) -> Result<String, String> {
    version.check_supported()?;
    if let Some(patch) = version.patch {
        return Ok(format!("v{}.{}.{patch}-k3s1", version.major, version.minor));
    }
    K3S_TAGS
        .iter()
        .find(|(minor, _)| *minor == version.minor)
        .map(|(_, tag)| tag.to_string())
        .ok_or_else(|| {
            let known: Vec<String> = K3S_TAGS
                .iter()
                .map(|(minor, _)| format!("v1.{minor}"))
                .collect();
            format!(
                "no k3s release is pinned for {version}; pass a full version (e.g. {version}.0, \
                 run as {K3S_IMAGE}:{version}.0-k3s1) or one of {}",
                known.join(", ")
            )
        })
}

/// A k3s server running in a container, and a client for it.
pub struct K3sProvider {
    tag: String,
    kubeconfig: Kubeconfig,
    client: Client,
    /// `None` once destroyed.
    container: Option<ContainerAsync<K3s>>,
}

impl K3sProvider {
    /// Checks the engine, starts `rancher/k3s:<tag>` and connects. Usage problems (a version
    /// without k3s release, no engine) are [`ConnectError::Config`]; a container that does not
    /// start or answer is [`ConnectError::Cluster`].
    pub async fn create(
        version: KubernetesVersion,
        env: &EngineEnv,
    ) -> Result<K3sProvider, ConnectError> {
        let tag = k3s_tag(version).map_err(|message| ConnectError::Config(anyhow!(message)))?;
        let endpoint = require_engine(env)
            .await
            .map_err(|message| ConnectError::Config(anyhow!(message)))?;
        tracing::info!("starting {K3S_IMAGE}:{tag} on the engine at {endpoint}");
        let container = K3s::default()
            .with_tag(tag.clone())
            .with_privileged(true)
            .with_userns_mode("host")
            .with_label("dev.k8s-labs.cluster", "k3s")
            .with_startup_timeout(STARTUP_TIMEOUT)
            .start()
            .await
            .with_context(|| format!("{K3S_IMAGE}:{tag} did not start on the engine at {endpoint}"))
            .map_err(ConnectError::Cluster)?;
        // From here on, an early return drops `container`, which removes it.
        let (kubeconfig, client) = connect(&container, &tag)
            .await
            .map_err(ConnectError::Cluster)?;
        Ok(K3sProvider {
            tag,
            kubeconfig,
            client,
            container: Some(container),
        })
    }

    /// The image tag that runs, e.g. `v1.33.11-k3s1`.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// Reads k3s's kubeconfig out of the container and points it at the mapped API port.
async fn connect(container: &ContainerAsync<K3s>, tag: &str) -> Result<(Kubeconfig, Client)> {
    let yaml = read_kubeconfig(container).await?;
    let mut kubeconfig = Kubeconfig::from_yaml(&yaml)
        .with_context(|| format!("k3s {tag} wrote a kubeconfig kube cannot read"))?;
    let host = container
        .get_host()
        .await
        .context("cannot tell where the engine publishes container ports")?
        .to_string();
    let port = container
        .get_host_port_ipv4(KUBE_SECURE_PORT)
        .await
        .context("the engine did not publish the k3s API port 6443")?;
    point_servers_at(&mut kubeconfig, &host, port);
    let origin = format!("of {K3S_IMAGE}:{tag}");
    let context = select_context(&kubeconfig, None, &origin)?;
    let (client, _) = client_for(kubeconfig.clone(), &context, &origin).await?;
    Ok((kubeconfig, client))
}

/// `cat`s the kubeconfig inside the container (so it works with a remote engine, where a bind
/// mount would land on another machine). k3s writes it early in its start, before it is ready.
async fn read_kubeconfig(container: &ContainerAsync<K3s>) -> Result<String> {
    let mut exec = container
        .exec(ExecCommand::new(["cat", KUBECONFIG_IN_CONTAINER]))
        .await
        .context("cannot exec in the k3s container")?;
    let stdout = exec
        .stdout_to_vec()
        .await
        .context("reading the k3s kubeconfig")?;
    let yaml = String::from_utf8(stdout).context("the k3s kubeconfig is not UTF-8")?;
    if yaml.trim().is_empty() {
        let stderr = exec.stderr_to_vec().await.unwrap_or_default();
        return Err(anyhow!(
            "k3s wrote no kubeconfig at {KUBECONFIG_IN_CONTAINER}: {}",
            String::from_utf8_lossy(&stderr).trim()
        ));
    }
    Ok(yaml)
}

#[async_trait]
impl ClusterProvider for K3sProvider {
    fn kind(&self) -> ClusterKind {
        ClusterKind::K3s
    }

    fn client(&self) -> Client {
        self.client.clone()
    }

    fn kubeconfig(&self) -> &Kubeconfig {
        &self.kubeconfig
    }

    fn describe(&self, facts: &ClusterFacts) -> String {
        format!(
            "k3s cluster {} ({K3S_IMAGE}:{}, removed at the end)",
            facts.server_version, self.tag
        )
    }

    async fn export_logs(
        &self,
        dir: &std::path::Path,
        namespaces: &[&str],
    ) -> Result<Vec<std::path::PathBuf>> {
        let mut written = super::export::export_namespaces(&self.client, dir, namespaces).await?;
        if let Some(container) = &self.container {
            // k3s logs to stderr; the server's own log says why a pod never started.
            let mut text = container.stderr_to_vec().await.unwrap_or_default();
            text.extend(container.stdout_to_vec().await.unwrap_or_default());
            let path = dir.join("k3s-server.log");
            tokio::fs::write(&path, text)
                .await
                .with_context(|| format!("cannot write {}", path.display()))?;
            written.push(path);
        }
        Ok(written)
    }

    async fn destroy(mut self: Box<Self>) -> Result<()> {
        match self.container.take() {
            Some(container) => container
                .rm()
                .await
                .with_context(|| format!("cannot remove the {K3S_IMAGE}:{} container", self.tag)),
            None => Ok(()),
        }
    }
}

impl Drop for K3sProvider {
    fn drop(&mut self) {
        let Some(container) = self.container.take() else {
            return;
        };
        // testcontainers removes a dropped container from within a tokio runtime; outside
        // one (a provider dropped after its runtime), give it a small one to do so.
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(container);
        } else {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(async move { drop(container) }),
                Err(error) => tracing::warn!(
                    "cannot remove the k3s container {}: {error}; remove it with docker rm -f",
                    container.id()
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> KubernetesVersion {
        text.parse().unwrap()
    }

    #[test]
    fn k3s_tags_follow_the_requested_version() {
        assert_eq!(k3s_tag(version("v1.33")).unwrap(), "v1.33.11-k3s1");
        assert_eq!(k3s_tag(version("v1.37")).unwrap(), "v1.37.1-k3s1");
        assert_eq!(k3s_tag(version("v1.34.2")).unwrap(), "v1.34.2-k3s1");
        assert_eq!(
            k3s_tag(KubernetesVersion::DEFAULT).unwrap(),
            "v1.33.11-k3s1"
        );
    }

    #[test]
    fn versions_without_a_pinned_k3s_say_what_to_pass() {
        let error = k3s_tag(version("v1.40")).unwrap_err();
        assert!(
            error.contains("no k3s release is pinned for v1.40"),
            "{error}"
        );
        assert!(error.contains("v1.40.0"), "{error}");
        assert!(
            error.contains("v1.33, v1.34, v1.35, v1.36, v1.37"),
            "{error}"
        );
        assert!(
            k3s_tag(version("v1.32"))
                .unwrap_err()
                .contains("older than the labs support")
        );
    }

    #[tokio::test]
    async fn without_an_engine_k3s_fails_before_pulling_anything() {
        let env = EngineEnv {
            docker_host: Some("unix:///nonexistent/docker.sock".to_string()),
            ..Default::default()
        };
        match K3sProvider::create(KubernetesVersion::DEFAULT, &env).await {
            Err(ConnectError::Config(error)) => {
                let line = error.to_string();
                assert!(
                    line.starts_with("--cluster k3s needs a Docker-compatible engine"),
                    "{line}"
                );
                assert!(line.contains("--kubeconfig PATH"), "{line}");
            }
            Err(other) => panic!("expected a usage error, got {other}"),
            Ok(_) => panic!("k3s started without an engine"),
        }
    }

    #[tokio::test]
    #[ignore = "needs a Docker engine; runs in the GitHub kind/k3s matrix"]
    async fn k3s_starts_answers_and_is_removed() {
        let provider = K3sProvider::create(KubernetesVersion::DEFAULT, &EngineEnv::from_process())
            .await
            .unwrap();
        let facts = super::super::discover_facts(&provider.client())
            .await
            .unwrap();
        assert!(
            facts.server_version.starts_with("v1.33."),
            "{}",
            facts.server_version
        );
        assert_eq!(facts.dns_service_name.as_deref(), Some("kube-dns"));
        assert_eq!(facts.default_storage_class.as_deref(), Some("local-path"));
        Box::new(provider).destroy().await.unwrap();
    }
}
