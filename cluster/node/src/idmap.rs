//! Idmapped bind mounts (Linux 5.12, `mount_setattr(MOUNT_ATTR_IDMAP)`): a view of a directory
//! or file whose owners are shifted through a user namespace's id map. A pod in its own user
//! namespace sees its image and volumes owned by its own root (on disk they stay owned by
//! 0 … 65535, so an image is shared by every pod and a volume keeps working when the pod is
//! recreated with another id range), with no copy and no chown.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use anyhow::{Context, Result};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Mounts `source` at `target` (an existing directory, or file for a file) with its ids
/// mapped through the user namespace `userns`.
pub fn bind_idmapped(source: &Path, target: &Path, userns: &File) -> Result<()> {
    let source_c = CString::new(source.as_os_str().as_bytes())?;
    let target_c = CString::new(target.as_os_str().as_bytes())?;
    // SAFETY: plain system calls on valid NUL-terminated paths and a struct that outlives
    // them; every result is checked.
    unsafe {
        let tree = libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            source_c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        );
        if tree < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cloning the mount of {}", source.display()));
        }
        let tree = OwnedFd::from_raw_fd(tree as i32);
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_raw_fd() as u64,
        };
        if libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        ) < 0
        {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("idmapping the mount of {}", source.display()));
        }
        if libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target_c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        ) < 0
        {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("mounting {} at {}", source.display(), target.display()));
        }
    }
    Ok(())
}
