//! Every pod in a user namespace of its own, as `hostUsers: false` gives a pod in Kubernetes
//! 1.33: uid and gid 0 … 65535 inside are an unprivileged range of the machine's ids outside,
//! so root in a container is nobody on the machine, and the capabilities a container has are
//! over its own namespaces only.
//!
//! The node makes the namespace when it makes the pod's sandbox (a short-lived `sleep` child
//! unshares it; the node writes its id maps and pins it with a bind mount in the sandbox
//! directory), and makes the pod's network namespace inside it, as containerd does for such a
//! pod: root in the pod then administers its own network (binds port 80, opens raw sockets,
//! mounts its `/sys`) and nothing else. Files keep their ids on disk: the image, volumes and
//! the files the node writes are mounted idmapped ([`crate::idmap`]).

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};

/// How many ids a pod has: 0 … 65535 inside, as the kubelet gives a pod.
pub const IDS_PER_POD: u32 = 65_536;
/// The first id of the machine's that pods get: far above the ids of the machine's users and
/// of the ranges `/etc/subuid` hands out (100000 …).
pub const FIRST_HOST_ID: u32 = 1 << 31;
/// How many pods of one node can have a user namespace at the same time.
const RANGES: u32 = 16_384;

/// The ranges of the machine's ids the node gives its pods.
#[derive(Debug, Default)]
pub struct IdRanges {
    in_use: Mutex<BTreeSet<u32>>,
}

impl IdRanges {
    /// The first id of a free range, now in use.
    fn allocate(&self) -> Result<u32> {
        let mut in_use = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
        let slot = (0..RANGES)
            .find(|slot| !in_use.contains(slot))
            .context("every user namespace id range of the node is in use")?;
        in_use.insert(slot);
        Ok(FIRST_HOST_ID + slot * IDS_PER_POD)
    }

    fn release(&self, host_id: u32) {
        let slot = (host_id - FIRST_HOST_ID) / IDS_PER_POD;
        self.in_use
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&slot);
    }
}

/// A pod's user namespace, pinned at `path` until the sandbox's mounts go.
#[derive(Debug, Clone)]
pub struct PodUserNamespace {
    /// The pinned namespace (a bind mount of its nsfs file in the sandbox directory).
    pub path: PathBuf,
    /// The machine's id that uid and gid 0 inside are.
    pub host_id: u32,
    ranges: Arc<IdRanges>,
    /// The node's own, which `hostNetwork` pods share: never given back by a pod.
    shared: bool,
}

impl PartialEq for PodUserNamespace {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.host_id == other.host_id
    }
}

impl PodUserNamespace {
    /// Makes a user namespace with a free id range, pinned at `path`.
    pub fn create(ranges: &Arc<IdRanges>, path: &Path) -> Result<PodUserNamespace> {
        let host_id = ranges.allocate()?;
        let made = unshared_child(CloneFlags::CLONE_NEWUSER, None).and_then(|child| {
            let pid = child.pid();
            let result = write_id_maps(pid, host_id).and_then(|()| pin(pid, "user", path));
            child.end();
            result
        });
        match made {
            Ok(()) => Ok(PodUserNamespace {
                path: path.to_path_buf(),
                host_id,
                ranges: ranges.clone(),
                shared: false,
            }),
            Err(error) => {
                ranges.release(host_id);
                Err(error.context("creating the pod's user namespace"))
            }
        }
    }

    /// Makes a network namespace owned by this user namespace, pinned at `path` (where
    /// `ip netns` finds it).
    pub fn create_network_namespace(&self, path: &Path) -> Result<()> {
        let userns = File::open(&self.path).context("opening the pod's user namespace")?;
        let child = unshared_child(CloneFlags::CLONE_NEWNET, Some(userns))?;
        let pid = child.pid();
        let pinned = pin(pid, "net", path);
        child.end();
        pinned.context("creating the pod's network namespace")
    }

    /// The runtime spec's id mapping: 0 … 65535 inside onto this namespace's range.
    pub fn mapping(&self) -> IdMapping {
        IdMapping {
            container_id: 0,
            host_id: self.host_id,
            size: IDS_PER_POD,
        }
    }

    /// Gives the id range back (not the node's own). Call once the pod's containers are gone
    /// and the pin is unmounted.
    pub fn release(&self) {
        if !self.shared {
            self.ranges.release(self.host_id);
        }
    }
}

/// The user namespaces of a node: its own, which owns the node's network namespace and which
/// `hostNetwork` pods join (as a kind node's container is in a user namespace of its own when
/// it runs rootless), and the id ranges of its pods' namespaces.
#[derive(Debug, Clone)]
pub struct NodeUserNamespaces {
    pub node: PodUserNamespace,
    pub ranges: Arc<IdRanges>,
}

/// Where in the instance directory the node's user namespace is pinned.
pub const NODE_USER_NAMESPACE: &str = "node-userns";

impl NodeUserNamespaces {
    /// Makes the node's user namespace, pinned in `state_dir`, if this machine can run pods in
    /// user namespaces ([`probe`]); where it cannot, says why once and returns `None`: pods
    /// then run in the machine's user namespace.
    pub fn create(state_dir: &Path, image_dir: &Path) -> Option<NodeUserNamespaces> {
        let made = probe(image_dir, &state_dir.join("userns-probe")).and_then(|()| {
            let ranges = Arc::new(IdRanges::default());
            let mut node = PodUserNamespace::create(&ranges, &state_dir.join(NODE_USER_NAMESPACE))?;
            node.shared = true;
            Ok(NodeUserNamespaces { node, ranges })
        });
        match made {
            Ok(namespaces) => Some(namespaces),
            Err(error) => {
                tracing::warn!(
                    "pods run without user namespaces (root in a container is root of this \
                     machine): this kernel cannot give them one: {error:#}"
                );
                None
            }
        }
    }
}

/// Whether this machine can run pods in user namespaces, tried once at start in `scratch`
/// (removed again): a user namespace, idmapped mounts of a directory of the image store's
/// filesystem and of the state directory's (tmpfs needs Linux 6.3), and an overlay on an
/// idmapped lower layer (Linux 5.19).
pub fn probe(image_dir: &Path, scratch: &Path) -> Result<()> {
    std::fs::create_dir_all(image_dir)?;
    let result = probe_in(image_dir, scratch);
    let cleaned =
        crate::mounts::unmount_under(scratch).and_then(|()| Ok(std::fs::remove_dir_all(scratch)?));
    result.and(cleaned)
}

fn probe_in(image_dir: &Path, scratch: &Path) -> Result<()> {
    let ranges = Arc::new(IdRanges::default());
    let userns = PodUserNamespace::create(&ranges, &scratch.join("user"))?;
    let namespace = File::open(&userns.path)?;
    let local = scratch.join("local");
    let [image_view, local_view, upper, work, root] =
        ["image", "local-view", "upper", "work", "root"].map(|name| scratch.join(name));
    for dir in [&local, &image_view, &local_view, &upper, &work, &root] {
        std::fs::create_dir_all(dir)?;
    }
    crate::idmap::bind_idmapped(image_dir, &image_view, &namespace)?;
    crate::idmap::bind_idmapped(&local, &local_view, &namespace)?;
    // emptyDir volumes of `medium: Memory` are tmpfs (idmappable since Linux 6.3).
    let [memory, memory_view] = ["memory", "memory-view"].map(|name| scratch.join(name));
    for dir in [&memory, &memory_view] {
        std::fs::create_dir_all(dir)?;
    }
    mount(
        Some("tmpfs"),
        &memory,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=64k"),
    )
    .context("mounting a tmpfs")?;
    crate::idmap::bind_idmapped(&memory, &memory_view, &namespace)?;
    crate::runtime::mount_overlay(&image_view, &upper, &work, &root)?;
    Ok(())
}

/// One line of an id map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// A `sleep` child that has unshared `flags` (after joining `userns` if given) before it
/// ran: what holds a new namespace until it is pinned.
struct NamespaceHolder(Child);

impl NamespaceHolder {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn end(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn unshared_child(flags: CloneFlags, userns: Option<File>) -> Result<NamespaceHolder> {
    let mut command = Command::new("sleep");
    command
        .arg("600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let userns_fd = userns.as_ref().map(|file| file.as_raw_fd());
    // SAFETY: the closure runs in the forked child before exec and only makes the setns and
    // unshare system calls, which are async-signal-safe; the child is single-threaded, as
    // entering a user namespace requires.
    unsafe {
        command.pre_exec(move || {
            if let Some(fd) = userns_fd {
                let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                setns(fd, CloneFlags::CLONE_NEWUSER).map_err(std::io::Error::from)?;
            }
            unshare(flags).map_err(std::io::Error::from)
        });
    }
    let child = command
        .spawn()
        .context("starting a process in new namespaces (sleep)")?;
    drop(userns);
    Ok(NamespaceHolder(child))
}

fn write_id_maps(pid: u32, host_id: u32) -> Result<()> {
    let map = format!("0 {host_id} {IDS_PER_POD}\n");
    for file in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{pid}/{file}"), &map)
            .with_context(|| format!("writing {file} of the new user namespace"))?;
    }
    Ok(())
}

/// Pins namespace `kind` of process `pid` at `path`: a bind mount of its nsfs file keeps the
/// namespace alive after the process ends.
fn pin(pid: u32, kind: &str, path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let source = format!("/proc/{pid}/ns/{kind}");
    mount(
        Some(source.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("pinning the {kind} namespace at {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_disjoint_and_reused_once_released() {
        let ranges = IdRanges::default();
        let first = ranges.allocate().unwrap();
        let second = ranges.allocate().unwrap();
        assert_eq!(first, FIRST_HOST_ID);
        assert_eq!(second, FIRST_HOST_ID + IDS_PER_POD);
        ranges.release(first);
        assert_eq!(ranges.allocate().unwrap(), first);
        assert_eq!(ranges.allocate().unwrap(), FIRST_HOST_ID + 2 * IDS_PER_POD);
    }
}
