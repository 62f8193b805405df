//! Cluster instances on this machine: each run claims `/run/k8s-labs/<instance>` with its PID
//! in it, so a later start can tell the leftovers of a crashed run (owner dead) from a cluster
//! that is running right now (owner alive), and remove only the former.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};

use crate::runtime::Runc;

/// The file in an instance directory that names its owner: `<pid> <process start time>`, the
/// start time guarding against a recycled PID.
const OWNER_FILE: &str = "owner";

/// The default root of instance directories.
pub const RUN_ROOT: &str = "/run/k8s-labs";

/// Claims a new instance directory under `run_root` owned by this process. Returns the
/// instance id (short, it goes into interface and namespace names) and the directory.
///
/// The directory appears with its owner file already in it (made under a dot-name that
/// `cleanup_leftovers` skips, then renamed into place without replacing anything), so a
/// cleanup running at the same moment never mistakes a fresh claim for a leftover.
pub fn claim_instance(run_root: &Path) -> Result<(String, PathBuf)> {
    std::fs::create_dir_all(run_root)
        .with_context(|| format!("creating {}", run_root.display()))?;
    let owner = format!("{} {}", std::process::id(), start_time(std::process::id())?);
    for _ in 0..100 {
        let instance = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let staging = run_root.join(format!(".{instance}.claiming"));
        let dir = run_root.join(&instance);
        std::fs::create_dir(&staging).with_context(|| format!("creating {}", staging.display()))?;
        std::fs::write(staging.join(OWNER_FILE), &owner)
            .with_context(|| format!("writing {}", staging.join(OWNER_FILE).display()))?;
        match renameat2(
            AT_FDCWD,
            &staging,
            AT_FDCWD,
            &dir,
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => return Ok((instance, dir)),
            Err(nix::errno::Errno::EEXIST) => {
                std::fs::remove_dir_all(&staging)?;
                continue;
            }
            Err(error) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(error).with_context(|| format!("creating {}", dir.display()));
            }
        }
    }
    anyhow::bail!(
        "could not find a free instance id under {}",
        run_root.display()
    )
}

/// The start time of a process (field 22 of `/proc/<pid>/stat`, in clock ticks since boot).
fn start_time(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    after_name
        .split_whitespace()
        .nth(19)
        .context("short /proc/<pid>/stat")?
        .parse()
        .context("start time in /proc/<pid>/stat")
}

/// Whether the process named by an owner file still runs.
fn owner_alive(owner: &str) -> bool {
    let mut fields = owner.split_whitespace();
    let (Some(pid), Some(started)) = (fields.next(), fields.next()) else {
        return false;
    };
    let (Ok(pid), Ok(started)) = (pid.parse::<u32>(), started.parse::<u64>()) else {
        return false;
    };
    matches!(start_time(pid), Ok(actual) if actual == started)
}

/// Removes what crashed clusters left under `run_root`: for every instance whose owner is dead,
/// its runc containers, the mounts under its directory, its network namespaces
/// (`k8s-labs-<instance>-*`) and the directory. Live instances and anything else are left
/// alone. Returns the instances removed.
pub fn cleanup_leftovers(run_root: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(run_root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("reading {}", run_root.display())),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let dir = entry.path();
        let instance = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type()?.is_dir() || !is_instance_id(&instance) {
            continue;
        }
        let owner = std::fs::read_to_string(dir.join(OWNER_FILE)).unwrap_or_default();
        if owner_alive(&owner) {
            continue;
        }
        remove_instance(&instance, &dir)
            .with_context(|| format!("removing leftovers of cluster instance {instance}"))?;
        removed.push(instance);
    }
    Ok(removed)
}

/// Instance ids are what `claim_instance` makes; anything else in the directory is not ours.
fn is_instance_id(name: &str) -> bool {
    !name.is_empty() && name.len() <= 16 && name.chars().all(|c| c.is_ascii_alphanumeric())
}

fn remove_instance(instance: &str, dir: &Path) -> Result<()> {
    let runc_root = dir.join("runc");
    if runc_root.exists() {
        let runc = Runc::new(runc_root);
        for id in runc.list_blocking().unwrap_or_default() {
            runc.force_delete_blocking(&id);
        }
    }
    crate::mounts::unmount_under(dir)?;
    crate::cgroups::remove_recorded(dir)?;
    k8s_labs_net::delete_instance_namespaces(instance)?;
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("removing {}", dir.display())),
    }
}
