//! Starting one attempt of a pod's container, the way the kubelet asks a CRI runtime to: image
//! from the catalog, bundle, `runc run`, output to the container's log file, and a record that
//! exec, logs and attach find it by.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::sync::{oneshot, watch};

use crate::cgroups::{ContainerCgroup, ContainerLimits};
pub use crate::container_exit::ExitInfo;
pub use crate::container_io::{ContainerInput, ContainerOutput, OutputStream};
use crate::container_io::{OutputSink, pump_pipe, pump_terminal};
use crate::container_stop::StopTarget;
use crate::image_user::ImageUser;
use crate::images::RunnableImage;
use crate::oci_spec::{BindMount, ContainerSpec};
use crate::runtime::{
    Bundle, ContainerStdio, Runc, StartError, StartedContainer, remove_bundle, remove_bundle_dir,
};
use crate::sandbox::{PodIdentity, PodSandbox};
use crate::security_context::process_security;
use crate::sub_path::mount_sub_path;
use crate::terminal::{ProcessHandle, TerminalMaster, open_terminal};

/// The key exec, logs and attach find a container by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerKey {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container's name.
    pub container: String,
}

/// What the node knows of the current attempt of a container, for exec, logs and attach.
#[derive(Debug, Clone)]
pub struct ContainerRecord {
    pub runc_id: String,
    pub log_path: PathBuf,
    /// The log of the attempt before (`kubectl logs --previous`).
    pub previous_log_path: Option<PathBuf>,
    /// `true` while the process runs.
    pub running: watch::Receiver<bool>,
    /// The process's stdin, when the container has `stdin: true`.
    pub stdin: Option<ContainerInput>,
    /// The container's terminal, when it has `tty: true` (attach resizes it).
    pub terminal: Option<TerminalMaster>,
    /// Whether the container's stdin closes when the first attached client detaches.
    pub stdin_once: bool,
    /// The output attach sessions receive.
    pub output: ContainerOutput,
    /// How the process ended, once it has.
    pub exit: watch::Receiver<Option<ExitInfo>>,
    /// Where this attempt's CPU and memory usage is read (see [`crate::metrics`]).
    pub usage: Option<crate::cgroups::UsageFiles>,
}

/// The containers of this node, by pod and container name.
#[derive(Debug, Default)]
pub struct ContainerRegistry(Mutex<HashMap<ContainerKey, ContainerRecord>>);

impl ContainerRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ContainerKey, ContainerRecord>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The container `key` names, if this node has it.
    pub fn get(&self, key: &ContainerKey) -> Option<ContainerRecord> {
        self.lock().get(key).cloned()
    }

    /// Whether any container of the pod is known.
    pub fn has_pod(&self, namespace: &str, pod: &str) -> bool {
        self.lock()
            .keys()
            .any(|key| key.namespace == namespace && key.pod == pod)
    }

    fn insert(&self, key: ContainerKey, record: ContainerRecord) {
        self.lock().insert(key, record);
    }

    fn previous_log(&self, key: &ContainerKey) -> Option<PathBuf> {
        self.lock().get(key).map(|record| record.log_path.clone())
    }

    /// Every container the node knows, with its current attempt.
    pub fn all(&self) -> Vec<(ContainerKey, ContainerRecord)> {
        self.lock()
            .iter()
            .map(|(key, record)| (key.clone(), record.clone()))
            .collect()
    }

    /// Forgets the containers of a pod (it is being torn down).
    pub fn remove_pod(&self, namespace: &str, pod: &str) {
        self.lock()
            .retain(|key, _| !(key.namespace == namespace && key.pod == pod));
    }
}

/// One attempt of a container that has started.
#[derive(Debug)]
pub struct RunningContainer {
    /// The container's id in runc.
    pub runc_id: String,
    /// The host pid of the container's process.
    pub pid: i32,
    /// When the process started (`state.running.startedAt` of its status).
    pub started_at: jiff::Timestamp,
    /// Resolves when the process has ended and its output is in the log.
    pub exit: oneshot::Receiver<ExitInfo>,
    /// The same end, for whoever else waits for it (stopping the container).
    pub ended: watch::Receiver<Option<ExitInfo>>,
}

impl RunningContainer {
    /// What stopping this container needs.
    pub fn stop_target(&self) -> StopTarget {
        StopTarget {
            runc_id: self.runc_id.clone(),
            pid: self.pid,
            exit: self.ended.clone(),
        }
    }
}

/// What a container attempt is started from.
pub struct ContainerLaunch<'a> {
    /// The pod's names.
    pub identity: &'a PodIdentity,
    /// The pod (its security context and host namespaces).
    pub pod: &'a Pod,
    /// The pod's sandbox, which the container joins.
    pub sandbox: &'a PodSandbox,
    /// The container of the pod's spec.
    pub container: &'a Container,
    /// The image: its layers are the read-only lower layers of the container's root.
    pub image: &'a RunnableImage,
    /// The attempt number (the restart count), part of the runc id and the log name.
    pub attempt: i32,
    /// Environment variables the kubelet adds (resolved `valueFrom`, service variables).
    pub extra_env: Vec<(String, String)>,
}

/// The runc id of an attempt: unique within the node's runc root.
pub fn runc_id(identity: &PodIdentity, container: &str, attempt: i32) -> String {
    let uid: String = identity
        .uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!("{}-{uid}-{container}-{attempt}", identity.name)
}

/// The bundle directory of a container attempt (see [`Runc::create_bundle`]), in its pod's
/// sandbox directory.
pub fn bundle_dir(sandbox_dir: &Path, runc_id: &str) -> PathBuf {
    sandbox_dir.join("containers").join(runc_id)
}

/// Where the logs of every attempt of a container are kept, in its pod's sandbox directory.
pub fn log_dir(sandbox_dir: &Path, container: &str) -> PathBuf {
    sandbox_dir.join("logs").join(container)
}

/// The environment: the image's, then the kubelet's additions, then the container's own
/// (a later entry of the same name replaces an earlier one).
fn environment(launch: &ContainerLaunch<'_>) -> Vec<String> {
    let mut env = launch.image.env();
    env.push(("HOSTNAME".to_string(), launch.sandbox.hostname.clone()));
    if launch.container.tty.unwrap_or(false) {
        // containerd's `WithTTY`: a container on a terminal is told what terminal it is.
        env.push(("TERM".to_string(), "xterm".to_string()));
    }
    env.extend(launch.extra_env.iter().cloned());
    for var in launch.container.env.iter().flatten() {
        if let Some(value) = &var.value {
            env.push((var.name.clone(), value.clone()));
        } else if var.value_from.is_none() {
            env.push((var.name.clone(), String::new()));
        }
    }
    let mut merged: Vec<(String, String)> = Vec::new();
    for (name, value) in env {
        match merged.iter_mut().find(|(existing, _)| *existing == name) {
            Some(slot) => slot.1 = value,
            None => merged.push((name, value)),
        }
    }
    merged
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

/// The container's bind mounts; subPath mounts are prepared under `bundle_dir` (see
/// [`crate::sub_path`]), and a subPath that cannot be is a configuration error.
fn mounts(launch: &ContainerLaunch<'_>, bundle_dir: &Path) -> Result<Vec<BindMount>, StartError> {
    let sandbox = launch.sandbox;
    let mut mounts = vec![
        bind(&sandbox.hosts_file, "/etc/hosts", false),
        bind(&sandbox.resolv_conf, "/etc/resolv.conf", false),
        bind(&sandbox.hostname_file, "/etc/hostname", false),
    ];
    for (index, volume_mount) in launch.container.volume_mounts.iter().flatten().enumerate() {
        let source = sandbox.volumes.get(&volume_mount.name).with_context(|| {
            format!(
                "volume mount {}: the pod has no volume {:?}",
                volume_mount.mount_path, volume_mount.name
            )
        })?;
        let source = match volume_mount
            .sub_path
            .as_deref()
            .filter(|sub| !sub.is_empty())
        {
            Some(sub_path) => {
                let mount_point = bundle_dir.join("subpaths").join(index.to_string());
                if let Err(error) = mount_sub_path(source, sub_path, &mount_point) {
                    // The kubelet's message; the reason goes to the node's log.
                    tracing::warn!("subPath of {}: {error:#}", launch.identity.name);
                    return Err(StartError::Config(format!(
                        "failed to prepare subPath for volumeMount {:?} of container {:?}: {error:#}",
                        volume_mount.name, launch.container.name
                    )));
                }
                mount_point
            }
            None => source.clone(),
        };
        mounts.push(bind(
            &source,
            &volume_mount.mount_path,
            volume_mount.read_only.unwrap_or(false)
                || sandbox.read_only_volumes.contains(&volume_mount.name),
        ));
    }
    Ok(mounts)
}

/// The size of a container's `/tmp` when its memory is not limited below it. Kubernetes keeps
/// `/tmp` on the writable layer; here it is a tmpfs (runc's and Docker's habit, and fast), and
/// an unbounded tmpfs could take half of the machine's memory.
pub const DEFAULT_TMP_SIZE: u64 = 64 << 20;

/// `size=` of a container's `/tmp`: [`DEFAULT_TMP_SIZE`], or the container's memory limit when
/// that is smaller. tmpfs pages count against the memory limit anyway; the smaller size makes
/// a full `/tmp` fail a write with ENOSPC instead of an OOM kill.
pub fn tmp_size(limits: &ContainerLimits) -> u64 {
    limits
        .memory_bytes
        .map_or(DEFAULT_TMP_SIZE, |memory| memory.min(DEFAULT_TMP_SIZE))
}

fn bind(source: &std::path::Path, destination: &str, read_only: bool) -> BindMount {
    BindMount {
        source: source.to_path_buf(),
        destination: destination.to_string(),
        read_only,
    }
}

/// Starts one attempt of a container and registers it. Returns once its process has started;
/// a container that could not start is an error (its bundle is already removed).
pub async fn start_container(
    runc: &Runc,
    registry: &ContainerRegistry,
    launch: ContainerLaunch<'_>,
) -> Result<RunningContainer, StartError> {
    let image_user =
        ImageUser::resolve(&launch.image.config.user, &launch.image.layers).map_err(|error| {
            StartError::Config(format!("failed to resolve the image's user: {error}"))
        })?;
    let security =
        process_security(launch.pod, launch.container, &image_user).map_err(StartError::Config)?;
    let id = runc_id(launch.identity, &launch.container.name, launch.attempt);
    let bundle_dir = bundle_dir(&launch.sandbox.dir, &id);
    let log_path = log_dir(&launch.sandbox.dir, &launch.container.name)
        .join(format!("{}.log", launch.attempt));
    if let Some(parent) = log_path.parent() {
        std::fs::create_dir_all(parent).context("creating the log directory")?;
    }
    let (stdio, terminal) = stdio_of(launch.container)?;
    let limits = ContainerLimits::of(launch.container);
    let cgroup = launch
        .sandbox
        .cgroup
        .create_container(&id, &limits)
        .context("creating the container's cgroup")?;
    let mounts = match mounts(&launch, &bundle_dir) {
        Ok(mounts) => mounts,
        Err(error) => {
            let _ = remove_bundle_dir(&bundle_dir);
            cgroup.finish();
            return Err(error);
        }
    };
    let spec = ContainerSpec {
        cgroups_path: Some(cgroup.runc_path()),
        user_namespace: launch
            .sandbox
            .user_namespace
            .as_ref()
            .map(|userns| (userns.path.clone(), userns.mapping())),
        args: launch.image.process_args(launch.container),
        env: environment(&launch),
        working_dir: launch.image.working_dir(launch.container),
        hostname: launch.sandbox.hostname.clone(),
        netns_path: launch.sandbox.network.netns_path.clone(),
        mounts,
        tmp_size_bytes: tmp_size(&limits),
        terminal: terminal.is_some(),
        security,
    };
    let userns = launch.sandbox.user_namespace.as_ref();
    let bundle = match runc.create_bundle(&bundle_dir, &launch.image.layers, &spec, userns) {
        Ok(bundle) => bundle,
        Err(error) => {
            cgroup.finish();
            return Err(error.into());
        }
    };
    let started = match runc.run(&id, &bundle, stdio).await {
        Ok(started) => started,
        Err(error) => {
            let _ = runc.delete(&id).await;
            let _ = remove_bundle(&bundle);
            cgroup.finish();
            return Err(error);
        }
    };
    let attempt = Attempt {
        id,
        log_path,
        bundle,
        cgroup,
        terminal,
    };
    Ok(follow(registry, &launch, attempt, started))
}

/// The standard streams of a container: a terminal (`tty`), a pipe for `stdin`, or none;
/// with the terminal's master end when there is one.
fn stdio_of(container: &Container) -> Result<(ContainerStdio, Option<TerminalMaster>)> {
    Ok(if container.tty.unwrap_or(false) {
        let (master, slave) = open_terminal().context("opening the container's terminal")?;
        (ContainerStdio::Terminal(slave), Some(master))
    } else if container.stdin.unwrap_or(false) {
        (ContainerStdio::Piped, None)
    } else {
        (ContainerStdio::Null, None)
    })
}

/// What one started attempt of a container leaves to clean up when it ends.
struct Attempt {
    id: String,
    log_path: PathBuf,
    bundle: Bundle,
    cgroup: ContainerCgroup,
    terminal: Option<TerminalMaster>,
}

/// Registers the started container (for exec, attach, logs and metrics) and follows it: its
/// output to the log, then its exit, after which its bundle and cgroup go.
fn follow(
    registry: &ContainerRegistry,
    launch: &ContainerLaunch<'_>,
    attempt: Attempt,
    mut started: StartedContainer,
) -> RunningContainer {
    let container = launch.container;
    let with_stdin = container.stdin.unwrap_or(false);
    let stdin_once = container.stdin_once.unwrap_or(false);
    let (running_tx, running_rx) = watch::channel(true);
    let (exit_watch_tx, exit_watch_rx) = watch::channel(None);
    let output = ContainerOutput::new(with_stdin && stdin_once && attempt.terminal.is_none());
    let stdin = match &attempt.terminal {
        Some(master) if with_stdin => Some(ContainerInput::terminal(
            master.clone(),
            ProcessHandle::open(started.pid).ok(),
        )),
        Some(_) => None,
        None => started.child.stdin.take().map(ContainerInput::pipe),
    };
    let key = ContainerKey {
        namespace: launch.identity.namespace.clone(),
        pod: launch.identity.name.clone(),
        container: container.name.clone(),
    };
    let record = ContainerRecord {
        runc_id: attempt.id.clone(),
        log_path: attempt.log_path.clone(),
        previous_log_path: registry.previous_log(&key),
        running: running_rx,
        stdin,
        terminal: attempt.terminal.clone(),
        stdin_once,
        output: output.clone(),
        exit: exit_watch_rx.clone(),
        usage: attempt.cgroup.usage_files(),
    };
    registry.insert(key, record);
    let (exit_tx, exit_rx) = oneshot::channel();
    let running = RunningContainer {
        runc_id: attempt.id.clone(),
        pid: started.pid,
        started_at: jiff::Timestamp::now(),
        exit: exit_rx,
        ended: exit_watch_rx,
    };
    tokio::spawn(async move {
        let exit = wait_for_exit(attempt, started, output).await;
        let _ = running_tx.send(false);
        let _ = exit_watch_tx.send(Some(exit.clone()));
        let _ = exit_tx.send(exit);
    });
    running
}

/// Copies the container's output to its log until its process ends; then removes its bundle
/// and cgroup and says how it ended.
async fn wait_for_exit(
    attempt: Attempt,
    mut started: StartedContainer,
    output: ContainerOutput,
) -> ExitInfo {
    let stdout = started.child.stdout.take();
    let stderr = started.child.stderr.take();
    let mut child = started.child;
    let log_path = attempt.log_path;
    let stdout_sink =
        OutputSink::open(log_path.clone(), OutputStream::Stdout, output.clone()).await;
    let status = match attempt.terminal {
        Some(master) => {
            let (status, ()) = tokio::join!(child.wait(), pump_terminal(master, stdout_sink));
            status
        }
        None => {
            let stderr_sink = OutputSink::open(log_path, OutputStream::Stderr, output).await;
            let (status, (), ()) = tokio::join!(
                child.wait(),
                pump_pipe(stdout, stdout_sink),
                pump_pipe(stderr, stderr_sink)
            );
            status
        }
    };
    let exit_code = match status {
        Ok(status) => status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(9)
        }),
        Err(_) => 255,
    };
    let bundle = attempt.bundle;
    if let Err(error) = remove_bundle(&bundle) {
        tracing::warn!("removing the bundle of {}: {error:#}", bundle.dir.display());
    }
    // runc has removed its cgroup; ours (the limits, the OOM watch) goes now.
    let cgroup = attempt.cgroup;
    let oom_killed = tokio::task::spawn_blocking(move || cgroup.finish())
        .await
        .unwrap_or(false);
    ExitInfo {
        exit_code,
        finished_at: jiff::Timestamp::now(),
        oom_killed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_is_64_mib_or_the_memory_limit_when_smaller() {
        let limits = |memory_bytes| ContainerLimits {
            memory_bytes,
            ..ContainerLimits::default()
        };
        assert_eq!(tmp_size(&limits(None)), 64 << 20);
        assert_eq!(tmp_size(&limits(Some(32 << 20))), 32 << 20);
        assert_eq!(tmp_size(&limits(Some(1 << 30))), 64 << 20);
    }
}
