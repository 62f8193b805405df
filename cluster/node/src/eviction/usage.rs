//! Measuring what a pod uses of the node's disk, as `du -x -s -B1` would: the blocks of every
//! file and directory below a directory (a file with several hard links once), not crossing
//! into another filesystem (a memory-backed emptyDir, a mount made below).
//!
//! The directories measured are written by the pod's containers, which may swap a directory
//! for a symlink to anywhere on the machine while the walk runs. So the walk never resolves a
//! path: it opens each directory relative to its parent's descriptor without following a
//! symlink, and climbs back with `..`, checking that it arrives where it came from (as GNU
//! fts does); a tree that moved under it ends the walk with what was counted so far. Only one
//! directory is open at a time, however deep the tree.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

use super::decide::PodUsage;
use super::limits::StorageLimits;

/// The directories of a pod that hold what it writes: its sandbox directory and the bundle
/// of each container's current attempt.
#[derive(Debug, Clone)]
pub struct PodDirs {
    /// `<state dir>/pods/<uid>`.
    pub sandbox: PathBuf,
    /// Each container's bundle directory, by container name, once it has started.
    pub bundles: Vec<(String, PathBuf)>,
}

/// Measures the pod's usage: its disk-backed emptyDirs, each container's writable layer and
/// logs, and the files the node writes for it.
pub fn measure(dirs: &PodDirs, limits: &StorageLimits) -> PodUsage {
    let volumes = limits
        .empty_dirs
        .iter()
        .map(|(name, _)| {
            let dir = dirs.sandbox.join("volumes").join(name);
            (name.clone(), disk_usage(&dir))
        })
        .collect();
    let containers = limits
        .containers
        .iter()
        .map(|(name, _)| {
            let logs = disk_usage(&crate::containers::log_dir(&dirs.sandbox, name));
            let layer = dirs
                .bundles
                .iter()
                .find(|(container, _)| container == name)
                .map_or(0, |(_, bundle)| {
                    disk_usage(&crate::runtime::writable_layer(bundle))
                });
            (name.clone(), logs + layer)
        })
        .collect();
    PodUsage {
        volumes,
        containers,
        node_files: disk_usage(&dirs.sandbox.join("etc")),
    }
}

/// One directory on the way down: who it is, and its subdirectories still to visit.
struct Level {
    identity: (u64, u64),
    pending: Vec<OsString>,
}

/// The bytes of disk the tree at `root` takes (0 if it does not exist).
pub fn disk_usage(root: &Path) -> u64 {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let Ok(mut current) = open(root, flags, Mode::empty()) else {
        return 0;
    };
    let Ok(stat) = fstat(&current) else {
        return 0;
    };
    let device = stat.st_dev;
    let mut counted = Counted::default();
    let mut total = blocks(&stat);
    let mut stack = vec![Level {
        identity: identity(&stat),
        pending: list(&current, device, &mut counted, &mut total),
    }];
    while let Some(top) = stack.last_mut() {
        if let Some(name) = top.pending.pop() {
            let Ok(child) = openat(&current, name.as_os_str(), flags, Mode::empty()) else {
                continue; // gone, or now a symlink
            };
            let Ok(stat) = fstat(&child) else { continue };
            if stat.st_dev != device {
                continue;
            }
            total += blocks(&stat);
            let pending = list(&child, device, &mut counted, &mut total);
            stack.push(Level {
                identity: identity(&stat),
                pending,
            });
            current = child;
            continue;
        }
        stack.pop();
        let Some(parent) = stack.last() else { break };
        let Ok(up) = openat(&current, "..", flags, Mode::empty()) else {
            break;
        };
        if fstat(&up).map(|stat| identity(&stat)).ok() != Some(parent.identity) {
            tracing::debug!("{} changed while it was measured", root.display());
            break;
        }
        current = up;
    }
    total
}

/// Files with more than one link already counted, by device and inode.
type Counted = HashSet<(u64, u64)>;

/// Counts the blocks of a directory's entries that are not directories, and returns the names
/// of its subdirectories on the same filesystem.
fn list(dir: &OwnedFd, device: u64, counted: &mut Counted, total: &mut u64) -> Vec<OsString> {
    // The descriptor's own entry in /proc names the directory that was opened, whatever
    // happened to its path since.
    let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
        return Vec::new();
    };
    let mut subdirectories = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Ok(stat) = fstatat(dir, Path::new(&name), AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFDIR {
            if stat.st_dev == device {
                subdirectories.push(name);
            }
        } else if stat.st_nlink <= 1 || counted.insert(identity(&stat)) {
            *total += blocks(&stat);
        }
    }
    subdirectories
}

fn identity(stat: &FileStat) -> (u64, u64) {
    (stat.st_dev, stat.st_ino)
}

/// `st_blocks` counts 512-byte units, whatever the filesystem's block size.
fn blocks(stat: &FileStat) -> u64 {
    u64::try_from(stat.st_blocks).unwrap_or(0) * 512
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("k8s-labs-usage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn counts_blocks_below_and_hard_links_once_but_never_follows_a_symlink() {
        let dir = scratch("tree");
        std::fs::create_dir_all(dir.join("a/b/c")).unwrap();
        std::fs::write(dir.join("a/b/c/data"), vec![1u8; 1 << 20]).unwrap();
        std::fs::hard_link(dir.join("a/b/c/data"), dir.join("a/again")).unwrap();
        // A sparse file takes no blocks for its hole.
        let sparse = std::fs::File::create(dir.join("sparse")).unwrap();
        sparse.set_len(1 << 30).unwrap();
        // Symlinks to the machine's directories count as themselves, not what they name.
        std::os::unix::fs::symlink("/usr", dir.join("a/usr")).unwrap();
        let used = disk_usage(&dir);
        assert!((1 << 20..(1 << 20) + (64 << 10)).contains(&used), "{used}");
        assert_eq!(disk_usage(&dir.join("missing")), 0);
        // A symlink as the root is not followed either.
        std::os::unix::fs::symlink("/usr", dir.join("link")).unwrap();
        assert_eq!(disk_usage(&dir.join("link")), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_filesystem_below_is_not_counted() {
        use nix::mount::{MntFlags, MsFlags, mount, umount2};
        let dir = scratch("mount");
        std::fs::create_dir_all(dir.join("memory")).unwrap();
        mount(
            Some("tmpfs"),
            &dir.join("memory"),
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=4m"),
        )
        .unwrap();
        std::fs::write(dir.join("memory/data"), vec![1u8; 2 << 20]).unwrap();
        let used = disk_usage(&dir);
        umount2(&dir.join("memory"), MntFlags::MNT_DETACH).unwrap();
        assert!(used < 64 << 10, "{used}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_deep_tree_is_measured_to_the_bottom() {
        let dir = scratch("deep");
        let mut path = dir.clone();
        for _ in 0..200 {
            path.push("d");
        }
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("data"), vec![1u8; 256 << 10]).unwrap();
        let used = disk_usage(&dir);
        assert!(used >= 256 << 10, "{used}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
