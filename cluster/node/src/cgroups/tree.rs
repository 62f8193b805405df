//! The node's cgroups, laid out as the kubelet lays out its `kubepods` tree:
//!
//! ```text
//! k8s-labs-<instance>/              the node (made at start, removed at stop)
//!   pod<uid>/                       the pod: its pids limit
//!     <container attempt>/          the container's limits; watched for OOM kills
//!       runc/                       runc's cgroup, holding the container's processes
//! ```
//!
//! On cgroup v1 the tree is below this process's own cgroup in every hierarchy (runc resolves
//! a relative cgroups path the same way), on v2 beside it. The directories are recorded in the
//! instance directory, so that a later start can remove what a crashed one left.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::hierarchy::{Hierarchies, LIMIT_CONTROLLERS};
use super::limits::{CPU_PERIOD_US, ContainerLimits};
use super::oom::OomWatch;
use super::usage::UsageFiles;

/// The most processes (and threads) the containers of one pod may run together. The kubelet's
/// `podPidsLimit` is unlimited by default; a node shared with the user's own work needs one,
/// and this one leaves room for nginx, a shell and a busy build.
pub const POD_PIDS_LIMIT: u64 = 1024;

/// The file in the instance directory that lists the node's cgroup directories.
const RECORD_FILE: &str = "cgroups";

/// The node's cgroup tree.
#[derive(Debug, Clone)]
pub struct NodeCgroups {
    hierarchies: Arc<Hierarchies>,
    /// `k8s-labs-<instance>`.
    base: String,
}

/// A pod's cgroup.
#[derive(Debug, Clone)]
pub struct PodCgroup {
    hierarchies: Arc<Hierarchies>,
    /// Below this process's cgroups: `k8s-labs-<instance>/pod<uid>`.
    relative: PathBuf,
}

/// The cgroup of one container attempt.
#[derive(Debug)]
pub struct ContainerCgroup {
    hierarchies: Arc<Hierarchies>,
    relative: PathBuf,
    oom: OomWatch,
}

impl NodeCgroups {
    /// Makes the node's cgroup and records it in `state_dir`.
    pub fn create(state_dir: &Path, instance: &str) -> Result<NodeCgroups> {
        NodeCgroups::create_in(Hierarchies::of_this_process()?, state_dir, instance)
    }

    fn create_in(
        hierarchies: Hierarchies,
        state_dir: &Path,
        instance: &str,
    ) -> Result<NodeCgroups> {
        let hierarchies = Arc::new(hierarchies);
        let base = format!("k8s-labs-{instance}");
        let record: Vec<String> = all_dirs(&hierarchies, Path::new(&base))
            .iter()
            .map(|dir| dir.display().to_string())
            .collect();
        std::fs::write(state_dir.join(RECORD_FILE), record.join("\n") + "\n")
            .context("recording the node's cgroups")?;
        if let Hierarchies::V2 { dir, .. } = hierarchies.as_ref() {
            enable_v2_controllers(dir)?;
        }
        make_limit_dirs(&hierarchies, Path::new(&base))?;
        Ok(NodeCgroups { hierarchies, base })
    }

    /// Makes the cgroup of pod `uid`, with the pod's pids limit.
    pub fn create_pod(&self, uid: &str) -> Result<PodCgroup> {
        let relative = Path::new(&self.base).join(format!("pod{uid}"));
        make_limit_dirs(&self.hierarchies, &relative)?;
        let pids_max = POD_PIDS_LIMIT.to_string();
        match self.hierarchies.as_ref() {
            Hierarchies::V1 { .. } => {
                write_v1(&self.hierarchies, "pids", &relative, "pids.max", &pids_max)?
            }
            Hierarchies::V2 { dir, .. } => write(&dir.join(&relative).join("pids.max"), &pids_max)?,
        }
        Ok(PodCgroup {
            hierarchies: self.hierarchies.clone(),
            relative,
        })
    }

    /// Removes the node's cgroups (its containers must be gone).
    pub fn remove(&self) -> Result<()> {
        remove_in_all(&self.hierarchies, Path::new(&self.base))
    }

    /// Where the usage of the node's whole tree (every pod, every container) is read.
    pub fn usage_files(&self) -> Option<UsageFiles> {
        UsageFiles::of(&self.hierarchies, Path::new(&self.base))
    }
}

/// Removes the cgroups an instance directory records (those of a crashed cluster, after its
/// containers were killed). An instance without a record had none.
pub fn remove_recorded(state_dir: &Path) -> Result<()> {
    let record = match std::fs::read_to_string(state_dir.join(RECORD_FILE)) {
        Ok(record) => record,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error).context("reading the recorded cgroups"),
    };
    let mut first_error = None;
    for dir in record.lines().filter(|line| line.contains("/k8s-labs-")) {
        if let Err(error) = remove_tree(Path::new(dir)) {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

impl PodCgroup {
    /// Makes the cgroup of a container attempt with its limits, watched for OOM kills.
    pub fn create_container(
        &self,
        attempt_id: &str,
        limits: &ContainerLimits,
    ) -> Result<ContainerCgroup> {
        let relative = self.relative.join(attempt_id);
        make_limit_dirs(&self.hierarchies, &relative)?;
        let made = set_limits(&self.hierarchies, &relative, limits).and_then(|()| {
            Ok(match self.hierarchies.as_ref() {
                Hierarchies::V1 { .. } => {
                    let dir = v1_dir(&self.hierarchies, "memory", &relative)?;
                    OomWatch::v1(&dir)?
                }
                Hierarchies::V2 { dir, .. } => OomWatch::v2(&dir.join(&relative)),
            })
        });
        match made {
            Ok(oom) => Ok(ContainerCgroup {
                hierarchies: self.hierarchies.clone(),
                relative,
                oom,
            }),
            Err(error) => {
                let _ = remove_in_all(&self.hierarchies, &relative);
                Err(error)
            }
        }
    }

    /// Removes the pod's cgroup (its containers must be gone).
    pub fn remove(&self) -> Result<()> {
        remove_in_all(&self.hierarchies, &self.relative)
    }
}

impl ContainerCgroup {
    /// `linux.cgroupsPath` for runc: relative to runc's own cgroups on v1 (which are this
    /// process's), from the root of the hierarchy on v2.
    pub fn runc_path(&self) -> String {
        let runc = self.relative.join("runc");
        match self.hierarchies.as_ref() {
            Hierarchies::V1 { .. } => runc.display().to_string(),
            Hierarchies::V2 { mount, dir } => {
                let absolute = dir.join(runc);
                let below_root = absolute.strip_prefix(mount).unwrap_or(&absolute);
                Path::new("/").join(below_root).display().to_string()
            }
        }
    }

    /// Where the container's usage is read (this attempt's cgroup, which holds runc's).
    pub fn usage_files(&self) -> Option<UsageFiles> {
        UsageFiles::of(&self.hierarchies, &self.relative)
    }

    /// Once the container has ended: whether it was OOM-killed. Removes the cgroup.
    pub fn finish(mut self) -> bool {
        let oom_killed = self.oom.fired();
        if let Err(error) = remove_in_all(&self.hierarchies, &self.relative) {
            tracing::warn!("removing a container's cgroup: {error:#}");
        }
        oom_killed
    }
}

fn set_limits(hierarchies: &Hierarchies, relative: &Path, limits: &ContainerLimits) -> Result<()> {
    match hierarchies {
        Hierarchies::V1 { .. } => {
            let shares = limits.cpu_shares().to_string();
            write_v1(hierarchies, "cpu", relative, "cpu.shares", &shares)?;
            if let Some(quota) = limits.cpu_quota_us() {
                let period = CPU_PERIOD_US.to_string();
                write_v1(hierarchies, "cpu", relative, "cpu.cfs_period_us", &period)?;
                write_v1(
                    hierarchies,
                    "cpu",
                    relative,
                    "cpu.cfs_quota_us",
                    &quota.to_string(),
                )?;
            }
            if let Some(bytes) = limits.memory_bytes {
                let bytes = bytes.to_string();
                write_v1(
                    hierarchies,
                    "memory",
                    relative,
                    "memory.limit_in_bytes",
                    &bytes,
                )?;
            }
        }
        Hierarchies::V2 { dir, .. } => {
            let dir = dir.join(relative);
            write(&dir.join("cpu.weight"), &limits.cpu_weight().to_string())?;
            if let Some(quota) = limits.cpu_quota_us() {
                write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
            }
            if let Some(bytes) = limits.memory_bytes {
                write(&dir.join("memory.max"), &bytes.to_string())?;
                // No swapping past the limit: a limited container is OOM-killed, as on a node
                // without swap.
                let _ = write(&dir.join("memory.swap.max"), "0");
            }
        }
    }
    Ok(())
}

/// Makes `relative` in the hierarchies that carry the limit controllers (runc makes it in the
/// others when it makes its own cgroup below), enabling the controllers for children on v2.
fn make_limit_dirs(hierarchies: &Hierarchies, relative: &Path) -> Result<()> {
    let dirs: Vec<PathBuf> = match hierarchies {
        Hierarchies::V1 { .. } => LIMIT_CONTROLLERS
            .iter()
            .map(|controller| v1_dir(hierarchies, controller, relative))
            .collect::<Result<_>>()?,
        Hierarchies::V2 { dir, .. } => vec![dir.join(relative)],
    };
    for dir in dirs {
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => {
                return Err(error).with_context(|| format!("creating cgroup {}", dir.display()));
            }
        }
        if matches!(hierarchies, Hierarchies::V2 { .. }) {
            enable_v2_controllers(&dir)?;
        }
    }
    Ok(())
}

fn enable_v2_controllers(dir: &Path) -> Result<()> {
    write(&dir.join("cgroup.subtree_control"), "+memory +cpu +pids")
}

fn v1_dir(hierarchies: &Hierarchies, controller: &str, relative: &Path) -> Result<PathBuf> {
    hierarchies
        .v1_dir(controller)
        .map(|dir| dir.join(relative))
        .with_context(|| format!("the {controller} cgroup controller is not mounted"))
}

fn write_v1(
    hierarchies: &Hierarchies,
    controller: &str,
    relative: &Path,
    file: &str,
    value: &str,
) -> Result<()> {
    write(
        &v1_dir(hierarchies, controller, relative)?.join(file),
        value,
    )
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
}

/// `relative` in every hierarchy: on v1 also those without limits, where runc makes the
/// directories of its cgroups' ancestors.
fn all_dirs(hierarchies: &Hierarchies, relative: &Path) -> Vec<PathBuf> {
    match hierarchies {
        Hierarchies::V1 { dirs } => dirs.iter().map(|d| d.dir.join(relative)).collect(),
        Hierarchies::V2 { dir, .. } => vec![dir.join(relative)],
    }
}

fn remove_in_all(hierarchies: &Hierarchies, relative: &Path) -> Result<()> {
    let mut first_error = None;
    for dir in all_dirs(hierarchies, relative) {
        if let Err(error) = remove_tree(&dir) {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Removes a cgroup and the cgroups below it, deepest first (a cgroup is removed with rmdir,
/// its files are the kernel's).
fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(error).with_context(|| format!("reading cgroup {}", dir.display()));
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    // A cgroup whose last process has just exited stays busy until the kernel has finished
    // with that process; runc waits the same way before it gives up.
    let mut delay = Duration::from_millis(5);
    for _ in 0..8 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) if error.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(error) => {
                return Err(error).with_context(|| format!("removing cgroup {}", dir.display()));
            }
        }
    }
    std::fs::remove_dir(dir).with_context(|| format!("removing cgroup {}", dir.display()))
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
