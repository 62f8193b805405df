//! Every pod in a user namespace of its own, as `hostUsers: false` gives a pod in Kubernetes
//! 1.33: uid and gid 0 … 65535 inside are an unprivileged range of the machine's ids outside,
//! so root in a container is nobody on the machine, and the capabilities a container has are
//! over its own namespaces only.
//!
//! The node makes the namespace when it makes the pod's sandbox (a short-lived `unshare`
//! child makes it; the node writes its id maps and pins it with a bind mount in the sandbox
//! directory), together with the pod's network namespace, owned by it, as containerd makes
//! them for such a pod: root in the pod then administers its own network (binds port 80, opens raw sockets,
//! mounts its `/sys`) and nothing else. Files keep their ids on disk: the image, volumes and
//! the files the node writes are mounted idmapped ([`crate::idmap`]).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};

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
    /// The pinned user namespace (a bind mount of its nsfs file in the sandbox directory).
    pub path: PathBuf,
    /// The pinned network namespace it owns, made with it.
    pub network_path: PathBuf,
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
    /// Makes a user namespace with a free id range, and a network namespace it owns, pinned
    /// at `<dir>/user` and `<dir>/net`.
    pub fn create(ranges: &Arc<IdRanges>, dir: &Path) -> Result<PodUserNamespace> {
        let host_id = ranges.allocate()?;
        let (path, network_path) = (dir.join("user"), dir.join("net"));
        let made = NamespaceHolder::start().and_then(|holder| {
            let pid = holder.pid();
            let result = write_id_maps(pid, host_id)
                .and_then(|()| pin(pid, "user", &path))
                .and_then(|()| pin(pid, "net", &network_path));
            holder.end();
            result
        });
        match made {
            Ok(()) => Ok(PodUserNamespace {
                path,
                network_path,
                host_id,
                ranges: ranges.clone(),
                shared: false,
            }),
            Err(error) => {
                ranges.release(host_id);
                Err(error.context("creating the pod's user and network namespaces"))
            }
        }
    }

    /// Pins the network namespace also at `path` (where `ip netns` finds it).
    pub fn bind_network_namespace(&self, path: &Path) -> Result<()> {
        bind_file(&self.network_path, path)
            .with_context(|| format!("naming the network namespace {}", path.display()))
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
    /// and the pins are unmounted.
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
    /// The node's own namespace.
    pub node: PodUserNamespace,
    /// The id ranges the pods' namespaces are given from.
    pub ranges: Arc<IdRanges>,
}

/// Where in the instance directory the node's namespaces are pinned.
pub const NODE_NAMESPACES: &str = "node-namespaces";

impl NodeUserNamespaces {
    /// Makes the node's user namespace and the network namespace it owns, pinned in
    /// `state_dir`, if this machine can run pods in user namespaces ([`probe`]); where it
    /// cannot, says why once and returns `None`: pods then run in the machine's user
    /// namespace.
    pub fn create(state_dir: &Path, image_dir: &Path) -> Option<NodeUserNamespaces> {
        let made = probe(image_dir, &state_dir.join("userns-probe")).and_then(|()| {
            let ranges = Arc::new(IdRanges::default());
            let mut node = PodUserNamespace::create(&ranges, &state_dir.join(NODE_NAMESPACES))?;
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
/// filesystem and of the state directory's (where the node's root is), and an overlay on an
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
    let userns = PodUserNamespace::create(&ranges, &scratch.join("ns"))?;
    let namespace = File::open(&userns.path)?;
    let local = scratch.join("local");
    let [image_view, local_view, upper, work, root] =
        ["image", "local-view", "upper", "work", "root"].map(|name| scratch.join(name));
    for dir in [&local, &image_view, &local_view, &upper, &work, &root] {
        std::fs::create_dir_all(dir)?;
    }
    crate::idmap::bind_idmapped(image_dir, &image_view, &namespace)?;
    crate::idmap::bind_idmapped(&local, &local_view, &namespace)?;
    crate::mounts::mount_overlay(&[image_view], &upper, &work, &root)?;
    Ok(())
}

/// One line of an id map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// An `unshare --user --net cat` child: what holds a new user namespace, and a network
/// namespace it owns, until they are pinned. Started with `posix_spawn` (no code of ours runs
/// in the child), so that the cluster's process, large and multi-threaded, is not forked.
struct NamespaceHolder(Child);

impl NamespaceHolder {
    /// Starts the holder and returns once it runs in its new namespaces: `cat` echoes a
    /// line only after `unshare` has made them.
    fn start() -> Result<NamespaceHolder> {
        let mut child = Command::new("unshare")
            .args(["--user", "--net", "--", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting unshare (util-linux)")?;
        let echoed = (|| -> std::io::Result<bool> {
            let (Some(stdin), Some(stdout)) = (child.stdin.as_mut(), child.stdout.as_mut()) else {
                return Ok(false);
            };
            stdin.write_all(b"\n")?;
            let mut byte = [0u8; 1];
            Ok(stdout.read(&mut byte)? == 1)
        })();
        if matches!(echoed, Ok(true)) {
            return Ok(NamespaceHolder(child));
        }
        drop(child.stdin.take());
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let _ = child.wait();
        anyhow::bail!("unshare --user --net failed: {}", stderr.trim())
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Ends the holder: `cat` ends at the end of its input.
    fn end(mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
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
    bind_file(Path::new(&format!("/proc/{pid}/ns/{kind}")), path)
        .with_context(|| format!("pinning the {kind} namespace at {}", path.display()))
}

/// Bind-mounts the file `source` onto `target`, made empty first.
fn bind_file(source: &Path, target: &Path) -> Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    File::create(target).with_context(|| format!("creating {}", target.display()))?;
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )?;
    Ok(())
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
