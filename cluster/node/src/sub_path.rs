//! `subPath` volume mounts, made safe the way the kubelet made them after CVE-2017-1002101 and
//! CVE-2021-25741: the path is opened below its volume one component at a time, never
//! following a symlink (a container may have planted one in the volume, pointing anywhere on
//! the machine), missing directories are created as it goes, and what was opened is
//! bind-mounted through its file descriptor onto a private mount point, which the container
//! then gets. Swapping a directory for a symlink after the check changes nothing: the mount is
//! of what was opened.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, mkdirat};

/// Mounts `sub_path` of the volume at `volume` onto `mount_point` (created, as a directory or
/// an empty file like what it mounts). Fails if a component is a symlink, a component before
/// the last is not a directory, or the path climbs out (`..`, which the API server refuses).
/// Missing directories are created, as the kubelet creates a missing subPath.
pub fn mount_sub_path(volume: &Path, sub_path: &str, mount_point: &Path) -> Result<()> {
    mount_below(volume, sub_path, true, mount_point, None)
}

/// [`mount_sub_path`] for any path below `root` (the node's root directory for `hostPath`),
/// creating missing directories only when `create_missing`; idmapped through the user
/// namespace `idmap` when given (see [`crate::idmap`]).
pub fn mount_below(
    root: &Path,
    path: &str,
    create_missing: bool,
    mount_point: &Path,
    idmap: Option<&File>,
) -> Result<()> {
    let opened = open_below(root, path, create_missing)?;
    let is_dir = File::from(opened.try_clone()?)
        .metadata()
        .context("reading what the subPath names")?
        .is_dir();
    if let Some(parent) = mount_point.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if is_dir {
        std::fs::create_dir_all(mount_point)?;
    } else {
        File::create(mount_point)?;
    }
    let source = format!("/proc/self/fd/{}", opened.as_raw_fd());
    if let Some(userns) = idmap {
        return crate::idmap::bind_idmapped(Path::new(&source), mount_point, userns)
            .with_context(|| format!("mounting {path:?} onto {}", mount_point.display()));
    }
    mount(
        Some(source.as_str()),
        mount_point,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind-mounting {path:?} onto {}", mount_point.display()))
}

/// An `O_PATH` descriptor of `sub_path` below `volume`, reached without following symlinks.
fn open_below(volume: &Path, sub_path: &str, create_missing: bool) -> Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut current = open(volume, flags | OFlag::O_DIRECTORY, Mode::empty())
        .with_context(|| format!("opening volume directory {}", volume.display()))?;
    let components: Vec<&str> = sub_path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if components.contains(&"..") {
        bail!("subPath {sub_path:?} must not contain '..'");
    }
    for (index, component) in components.iter().enumerate() {
        let last = index + 1 == components.len();
        let next = match openat(&current, *component, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create_missing => {
                bail!("{sub_path:?} does not exist ({component:?} is missing)");
            }
            Err(Errno::ENOENT) => {
                // mkdirat does not follow a symlink in the last component either.
                mkdirat(&current, *component, Mode::from_bits_truncate(0o755))
                    .or_else(|error| {
                        if error == Errno::EEXIST {
                            Ok(())
                        } else {
                            Err(error)
                        }
                    })
                    .with_context(|| format!("creating {component:?} of subPath {sub_path:?}"))?;
                openat(
                    &current,
                    *component,
                    flags | OFlag::O_DIRECTORY,
                    Mode::empty(),
                )
                .with_context(|| format!("opening {component:?} of subPath {sub_path:?}"))?
            }
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("opening {component:?} of subPath {sub_path:?}"));
            }
        };
        let file_type = File::from(next.try_clone()?).metadata()?.file_type();
        if file_type.is_symlink() {
            bail!(
                "subPath {sub_path:?}: {component:?} is a symlink, which may point out of the volume"
            );
        }
        if !last && !file_type.is_dir() {
            bail!("subPath {sub_path:?}: {component:?} is not a directory");
        }
        current = next;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sub-path-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn creates_missing_directories_and_refuses_symlinks_anywhere_on_the_way() {
        let volume = scratch("volume");
        assert!(open_below(&volume, "a/b/c", false).is_err());
        open_below(&volume, "a/b/c", true).unwrap();
        assert!(volume.join("a/b/c").is_dir());
        std::os::unix::fs::symlink("/etc", volume.join("escape")).unwrap();
        std::os::unix::fs::symlink("/etc", volume.join("a/inner")).unwrap();
        for bad in [
            "escape",
            "escape/passwd",
            "a/inner",
            "a/inner/x",
            "../x",
            "a/../../x",
        ] {
            assert!(open_below(&volume, bad, true).is_err(), "{bad}");
        }
        std::fs::write(volume.join("file"), "x").unwrap();
        assert!(open_below(&volume, "file", false).is_ok());
        assert!(open_below(&volume, "", false).is_ok(), "the root itself");
        assert!(open_below(&volume, "file/below", true).is_err());
        std::fs::remove_dir_all(&volume).unwrap();
    }
}
