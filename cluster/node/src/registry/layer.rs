//! Applies an image layer (a tar, gzip'd, zstd'd or plain) onto a root filesystem, as
//! containerd's and Docker's appliers do: entries are written in order, `.wh.<name>` deletes
//! `<name>` from the layers below, and `.wh..wh..opq` empties its directory of what the layers
//! below put there. Modes, numeric owners, symlinks and hard links are kept. Or unpacks a layer
//! into its own directory with its whiteouts in overlayfs's form, as containerd's overlayfs
//! snapshotter does, so that the directory can serve as an overlay's lower layer.
//!
//! A layer is data from the network, so no entry may write outside the root: absolute paths
//! and `..` are refused, and every path is resolved (symlinks of lower layers included) and
//! checked to stay inside the root before anything is created or removed there.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The prefix of a whiteout: `.wh.name` deletes `name`.
const WHITEOUT_PREFIX: &str = ".wh.";
/// The marker of an opaque directory.
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What the whiteouts of a layer do where it is unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// `root` holds the layers below: whiteouts delete from them.
    Apply,
    /// `root` is the layer's own directory: whiteouts are marked as overlayfs marks them, a
    /// 0/0 character device for a deleted name and `trusted.overlay.opaque=y` on an opaque
    /// directory (both need root).
    Overlay,
}

/// Applies the layer blob at `blob` onto `root`.
pub fn apply_layer(blob: &Path, root: &Path, whiteouts: Whiteouts) -> Result<()> {
    let file = fs::File::open(blob).with_context(|| format!("opening {}", blob.display()))?;
    let root = root
        .canonicalize()
        .with_context(|| format!("resolving {}", root.display()))?;
    let mut archive = tar::Archive::new(decompressed(file)?);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    // Paths this layer wrote: an opaque marker hides only what lower layers put there.
    let mut unpacked = HashSet::new();
    for entry in archive.entries().context("reading the layer's tar")? {
        let mut entry = entry.context("reading the layer's tar")?;
        let raw = entry
            .path()
            .context("reading a tar entry's path")?
            .into_owned();
        let path = relative_path(&raw)?;
        let Some(name) = path.file_name().and_then(OsStr::to_str).map(str::to_owned) else {
            continue; // "./": the root itself.
        };
        let parent = path.parent().unwrap_or(Path::new(""));
        if name == OPAQUE_MARKER && whiteouts == Whiteouts::Apply {
            make_opaque(&root, parent, &unpacked)?;
        } else if name == OPAQUE_MARKER {
            overlay::mark_opaque(&root, parent)?;
        } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let hidden = parent.join(hidden);
            if whiteouts == Whiteouts::Overlay {
                overlay::mark_deleted(&root, &hidden)?;
            } else if let Some(target) = resolve_inside(&root, &hidden)? {
                remove_any(&target)?;
            }
        } else {
            let is_dir = entry.header().entry_type().is_dir();
            if let Some(target) = resolve_inside(&root, &path)? {
                clear_for(&target, is_dir)?;
            }
            let written = entry
                .unpack_in(&root)
                .with_context(|| format!("unpacking {}", raw.display()))?;
            if !written {
                bail!(
                    "layer entry {} would be written outside the root",
                    raw.display()
                );
            }
            unpacked.insert(path);
        }
    }
    Ok(())
}

/// How a layer blob (or an image archive) is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Sniffed from the magic bytes at the start of the content, as Docker does, rather than
    /// trusted from a media type.
    pub(super) fn of(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// A reader of the tar in `file`, whatever the compression.
pub(super) fn decompressed(file: fs::File) -> Result<Box<dyn Read>> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let head = reader.fill_buf().context("reading the first bytes")?;
    Ok(match Compression::of(head) {
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(reader)),
        Compression::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(reader)
                .map_err(|error| anyhow::anyhow!("reading the zstd header: {error}"))?;
            Box::new(decoder)
        }
        Compression::None => Box::new(reader),
    })
}

/// The entry's path relative to the root; absolute paths and `..` are refused.
fn relative_path(path: &Path) -> Result<PathBuf> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                bail!("layer entry {} has an absolute path", path.display())
            }
            Component::ParentDir => bail!("layer entry {} contains '..'", path.display()),
        }
    }
    Ok(relative)
}

/// Where `path` is under `root` once its parent's symlinks are resolved; `None` when the parent
/// does not exist yet (nothing there to remove). An error when it resolves outside the root.
pub(super) fn resolve_inside(root: &Path, path: &Path) -> Result<Option<PathBuf>> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(None);
    };
    let parent = match root.join(parent).canonicalize() {
        Ok(parent) => parent,
        Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(None);
        }
        Err(error) => return Err(error).context(format!("resolving {}", parent.display())),
    };
    if !parent.starts_with(root) {
        bail!("layer entry {} resolves outside the root", path.display());
    }
    Ok(Some(parent.join(name)))
}

/// Removes what stands where an entry goes, unless it is a directory and so is the entry
/// (directories merge across layers; anything else is replaced).
pub(super) fn clear_for(target: &Path, entry_is_dir: bool) -> Result<()> {
    match fs::symlink_metadata(target) {
        Ok(metadata) if metadata.is_dir() && entry_is_dir => Ok(()),
        Ok(_) => remove_any(target),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).context(format!("inspecting {}", target.display())),
    }
}

/// Removes a file, a symlink (not what it points to) or a directory tree.
fn remove_any(target: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(target) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(target),
        Ok(_) => fs::remove_file(target),
        Err(error) => Err(error),
    };
    match result {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            Err(error).context(format!("removing {}", target.display()))
        }
        _ => Ok(()),
    }
}

/// Empties `dir` of everything this layer did not write itself.
fn make_opaque(root: &Path, dir: &Path, unpacked: &HashSet<PathBuf>) -> Result<()> {
    let target = if dir.as_os_str().is_empty() {
        Some(root.to_path_buf())
    } else {
        resolve_inside(root, dir)?
    };
    match target {
        Some(target) if target.is_dir() => prune(&target, dir, unpacked),
        _ => Ok(()),
    }
}

fn prune(target: &Path, relative: &Path, unpacked: &HashSet<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(target).with_context(|| format!("listing {}", target.display()))?;
    for child in entries {
        let child = child.with_context(|| format!("listing {}", target.display()))?;
        let child_relative = relative.join(child.file_name());
        let child_path = child.path();
        if !unpacked.contains(&child_relative) {
            remove_any(&child_path)?;
        } else if child.file_type().is_ok_and(|kind| kind.is_dir()) {
            // Written by this layer over a lower directory: lower contents go too.
            prune(&child_path, &child_relative, unpacked)?;
        }
    }
    Ok(())
}

#[path = "layer_overlay.rs"]
mod overlay;

#[cfg(test)]
#[path = "layer_tests.rs"]
mod tests;
