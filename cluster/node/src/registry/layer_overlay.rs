//! Whiteouts in overlayfs's form, for a layer unpacked into its own directory: a deleted name
//! is a character device 0/0, an opaque directory has the xattr `trusted.overlay.opaque=y`.

use std::ffi::CString;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use anyhow::{Context, Result, bail};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use super::{clear_for, resolve_inside};

/// Marks `hidden` (relative to `root`) as deleted from the layers below.
pub fn mark_deleted(root: &Path, hidden: &Path) -> Result<()> {
    if let Some(parent) = hidden.parent() {
        ensure_dirs(root, parent)?;
    }
    let Some(target) = resolve_inside(root, hidden)? else {
        bail!("no directory for whiteout {}", hidden.display());
    };
    clear_for(&target, false)?;
    mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
        .with_context(|| format!("marking {} deleted", target.display()))
}

/// Marks the directory `dir` (relative to `root`) opaque.
pub fn mark_opaque(root: &Path, dir: &Path) -> Result<()> {
    ensure_dirs(root, dir)?;
    let target = root.join(dir);
    let path = CString::new(target.as_os_str().as_bytes())?;
    let name = c"trusted.overlay.opaque";
    // SAFETY: both strings are NUL-terminated and outlive the call; the value is 1 byte.
    let result =
        unsafe { libc::lsetxattr(path.as_ptr(), name.as_ptr(), c"y".as_ptr().cast(), 1, 0) };
    if result != 0 {
        let error = std::io::Error::last_os_error();
        return Err(error).with_context(|| format!("marking {} opaque", target.display()));
    }
    Ok(())
}

/// Creates the directories of `relative` under `root` that do not exist, refusing to go
/// through anything that is not a directory (a symlink could lead outside the root).
fn ensure_dirs(root: &Path, relative: &Path) -> Result<()> {
    let mut path = root.to_path_buf();
    for component in relative.components() {
        let Component::Normal(part) = component else {
            bail!("whiteout path {} is not plain", relative.display());
        };
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => bail!(
                "whiteout path goes through non-directory {}",
                path.display()
            ),
            Err(error) if error.kind() == ErrorKind::NotFound => {
                fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?
            }
            Err(error) => return Err(error).context(format!("inspecting {}", path.display())),
        }
    }
    Ok(())
}
