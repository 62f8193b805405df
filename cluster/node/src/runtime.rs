//! The container runtime: runc, driven as containerd's shim drives it, minus the daemon.
//!
//! A container is a bundle (an overlay root filesystem whose lower layer is its image's root
//! filesystem, with per-container upper and work directories, and a `config.json`) run by
//! `runc run` in the foreground as our child: the child's exit status is the container's, and
//! nothing is reparented or left a zombie (`runc run -d` would lose both). runc writes the pid
//! file only once the container's process has been started, so waiting for it (with inotify)
//! tells a container that started from one that failed to start.

use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::process::{Child, Command};

use crate::mounts::mount_overlay;
use crate::oci_spec::{ContainerSpec, runtime_spec};
use crate::user_namespace::PodUserNamespace;

/// The runc binary and its state directory (`--root`), one per cluster instance so that
/// clusters never see each other's containers.
#[derive(Debug, Clone)]
pub struct Runc {
    root: PathBuf,
}

/// The directories of one container attempt.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
}

/// How the container's stdio is connected.
#[derive(Debug)]
pub enum ContainerStdio {
    /// stdout and stderr are pipes; stdin is `/dev/null` (a container without `stdin: true`).
    Null,
    /// stdin too is a pipe, kept by the node for `kubectl attach`.
    Piped,
    /// `tty: true`: runc's stdio is the slave of a pty of the node's, runc makes the
    /// container's own pty and relays (see [`crate::terminal`]).
    Terminal(std::os::fd::OwnedFd),
}

/// A container whose process runs.
#[derive(Debug)]
pub struct StartedContainer {
    /// The `runc run` child; its exit status is the container's.
    pub child: Child,
    /// The container's init process, as seen from the host.
    pub pid: i32,
}

/// Why a container did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// runc ran but the container's process never started (e.g. the command does not exist).
    #[error("{message}")]
    Failed {
        /// runc's exit code.
        exit_code: i32,
        /// Why, as runc said it.
        message: String,
    },
    /// The pod's spec cannot be turned into a container on this node (`CreateContainerConfigError`
    /// in the kubelet, e.g. a subPath that cannot be prepared); the text says why.
    #[error("{0}")]
    Config(String),
    /// runc itself could not be run or waited for.
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl Runc {
    /// runc with its state in `root`.
    pub fn new(root: PathBuf) -> Runc {
        Runc { root }
    }

    /// A `runc --root <root> <args>` command, in a process group of its own: Ctrl-C in a
    /// terminal sends SIGINT to the whole foreground process group, and runc (which forwards
    /// signals to the container) and the container's processes must be stopped by the
    /// cluster's orderly shutdown, not by that SIGINT.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.command_in_caller_group(args);
        command.process_group(0);
        command
    }

    /// A `runc --root <root> <args>` command left in the caller's process group, for a caller
    /// that puts it in a new session itself (`setsid` before exec, as a pty's owner must be a
    /// session leader, which a process group leader cannot become).
    pub fn command_in_caller_group(&self, args: &[&str]) -> Command {
        let mut command = Command::new("runc");
        command.arg("--root").arg(&self.root).args(args);
        command.kill_on_drop(false);
        command
    }

    /// Creates a bundle in `dir`: the overlay root filesystem on the image's `layers` (lowest
    /// first) and `config.json`. In a pod's user namespace, each layer is mounted idmapped
    /// (see [`crate::idmap`]), so that its files keep their owners inside.
    pub fn create_bundle(
        &self,
        dir: &Path,
        layers: &[PathBuf],
        spec: &ContainerSpec,
        user_namespace: Option<&PodUserNamespace>,
    ) -> Result<Bundle> {
        let bundle = Bundle {
            dir: dir.to_path_buf(),
            rootfs: dir.join("rootfs"),
        };
        let made = match user_namespace {
            Some(userns) => idmapped_layers(dir, layers, userns)
                .and_then(|lowers| mount_root(dir, &lowers, Some(userns.host_id))),
            None => mount_root(dir, layers, None),
        };
        let written = made.and_then(|()| {
            let config = runtime_spec(spec, &bundle.rootfs)?;
            let bytes = serde_json::to_vec_pretty(&config)?;
            std::fs::write(dir.join("config.json"), bytes).context("writing config.json")
        });
        if let Err(error) = written {
            let _ = remove_bundle(&bundle);
            return Err(error);
        }
        Ok(bundle)
    }

    /// Runs the container in the foreground as a child of this process and returns once its
    /// process has started, or fails with runc's error when it could not start.
    pub async fn run(
        &self,
        id: &str,
        bundle: &Bundle,
        stdio: ContainerStdio,
    ) -> Result<StartedContainer, StartError> {
        let pid_file = bundle.dir.join("pid");
        let runc_log = bundle.dir.join("runc.log");
        let _ = std::fs::remove_file(&pid_file);
        // Watch before starting, so the pid file cannot appear unseen.
        let watcher = PidFileWatcher::new(&bundle.dir).context("watching the bundle")?;
        let mut command = Command::new("runc");
        command
            .arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&runc_log)
            .args(["--log-format", "json", "run", "--bundle"])
            .arg(&bundle.dir)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            .kill_on_drop(false);
        match &stdio {
            ContainerStdio::Null | ContainerStdio::Piped => {
                command
                    .stdin(if matches!(stdio, ContainerStdio::Piped) {
                        Stdio::piped()
                    } else {
                        Stdio::null()
                    })
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    // Out of our process group, as for every runc child (see `Runc::command`).
                    .process_group(0);
            }
            // In a session of its own, so out of our process group too.
            ContainerStdio::Terminal(slave) => {
                crate::terminal::run_on_terminal(&mut command, slave)
                    .context("preparing the container's terminal")?;
            }
        }
        let mut child = command.spawn().context("running runc")?;
        // Only runc keeps the terminal's slave (the command holds copies): the master sees
        // the end when runc exits.
        drop(command);
        drop(stdio);
        // `Child::wait` closes the child's stdin; keep it out of the way while waiting.
        let stdin_pipe = child.stdin.take();
        let started = tokio::select! {
            started = watcher.wait_for("pid") => {
                started.context("waiting for runc's pid file")?;
                let pid = read_pid(&pid_file)?;
                Ok(StartedContainer { child, pid })
            }
            status = child.wait() => {
                let status = status.context("waiting for runc")?;
                // runc may have started the process and written the pid file just before it
                // exited: then the container ran (briefly) and this is its exit status.
                if let Ok(pid) = read_pid(&pid_file) {
                    return Ok(StartedContainer { child, pid });
                }
                Err(StartError::Failed {
                    exit_code: status.code().unwrap_or(128),
                    message: last_runc_error(&runc_log)
                        .unwrap_or_else(|| format!("runc run exited with {status}")),
                })
            }
        };
        started.map(|mut started| {
            started.child.stdin = stdin_pipe;
            started
        })
    }

    /// Sends a signal (`TERM`, `KILL`) to the container's main process. A container that is
    /// already gone is not an error.
    pub async fn kill(&self, id: &str, signal: &str) -> Result<()> {
        let output = self.command(&["kill", id, signal]).output().await?;
        if output.status.success() || is_gone(&output.stderr) {
            return Ok(());
        }
        bail!(
            "runc kill {id} {signal}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
    }

    /// Removes the container from runc's state (killing it if needed). A container that is
    /// already gone is not an error (`runc run` deletes its container when it exits).
    pub async fn delete(&self, id: &str) -> Result<()> {
        let output = self.command(&["delete", "--force", id]).output().await?;
        if output.status.success() || is_gone(&output.stderr) {
            return Ok(());
        }
        bail!(
            "runc delete {id}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
    }

    /// A blocking `runc --root <root> <args>` command in its own process group (see
    /// [`Runc::command`]), for teardown outside the async runtime.
    pub fn blocking_command(&self, args: &[&str]) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new("runc");
        command
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .process_group(0);
        command
    }

    /// Removes a container from runc's state, killing it if needed (blocking; errors are
    /// ignored, as for a container that is already gone).
    pub fn force_delete_blocking(&self, id: &str) {
        let _ = self.blocking_command(&["delete", "--force", id]).output();
    }

    /// The ids of the containers runc knows in this root.
    pub fn list_blocking(&self) -> Result<Vec<String>> {
        let output = self
            .blocking_command(&["list", "-q"])
            .output()
            .context("running runc list")?;
        if !output.status.success() {
            bail!(
                "runc list: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect())
    }
}

fn is_gone(stderr: &[u8]) -> bool {
    let text = String::from_utf8_lossy(stderr);
    text.contains("does not exist") || text.contains("not exist") || text.contains("not running")
}

fn read_pid(path: &Path) -> Result<i32> {
    let text = std::fs::read_to_string(path)?;
    text.trim()
        .parse()
        .with_context(|| format!("{} holds no pid: {text:?}", path.display()))
}

/// The last error runc logged (`--log-format json` lines `{"level":"error","msg":...}`).
fn last_runc_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["level"] == "error" || entry["level"] == "fatal")
        .filter_map(|entry| entry["msg"].as_str().map(str::to_string))
        .next_back()
}

/// Mounts the container's root filesystem at `<dir>/rootfs`: an overlay whose lower layers
/// are `lowers` (lowest first) and whose upper and work directories are the bundle's. In a
/// user namespace, the upper directory's root belongs to the namespace's root (`owner`), as
/// the image's does through its idmapped mounts.
fn mount_root(dir: &Path, lowers: &[PathBuf], owner: Option<u32>) -> Result<()> {
    let rootfs = dir.join("rootfs");
    let upper = writable_layer(dir);
    let work = dir.join("work");
    for path in [&rootfs, &upper, &work] {
        std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    }
    if let Some(id) = owner {
        let id = Some(nix::unistd::Uid::from_raw(id));
        let gid = owner.map(nix::unistd::Gid::from_raw);
        nix::unistd::chown(&upper, id, gid).context("giving the upper directory to the pod")?;
    }
    mount_overlay(lowers, &upper, &work, &rootfs)
}

/// The image's layers seen through the pod's user namespace, each mounted idmapped at
/// `<dir>/lower/<n>`: their files, owned by 0 … 65535 on disk, belong to the same ids in the
/// pod. (The pod's volumes are idmapped or given to the pod when its sandbox is made.)
fn idmapped_layers(
    dir: &Path,
    layers: &[PathBuf],
    userns: &PodUserNamespace,
) -> Result<Vec<PathBuf>> {
    let namespace =
        std::fs::File::open(&userns.path).context("opening the pod's user namespace")?;
    let mut lowers = Vec::with_capacity(layers.len());
    for (index, layer) in layers.iter().enumerate() {
        let lower = dir.join("lower").join(index.to_string());
        std::fs::create_dir_all(&lower)?;
        crate::idmap::bind_idmapped(layer, &lower, &namespace)?;
        lowers.push(lower);
    }
    Ok(lowers)
}

/// The upper directory of a bundle's overlay: the container's writable layer.
pub fn writable_layer(bundle_dir: &Path) -> PathBuf {
    bundle_dir.join("upper")
}

/// Unmounts a bundle's root filesystem and removes the bundle directory.
pub fn remove_bundle(bundle: &Bundle) -> Result<()> {
    remove_bundle_dir(&bundle.dir)
}

/// Unmounts everything under a bundle directory (its root filesystem, its subPath mounts,
/// which must never be recursed into by the removal), then removes it.
pub fn remove_bundle_dir(dir: &Path) -> Result<()> {
    crate::mounts::unmount_under(dir)?;
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("removing {}", dir.display())),
    }
}

/// Waits for a file to be created in a directory (runc writes its pid file to a temporary
/// name and renames it into place).
struct PidFileWatcher {
    inotify: AsyncFd<OwnedInotify>,
    dir: PathBuf,
}

/// An inotify instance as tokio's reactor needs it.
struct OwnedInotify(Inotify);

impl AsRawFd for OwnedInotify {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl PidFileWatcher {
    fn new(dir: &Path) -> Result<PidFileWatcher> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        inotify.add_watch(
            dir,
            AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE,
        )?;
        // SAFETY: the descriptor is owned by the `Inotify` inside, which lives exactly as long
        // as the `AsyncFd` and always returns the same descriptor.
        let inotify =
            unsafe { AsyncFd::register_with_interest(OwnedInotify(inotify), Interest::READABLE) }
                .map_err(|error| anyhow::anyhow!("registering inotify: {error:?}"))?;
        Ok(PidFileWatcher {
            inotify,
            dir: dir.to_path_buf(),
        })
    }

    async fn wait_for(&self, name: &str) -> std::io::Result<()> {
        loop {
            if self.dir.join(name).exists() {
                return Ok(());
            }
            let mut guard = self.inotify.readable().await?;
            match guard.try_io(|inner| {
                inner
                    .get_ref()
                    .0
                    .read_events()
                    .map_err(std::io::Error::from)
            }) {
                Ok(Ok(events)) => {
                    if events
                        .iter()
                        .any(|event| event.name.as_deref() == Some(std::ffi::OsStr::new(name)))
                    {
                        return Ok(());
                    }
                }
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => continue,
            }
        }
    }
}
