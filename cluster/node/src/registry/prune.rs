//! Removing from the [`PullStore`] what no running container needs, as `crictl rmi --prune`
//! does: every image no container uses, with its references, then every blob and unpacked
//! layer no remaining image uses.
//!
//! Whether a container uses an image is read from the kernel's mount table, not from a
//! cluster's state, so that it holds for every cluster sharing the store, including one that
//! crashed and left its mounts: the node mounts each container's root as an overlay whose
//! lower directories are the image's layers (`lowerdir=` in the overlay's options), or, in a
//! user namespace, idmapped bind mounts of them (the mount's root field). A layer named there
//! (root, mount point or lower directory) is in use, and so is an image all of whose layers
//! are (an image whose layers are all another's running image's is kept too: a prune may
//! keep too much, never too little).
//!
//! An image, layer or blob goes by a rename into `tmp/`, so that a cluster looking it up sees
//! it whole or not at all; a cluster that pulls while this runs may lose blobs it has not
//! built an image from yet, and then pulls them again.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use super::digest::sha256_hex;
use super::store::PullStore;
use crate::mounts::unescape_mountinfo;

/// An image of the store and the references that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedImage {
    /// Its manifest's digest.
    pub digest: String,
    /// Its references, sorted.
    pub references: Vec<String>,
}

/// What [`prune_images`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// The images removed, with the references removed with them.
    pub removed: Vec<NamedImage>,
    /// The images kept because a running container uses them.
    pub in_use: Vec<NamedImage>,
    /// References removed because their image was gone already.
    pub dangling: Vec<String>,
    /// How many blobs were removed.
    pub blobs: usize,
    /// How many unpacked layers were removed.
    pub layers: usize,
    /// The disk space freed, in bytes (allocated blocks, each file counted once).
    pub freed: u64,
}

/// The blobs and layers the stored images use, by digest.
#[derive(Debug, Default)]
pub(super) struct Used {
    pub blobs: HashSet<String>,
    pub layers: HashSet<String>,
}

/// Prunes `store` against this mount namespace's mount table. Blocking.
pub fn prune_images(store: &PullStore) -> Result<PruneReport> {
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    prune_with(store, &mountinfo)
}

fn prune_with(store: &PullStore, mountinfo: &str) -> Result<PruneReport> {
    let mounted = Mounted::read(mountinfo, store.root());
    let references = store.references()?;
    let mut report = PruneReport::default();
    let mut counted = HashSet::new();
    for digest in store.image_digests()? {
        let Ok(hex) = sha256_hex(&digest) else {
            continue; // not an image of the store's making
        };
        let named = NamedImage {
            references: references
                .iter()
                .filter(|record| record.digest == digest)
                .map(|record| record.reference.clone())
                .collect(),
            digest: digest.clone(),
        };
        if mounted.uses_image(store, &digest, hex)? {
            report.in_use.push(named);
            continue;
        }
        let dir = store.root().join("images/sha256").join(hex);
        report.freed += remove_tree(store, &dir, &mut counted)?;
        for reference in &named.references {
            store.remove_reference(reference)?;
        }
        report.removed.push(named);
    }
    let stored: HashSet<String> = store.image_digests()?.into_iter().collect();
    for record in store.references()? {
        if !stored.contains(&record.digest) {
            store.remove_reference(&record.reference)?;
            report.dangling.push(record.reference);
        }
    }
    let used = used_by_images(store)?;
    for (digest, path) in entries(store, "blobs/sha256")? {
        if !used.blobs.contains(&digest) {
            report.freed += remove_tree(store, &path, &mut counted)?;
            report.blobs += 1;
        }
    }
    for (digest, path) in entries(store, "layers/sha256")? {
        let hex = sha256_hex(&digest)?;
        if !used.layers.contains(&digest) && !mounted.layers.contains(hex) {
            report.freed += remove_tree(store, &path, &mut counted)?;
            report.layers += 1;
        }
    }
    Ok(report)
}

/// The blobs (manifest, config, layers) and layers of every stored image.
pub(super) fn used_by_images(store: &PullStore) -> Result<Used> {
    let mut used = Used::default();
    for digest in store.image_digests()? {
        if sha256_hex(&digest).is_err() {
            continue;
        }
        let Some(image) = store
            .image(&digest)
            .with_context(|| format!("reading image {digest}"))?
        else {
            continue; // removed meanwhile
        };
        used.blobs.insert(digest);
        used.blobs.insert(image.record.config.clone());
        for layer in image.record.layers {
            used.blobs.insert(layer.clone());
            used.layers.insert(layer);
        }
    }
    Ok(used)
}

/// The entries of `dir` (under the store) named by a digest, with their paths.
fn entries(store: &PullStore, dir: &str) -> Result<Vec<(String, PathBuf)>> {
    let dir = store.root().join(dir);
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if let Some(name) = entry.file_name().to_str() {
            let digest = format!("sha256:{name}");
            if sha256_hex(&digest).is_ok() {
                found.push((digest, entry.path()));
            }
        }
    }
    Ok(found)
}

/// Moves `path` into `tmp/` (so it disappears at once), then removes it; returns the space
/// its files took.
fn remove_tree(store: &PullStore, path: &Path, counted: &mut HashSet<(u64, u64)>) -> Result<u64> {
    let temp = store.temp_path("prune");
    fs::rename(path, &temp).with_context(|| format!("moving {} away", path.display()))?;
    let size = disk_usage(&temp, counted);
    let removed = if temp.is_dir() {
        fs::remove_dir_all(&temp)
    } else {
        fs::remove_file(&temp)
    };
    removed.with_context(|| format!("removing {}", temp.display()))?;
    Ok(size)
}

/// The blocks allocated under `path`, each inode counted once (hard links).
fn disk_usage(path: &Path, counted: &mut HashSet<(u64, u64)>) -> u64 {
    let Ok(metadata) = fs::symlink_metadata(path) else {
        return 0;
    };
    let mut total = 0;
    if counted.insert((metadata.dev(), metadata.ino())) {
        total += metadata.blocks() * 512;
    }
    if metadata.is_dir()
        && let Ok(children) = fs::read_dir(path)
    {
        for child in children.flatten() {
            total += disk_usage(&child.path(), counted);
        }
    }
    total
}

/// The images and layers of the store that the mount table names, by the hex of their digest.
#[derive(Debug, Default)]
struct Mounted {
    images: HashSet<String>,
    layers: HashSet<String>,
}

impl Mounted {
    /// Whether a container runs image `digest`: its directory or all its layers are mounted.
    fn uses_image(&self, store: &PullStore, digest: &str, hex: &str) -> Result<bool> {
        if self.images.contains(hex) {
            return Ok(true);
        }
        let Some(image) = store.image(digest)? else {
            return Ok(false);
        };
        let layers = &image.record.layers;
        Ok(!layers.is_empty()
            && layers.iter().all(|layer| {
                sha256_hex(layer).is_ok_and(|layer_hex| self.layers.contains(layer_hex))
            }))
    }

    fn read(mountinfo: &str, store_root: &Path) -> Mounted {
        // The mount table has resolved paths.
        let root = store_root
            .canonicalize()
            .unwrap_or_else(|_| store_root.to_path_buf());
        let root = normal_parts(&root);
        let mut mounted = Mounted::default();
        for path in mountinfo.lines().flat_map(mount_paths) {
            match store_item(Path::new(&path), &root) {
                Some(("images", hex)) => mounted.images.insert(hex),
                Some((_, hex)) => mounted.layers.insert(hex),
                None => false,
            };
        }
        mounted
    }
}

/// The paths a mountinfo line names: the mount's root (the directory of its filesystem it
/// shows, the source of a bind mount), its mount point, and an overlay's lower directories.
fn mount_paths(line: &str) -> Vec<String> {
    let fields: Vec<&str> = line.split(' ').collect();
    let mut paths: Vec<String> = fields
        .iter()
        .skip(3)
        .take(2)
        .map(|field| unescape_mountinfo(field))
        .collect();
    // After the optional fields, "-", the filesystem type, the source and its options.
    let Some(separator) = fields.iter().position(|field| *field == "-") else {
        return paths;
    };
    if fields.get(separator + 1) != Some(&"overlay") {
        return paths;
    }
    let options = fields.get(separator + 3).copied().unwrap_or("");
    // A comma inside an option is shown escaped (\054), so the options split at commas.
    for option in options.split(',') {
        let value = ["lowerdir=", "lowerdir+=", "datadir+="]
            .iter()
            .find_map(|key| option.strip_prefix(key));
        if let Some(value) = value {
            paths.extend(lower_dirs(&unescape_mountinfo(value)));
        }
    }
    paths
}

/// The directories of an overlay's `lowerdir` as given at mount time: separated by `:`, with
/// `\` escaping a `:` or `,` inside one.
fn lower_dirs(value: &str) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ':' => dirs.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    dirs.push(current);
    dirs
}

/// Which image or layer of the store `path` is in: `("images" | "layers", hex)` when it has
/// `images/sha256/<hex>` or `layers/sha256/<hex>` after a prefix the store's path ends with.
/// (A mount's root is relative to its filesystem, which may be mounted below `/`, so only the
/// end of the store's path can be compared; a match elsewhere only keeps an image.)
fn store_item(path: &Path, root: &[&OsStr]) -> Option<(&'static str, String)> {
    let parts = normal_parts(path);
    for index in 0..parts.len().saturating_sub(2) {
        let kind = match parts[index].to_str() {
            Some("images") => "images",
            Some("layers") => "layers",
            _ => continue,
        };
        let Some(hex) = parts[index + 2].to_str() else {
            continue;
        };
        if parts[index + 1] == "sha256"
            && sha256_hex(&format!("sha256:{hex}")).is_ok()
            && root.ends_with(&parts[..index])
        {
            return Some((kind, hex.to_string()));
        }
    }
    None
}

fn normal_parts(path: &Path) -> Vec<&OsStr> {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[path = "prune_tests.rs"]
mod tests;
