//! Reading an image's files from its unpacked layers as the container's overlay root shows
//! them, without mounting it: the highest layer that has a path wins, and a whiteout (a
//! character device 0/0, as overlayfs marks a deletion) hides it in every lower layer.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Where `path` (relative to the image's root) is in `layers` (lowest first), or `None`
/// when no layer has it or a whiteout hides it. Directories above `path` are not checked
/// for opaqueness: this is for the image's own well-known files (`etc/passwd`).
pub fn visible(layers: &[PathBuf], path: impl AsRef<Path>) -> Option<PathBuf> {
    for layer in layers.iter().rev() {
        let candidate = layer.join(path.as_ref());
        if let Ok(metadata) = std::fs::symlink_metadata(&candidate) {
            return (!metadata.file_type().is_char_device()).then_some(candidate);
        }
    }
    None
}
