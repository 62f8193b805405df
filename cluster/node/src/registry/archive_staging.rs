//! An image archive read in one pass, as it streams: each file's content written once, under
//! the store's `tmp/<pid>/`, with its digest computed on the way, so that a blob is later
//! taken into the store by a rename rather than a second copy. The archive's order does not
//! matter (`docker save` writes `manifest.json` last). Blobs the store has already are not
//! written again. Everything left here is removed when the staging is dropped, whatever
//! happened, so a failed load leaves nothing behind.

use std::collections::HashMap;
use std::fs;
use std::io::{BufWriter, Read};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;

use crate::registry::digest::{DigestingWriter, sha256_hex};
use crate::registry::layer::decompressed;
use crate::registry::store::PullStore;

/// The largest JSON file (manifest, index, config) read into memory.
const MAX_JSON: u64 = 16 << 20;

/// How many symlinks a lookup follows (`docker save` links a shared layer once).
const MAX_LINKS: usize = 8;

/// A file of the archive, written out.
#[derive(Debug, Clone)]
pub(super) struct Staged {
    /// Where its content is: under the staging directory, or the store's blob.
    pub path: PathBuf,
    /// The `sha256:<hex>` digest of its content.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether `path` is the store's blob already (nothing to commit).
    pub in_store: bool,
}

#[derive(Debug)]
enum Entry {
    File(Staged),
    /// A symbolic or hard link, to this path in the archive.
    Link(String),
}

/// The files of one archive, by their path in it (`manifest.json`, `blobs/sha256/<hex>`).
#[derive(Debug)]
pub(super) struct Staging {
    dir: PathBuf,
    entries: HashMap<String, Entry>,
    /// How many files were written out (each gets the next number as its name).
    written: usize,
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Staging {
    /// Reads the archive at `file` (a tar, possibly gzip'd or zstd'd as a whole).
    pub(super) fn read(store: &PullStore, file: &Path) -> Result<Staging> {
        let opened = fs::File::open(file).context("opening it")?;
        let reader = decompressed(opened).context("reading it")?;
        let dir = store.temp_path("load");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut staging = Staging {
            dir,
            entries: HashMap::new(),
            written: 0,
        };
        let mut archive = tar::Archive::new(reader);
        // The tar crate's errors quote the bad header's bytes: they are not repeated here.
        const NOT_A_TAR: &str = "it is not a tar archive (docker save or OCI image layout)";
        let entries = archive.entries().map_err(|_| anyhow::anyhow!(NOT_A_TAR))?;
        let mut last: Option<String> = None;
        for entry in entries {
            let entry = entry.map_err(|_| match &last {
                None => anyhow::anyhow!(NOT_A_TAR),
                Some(last) => anyhow::anyhow!("the archive is truncated or corrupt after {last}"),
            })?;
            if let Some(name) = staging.add(store, entry)? {
                last = Some(name);
            }
        }
        Ok(staging)
    }

    /// Takes one tar entry in; returns its path.
    fn add<R: Read>(
        &mut self,
        store: &PullStore,
        mut entry: tar::Entry<'_, R>,
    ) -> Result<Option<String>> {
        let raw = entry
            .path()
            .context("reading an entry's path")?
            .into_owned();
        let Some(name) = normalize(&raw) else {
            return Ok(None);
        };
        let kind = entry.header().entry_type();
        let staged = if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .with_context(|| format!("reading the link target of {name}"))?
                .with_context(|| format!("link {name} has no target"))?;
            // A symlink is relative to its directory; a hard link names an archive path.
            let base = if kind.is_symlink() {
                Path::new(&name).parent().unwrap_or(Path::new(""))
            } else {
                Path::new("")
            };
            match normalize(&base.join(&target)) {
                Some(target) => Entry::Link(target),
                None => return Ok(Some(name)),
            }
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            Entry::File(self.write(store, &name, &mut entry)?)
        } else {
            return Ok(Some(name));
        };
        self.entries.insert(name.clone(), staged);
        Ok(Some(name))
    }

    /// Writes an entry's content out, computing its digest; a blob the store has is skipped.
    fn write(&mut self, store: &PullStore, name: &str, content: &mut impl Read) -> Result<Staged> {
        if let Some(digest) = named_blob(name)
            && store.has_blob(&digest)?
        {
            let size = std::io::copy(content, &mut std::io::sink())
                .with_context(|| format!("reading {name}"))?;
            return Ok(Staged {
                path: store.blob_path(&digest)?,
                digest,
                size,
                in_store: true,
            });
        }
        let path = self.dir.join(self.written.to_string());
        self.written += 1;
        let file =
            fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut writer = DigestingWriter::new(BufWriter::with_capacity(1 << 16, file));
        std::io::copy(content, &mut writer).with_context(|| format!("reading {name}"))?;
        let (digest, size, buffered) = writer.finish();
        buffered
            .into_inner()
            .map_err(|error| error.into_error())
            .and_then(|file| file.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Staged {
            path,
            digest,
            size,
            in_store: false,
        })
    }

    /// Whether the archive has a file (or link) at `name`.
    pub(super) fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The file at `name`, links followed.
    pub(super) fn file(&self, name: &str) -> Result<&Staged> {
        let mut current = name.to_string();
        for _ in 0..=MAX_LINKS {
            match self.entries.get(&current) {
                Some(Entry::File(staged)) => return Ok(staged),
                Some(Entry::Link(target)) => current = target.clone(),
                None if current == name => bail!("the archive has no file {name}"),
                None => bail!("{name} links to {current}, which the archive does not have"),
            }
        }
        bail!("{name}: too many levels of links")
    }

    /// The blob `digest` (`blobs/sha256/<hex>`), checked to have that digest.
    pub(super) fn blob(&self, digest: &str) -> Result<&Staged> {
        let name = format!("blobs/sha256/{}", sha256_hex(digest)?);
        if !self.has(&name) {
            bail!("blob {digest} is missing from the archive");
        }
        let staged = self.file(&name)?;
        check_digest(&name, staged, digest)?;
        Ok(staged)
    }

    /// The content of the JSON file `staged` (named `what` in errors).
    pub(super) fn bytes(&self, staged: &Staged, what: &str) -> Result<Vec<u8>> {
        if staged.size > MAX_JSON {
            bail!("{what} is {} bytes, too large for JSON", staged.size);
        }
        fs::read(&staged.path).with_context(|| format!("reading {what}"))
    }

    /// The JSON file `staged` (named `what` in errors), parsed.
    pub(super) fn json<T: DeserializeOwned>(&self, staged: &Staged, what: &str) -> Result<T> {
        let bytes = self.bytes(staged, what)?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {what}"))
    }
}

/// Fails unless `staged` (the archive's `name`) has the digest `expected`.
pub(super) fn check_digest(name: &str, staged: &Staged, expected: &str) -> Result<()> {
    if staged.digest != expected {
        bail!(
            "{name}: digest mismatch: expected {expected}, the content has {}",
            staged.digest
        );
    }
    Ok(())
}

/// The digest an archive path names its content by: `blobs/sha256/<hex>` (OCI layouts, and
/// `docker save` since Docker 25) or `<hex>.json` (an older `docker save`'s config).
pub(super) fn named_blob(name: &str) -> Option<String> {
    let hex = name
        .strip_prefix("blobs/sha256/")
        .or_else(|| name.strip_suffix(".json").filter(|hex| !hex.contains('/')))?;
    let digest = format!("sha256:{hex}");
    sha256_hex(&digest).is_ok().then_some(digest)
}

/// An archive path as a key: `./a/b` and `/a/b` are `a/b`; `..` climbs, but not above the
/// archive's root. `None` for the root itself and for paths that climb out of it.
fn normalize(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_are_normalized_and_blobs_named_by_digest() {
        assert_eq!(normalize(Path::new("./index.json")).unwrap(), "index.json");
        assert_eq!(normalize(Path::new("/a/./b")).unwrap(), "a/b");
        assert_eq!(normalize(Path::new("x/../y.tar")).unwrap(), "y.tar");
        assert_eq!(normalize(Path::new("./")), None);
        assert_eq!(normalize(Path::new("../etc")), None);
        let hex = "a".repeat(64);
        let digest = format!("sha256:{hex}");
        assert_eq!(
            named_blob(&format!("blobs/sha256/{hex}")),
            Some(digest.clone())
        );
        assert_eq!(named_blob(&format!("{hex}.json")), Some(digest));
        assert_eq!(named_blob(&format!("x/{hex}.json")), None);
        assert_eq!(named_blob("manifest.json"), None);
        assert_eq!(named_blob(&format!("{hex}/layer.tar")), None);
    }
}
