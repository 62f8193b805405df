//! An ephemeral kind cluster (`--cluster kind`): created with the `kind` binary on PATH (Docker,
//! or podman through kind's own `KIND_EXPERIMENTAL_PROVIDER=podman`) from the node image pinned
//! for the Kubernetes version ([`super::kind_nodes`]), under a name unique to this run, with its
//! kubeconfig in a file of its own (never merged into `~/.kube/config`); deleted on
//! [`ClusterProvider::destroy`], and on drop: a run stopped by a failed start, Ctrl-C or SIGTERM
//! drops the provider, or the half-created cluster's guard, on its way out.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use kube::Client;
use kube::config::Kubeconfig;

use super::facts::ClusterFacts;
use super::kind_nodes::{KindNode, KindRelease, kind_node_for};
use super::kubeconfig::{client_for, select_context};
use super::version::KubernetesVersion;
use super::{ClusterKind, ClusterProvider, ConnectError};

/// How long `kind create cluster --wait` waits for the control plane to be Ready.
pub const CREATE_WAIT: &str = "5m";

/// Where kind is looked for (captured, so tests need not change the process's PATH).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindEnv {
    /// `PATH`, searched for an executable `kind`.
    pub path: Option<OsString>,
}

impl KindEnv {
    /// This process's environment.
    pub fn from_process() -> KindEnv {
        KindEnv {
            path: std::env::var_os("PATH"),
        }
    }

    /// The first executable `kind` on [`KindEnv::path`].
    pub fn find_kind(&self) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path.as_ref()?;
        std::env::split_paths(path)
            .map(|dir| dir.join("kind"))
            .find(|candidate| {
                std::fs::metadata(candidate)
                    .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            })
    }
}

/// The one line for "no kind on PATH": what is missing, how to install it, the alternatives.
fn no_kind(node: &KindNode) -> String {
    format!(
        "--cluster kind needs the `kind` binary on PATH, and none was found; install kind {} \
         or newer (https://kind.sigs.k8s.io/docs/user/quick-start/#installation, e.g. `go \
         install sigs.k8s.io/kind@{}`), or run on an existing cluster with --kubeconfig PATH, \
         or leave out --cluster to use the embedded cluster",
        node.kind, node.kind
    )
}

/// The one line for a kind older than the one that published the node image.
fn kind_too_old(found: KindRelease, node: &KindNode, version: KubernetesVersion) -> String {
    format!(
        "kind {found} on PATH is older than kind {}, which published the node image for \
         Kubernetes {version} ({}); install kind {} or newer, or pass an older --k8s-version",
        node.kind, node.image, node.kind
    )
}

/// The release of the kind binary at `binary` (`kind version`).
async fn kind_release(binary: &Path) -> Result<KindRelease, String> {
    let output = tokio::process::Command::new(binary)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|error| format!("cannot run {} version: {error}", binary.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    match KindRelease::from_version_output(&text) {
        Some(release) if output.status.success() => Ok(release),
        _ => Err(format!(
            "cannot tell the release of {}: `kind version` printed {:?} ({}); reinstall kind",
            binary.display(),
            text.trim(),
            output.status
        )),
    }
}

/// A name no other run on this machine uses: `k8s-labs-<pid>-<time>`, lowercase as kind wants.
fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("k8s-labs-{}-{:05x}", std::process::id(), nanos & 0xfffff)
}

/// The `kind` arguments that create cluster `name` from `image`, waiting until it is Ready.
pub fn create_args(name: &str, image: &str, kubeconfig: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["create", "cluster", "--name", name, "--image", image]
        .into_iter()
        .map(OsString::from)
        .collect();
    args.extend(["--wait".into(), CREATE_WAIT.into(), "--kubeconfig".into()]);
    args.push(kubeconfig.as_os_str().to_owned());
    args
}

/// The `kind` arguments that delete cluster `name` (and its entry in `kubeconfig`).
pub fn delete_args(name: &str, kubeconfig: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["delete", "cluster", "--name", name, "--kubeconfig"]
        .into_iter()
        .map(OsString::from)
        .collect();
    args.push(kubeconfig.as_os_str().to_owned());
    args
}

/// A kind cluster this run created (or began to): deleted when dropped unless disarmed, so no
/// way out of a run — an error, a panic, a signal that drops the start — leaves it behind.
#[derive(Debug)]
struct ClusterGuard {
    binary: PathBuf,
    name: String,
    /// The directory of the cluster's kubeconfig, removed with the cluster.
    dir: PathBuf,
    armed: bool,
}

impl ClusterGuard {
    fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// Deletes the cluster now; the guard is disarmed whatever the outcome.
    async fn delete(&mut self) -> Result<()> {
        self.armed = false;
        let status = tokio::process::Command::new(&self.binary)
            .args(delete_args(&self.name, &self.kubeconfig_path()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .await
            .with_context(|| format!("cannot run {}", self.binary.display()))?;
        let _ = std::fs::remove_dir_all(&self.dir);
        if !status.success() {
            return Err(anyhow!(
                "`kind delete cluster --name {}` failed ({status}); delete it by hand",
                self.name
            ));
        }
        Ok(())
    }
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Synchronous: a drop cannot await, and the process may be on its way out.
        let status = std::process::Command::new(&self.binary)
            .args(delete_args(&self.name, &self.kubeconfig_path()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
        if !status.is_ok_and(|status| status.success()) {
            tracing::warn!(
                "could not delete kind cluster {}; run `kind delete cluster --name {}`",
                self.name,
                self.name
            );
        }
    }
}

/// A kind cluster created for this run, and a client for it.
pub struct KindProvider {
    image: String,
    kubeconfig: Kubeconfig,
    client: Client,
    keep: AtomicBool,
    guard: Mutex<Option<ClusterGuard>>,
    name: String,
    kubeconfig_path: PathBuf,
}

impl KindProvider {
    /// Finds kind, checks its release against the node image's, creates the cluster and
    /// connects. Usage problems (no kind, too old, an unpinned version) are
    /// [`ConnectError::Config`]; a cluster that does not come up is [`ConnectError::Cluster`].
    pub async fn create(
        version: KubernetesVersion,
        env: &KindEnv,
    ) -> Result<KindProvider, ConnectError> {
        let config = |message: String| ConnectError::Config(anyhow!(message));
        let node = kind_node_for(version).map_err(config)?;
        let binary = env.find_kind().ok_or_else(|| config(no_kind(&node)))?;
        let found = kind_release(&binary).await.map_err(config)?;
        let needed = node
            .kind_release()
            .ok_or_else(|| config(format!("the kind table names no release: {node:?}")))?;
        if !found.supports(needed) {
            return Err(config(kind_too_old(found, &node, version)));
        }
        let name = unique_name();
        let dir = std::env::temp_dir().join(format!("{name}.kind"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))
            .map_err(ConnectError::Cluster)?;
        // Armed before kind runs: a start cut off half-way still deletes what kind made.
        let guard = ClusterGuard {
            binary: binary.clone(),
            name: name.clone(),
            dir,
            armed: true,
        };
        let kubeconfig_path = guard.kubeconfig_path();
        tracing::info!("creating kind cluster {name} from {}", node.image);
        let status = tokio::process::Command::new(&binary)
            .args(create_args(&name, &node.image, &kubeconfig_path))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .with_context(|| format!("cannot run {}", binary.display()))
            .map_err(ConnectError::Cluster)?;
        if !status.success() {
            return Err(ConnectError::Cluster(anyhow!(
                "`kind create cluster --name {name} --image {}` failed ({status}); kind's \
                 output above says why",
                node.image
            )));
        }
        let (kubeconfig, client) = connect(&kubeconfig_path, &name)
            .await
            .map_err(ConnectError::Cluster)?;
        Ok(KindProvider {
            image: node.image,
            kubeconfig,
            client,
            keep: AtomicBool::new(false),
            guard: Mutex::new(Some(guard)),
            name,
            kubeconfig_path,
        })
    }

    /// The cluster's name, as `kind get clusters` lists it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Reads the kubeconfig kind wrote (its current context is `kind-<name>`) and connects.
async fn connect(path: &Path, name: &str) -> Result<(Kubeconfig, Client)> {
    let kubeconfig = Kubeconfig::read_from(path)
        .with_context(|| format!("kind wrote no usable kubeconfig at {}", path.display()))?;
    let origin = format!("of kind cluster {name}");
    let context = select_context(&kubeconfig, None, &origin)?;
    let (client, _) = client_for(kubeconfig.clone(), &context, &origin).await?;
    Ok((kubeconfig, client))
}

#[async_trait]
impl ClusterProvider for KindProvider {
    fn kind(&self) -> ClusterKind {
        ClusterKind::Kind
    }

    fn client(&self) -> Client {
        self.client.clone()
    }

    fn kubeconfig(&self) -> &Kubeconfig {
        &self.kubeconfig
    }

    fn describe(&self, facts: &ClusterFacts) -> String {
        format!(
            "kind cluster {} {} ({}, deleted at the end)",
            self.name, facts.server_version, self.image
        )
    }

    fn keep_for_inspection(&self) -> Option<String> {
        self.keep.store(true, Ordering::SeqCst);
        Some(format!(
            "the kind cluster {name} stays up for inspection: export KUBECONFIG={path}; delete \
             it with `kind delete cluster --name {name}`",
            name = self.name,
            path = self.kubeconfig_path.display()
        ))
    }

    async fn destroy(self: Box<Self>) -> Result<()> {
        let guard = self
            .guard
            .lock()
            .map_err(|_| anyhow!("the kind cluster's guard was poisoned"))?
            .take();
        let Some(mut guard) = guard else {
            return Ok(());
        };
        if self.keep.load(Ordering::SeqCst) {
            guard.armed = false;
            return Ok(());
        }
        guard.delete().await
    }
}

#[cfg(test)]
mod tests;
