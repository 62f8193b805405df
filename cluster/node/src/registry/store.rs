//! The pulled-image store, content-addressed under a directory the caller chooses:
//!
//! ```text
//! blobs/sha256/<hex>                 manifests' config and layer blobs, checked against <hex>
//! layers/sha256/<hex>/              a layer blob unpacked alone, whiteouts as overlayfs marks
//! images/sha256/<hex>/config.json    an image's config blob, by its manifest's digest
//! images/sha256/<hex>/image.json     its layers and size (see [`ImageRecord`])
//! empty/                             the root of an image without layers
//! references/<sha256 of reference>   which image a reference names (see [`super::references`])
//! tmp/<pid>/                         what process <pid> is writing; removed once it is gone
//! ```
//!
//! Everything is written under `tmp/` and renamed into place once complete, so a pull that is
//! interrupted (a crash, a kill, a full disk) leaves nothing that a later start would take for
//! a whole blob or image. A layer shared by two images is downloaded and stored once. Several
//! processes (clusters) may share one store: each writes under its own `tmp/<pid>`, and a
//! rename that finds its target already made by another keeps that one.
//!
//! An image has no root filesystem of its own: a container's root is an overlay of the
//! image's layer directories, as containerd's overlayfs snapshotter makes it, so a layer
//! shared by two images is unpacked once and on disk once.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::config::ImageConfig;
use super::digest::{sha256_hex, verify_file};
use super::layer::{Whiteouts, apply_layer};

/// An image in the store, ready for a container to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// The digest of the image's manifest (for an index, the host platform's manifest).
    pub digest: String,
    /// The digest the registry named the image by: the index's for a multi-platform image
    /// (what containerd reports as the repo digest, and the kubelet as `imageID`), else
    /// `digest`.
    pub repo_digest: String,
    /// Its layers unpacked, lowest first: an overlay's lower directories (whiteouts as
    /// overlayfs marks them). An image without layers has one empty directory.
    pub layers: Vec<PathBuf>,
    /// How its containers start.
    pub config: ImageConfig,
    /// Its layers and size.
    pub record: ImageRecord,
}

/// What the store keeps about an image besides its config and root filesystem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Its config blob's digest.
    pub config: String,
    /// Its layer blobs' digests, lowest first.
    pub layers: Vec<String>,
    /// The size the kubelet reports (`Image size: … bytes`): config and layer blobs as
    /// stored, compressed, as containerd counts an image's size.
    pub size: u64,
}

/// The store's directory.
#[derive(Debug, Clone)]
pub struct PullStore {
    root: PathBuf,
}

impl PullStore {
    /// Opens (creating) the store at `root`, removing what interrupted pulls of processes
    /// that are gone left in `tmp/`.
    pub fn open(root: &Path) -> Result<PullStore> {
        let store = PullStore {
            root: root.to_path_buf(),
        };
        for dir in [
            "blobs/sha256",
            "layers/sha256",
            "images/sha256",
            "references",
            "tmp",
            "empty",
        ] {
            let path = store.root.join(dir);
            fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        }
        store.remove_abandoned_temps()?;
        Ok(store)
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes `tmp/<pid>` of every process that no longer runs. This process's own is kept:
    /// another handle of this process may be writing in it.
    fn remove_abandoned_temps(&self) -> Result<()> {
        let tmp = self.root.join("tmp");
        for entry in fs::read_dir(&tmp).with_context(|| format!("reading {}", tmp.display()))? {
            let entry = entry?;
            let name = entry.file_name();
            let alive = name
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
                .is_some_and(|pid| {
                    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
                });
            if !alive {
                let path = entry.path();
                let removed = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed.with_context(|| format!("removing {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// Where the blob `digest` is (or would be) stored.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("blobs/sha256").join(sha256_hex(digest)?))
    }

    /// Whether the blob `digest` is stored.
    pub fn has_blob(&self, digest: &str) -> Result<bool> {
        Ok(self.blob_path(digest)?.is_file())
    }

    /// A fresh path under this process's `tmp/<pid>/` to write something into before
    /// committing it.
    pub fn temp_path(&self, label: &str) -> PathBuf {
        let unique: u64 = rand::random();
        let dir = self.root.join("tmp").join(std::process::id().to_string());
        // A failure shows when the caller writes to the path.
        let _ = fs::create_dir_all(&dir);
        dir.join(format!("{label}-{unique:016x}"))
    }

    /// Takes the file at `temp` in as the blob `digest` once its content has that digest;
    /// otherwise removes it and fails.
    pub fn commit_blob(&self, temp: &Path, digest: &str) -> Result<PathBuf> {
        let path = self.blob_path(digest)?;
        if let Err(error) = verify_file(temp, digest) {
            let _ = fs::remove_file(temp);
            return Err(error);
        }
        fs::rename(temp, &path).with_context(|| format!("storing blob {digest}"))?;
        Ok(path)
    }

    /// Unpacks the stored layer blob `digest` into its own directory, unless that is done
    /// already; returns the directory. Blocking: run it off the async runtime.
    pub fn unpack_layer(&self, digest: &str) -> Result<PathBuf> {
        let dir = self.layer_dir(digest)?;
        if dir.is_dir() {
            return Ok(dir);
        }
        let temp = self.temp_path("layer");
        let result = fs::create_dir(&temp)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                Ok(fs::set_permissions(
                    &temp,
                    fs::Permissions::from_mode(0o755),
                )?)
            })
            .and_then(|()| apply_layer(&self.blob_path(digest)?, &temp, Whiteouts::Overlay));
        if let Err(error) = result {
            let _ = fs::remove_dir_all(&temp);
            return Err(error.context(format!("unpacking layer {digest}")));
        }
        if let Err(error) = fs::rename(&temp, &dir) {
            let _ = fs::remove_dir_all(&temp);
            // Another pull unpacked the same layer first: use its directory.
            if !dir.is_dir() {
                return Err(error).context(format!("storing layer {digest}"));
            }
        }
        Ok(dir)
    }

    /// The image whose manifest has `digest`, if it is stored with all its layers.
    pub fn image(&self, digest: &str) -> Result<Option<StoredImage>> {
        let dir = self.root.join("images/sha256").join(sha256_hex(digest)?);
        if !dir.is_dir() {
            return Ok(None);
        }
        let config_path = dir.join("config.json");
        let config =
            fs::read(&config_path).with_context(|| format!("reading {}", config_path.display()))?;
        let record_path = dir.join("image.json");
        let record =
            fs::read(&record_path).with_context(|| format!("reading {}", record_path.display()))?;
        let record: ImageRecord = serde_json::from_slice(&record)
            .with_context(|| format!("parsing {}", record_path.display()))?;
        let mut layers = Vec::with_capacity(record.layers.len());
        for layer in &record.layers {
            let path = self.layer_dir(layer)?;
            if !path.is_dir() {
                // A layer removed under the image (a prune racing a pull): pull it again.
                return Ok(None);
            }
            layers.push(path);
        }
        if layers.is_empty() {
            layers.push(self.root.join("empty"));
        }
        Ok(Some(StoredImage {
            digest: digest.to_string(),
            repo_digest: digest.to_string(),
            layers,
            config: ImageConfig::from_blob(&config)?,
            record,
        }))
    }

    /// Where the layer blob `digest` is (or would be) unpacked.
    pub fn layer_dir(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("layers/sha256").join(sha256_hex(digest)?))
    }

    /// The digests of every stored image.
    pub fn image_digests(&self) -> Result<Vec<String>> {
        let dir = self.root.join("images/sha256");
        let mut digests = Vec::new();
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            if let Some(hex) = entry?.file_name().to_str() {
                digests.push(format!("sha256:{hex}"));
            }
        }
        digests.sort();
        Ok(digests)
    }

    /// Records the image `digest` made of its stored config blob and unpacked layers (see
    /// [`PullStore::unpack_layer`]), unless it is stored already. Blocking: run it off the
    /// async runtime.
    pub fn build_image(
        &self,
        digest: &str,
        config: &str,
        layers: &[String],
    ) -> Result<StoredImage> {
        if let Some(image) = self.image(digest)? {
            return Ok(image);
        }
        let temp = self.temp_path("image");
        let result = fs::create_dir_all(&temp)
            .map_err(anyhow::Error::from)
            .and_then(|()| self.build_into(&temp, config, layers));
        if let Err(error) = result {
            let _ = fs::remove_dir_all(&temp);
            return Err(error.context(format!("storing image {digest}")));
        }
        let dir = self.root.join("images/sha256").join(sha256_hex(digest)?);
        if let Err(error) = fs::rename(&temp, &dir) {
            let _ = fs::remove_dir_all(&temp);
            // Another pull of the same image finished first: use its copy.
            if !dir.is_dir() {
                return Err(error).context(format!("storing image {digest}"));
            }
        }
        self.image(digest)?
            .with_context(|| format!("image {digest} vanished from the store"))
    }

    fn build_into(&self, temp: &Path, config: &str, layers: &[String]) -> Result<()> {
        for layer in layers {
            if !self.layer_dir(layer)?.is_dir() {
                anyhow::bail!("layer {layer} is not unpacked");
            }
        }
        fs::copy(self.blob_path(config)?, temp.join("config.json"))
            .context("copying the image's config")?;
        let mut size = 0;
        for blob in layers.iter().chain([&config.to_string()]) {
            size += fs::metadata(self.blob_path(blob)?)?.len();
        }
        let record = ImageRecord {
            config: config.to_string(),
            layers: layers.to_vec(),
            size,
        };
        fs::write(temp.join("image.json"), serde_json::to_vec(&record)?)
            .context("writing the image's record")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::digest::sha256_digest;
    use super::*;

    #[test]
    fn commits_only_blobs_whose_digest_matches_and_cleans_tmp() {
        let dir = std::env::temp_dir().join(format!("pull-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = PullStore::open(&dir).unwrap();
        let temp = store.temp_path("blob");
        fs::write(&temp, b"layer").unwrap();
        let wrong = sha256_digest(b"other");
        let error = store.commit_blob(&temp, &wrong).unwrap_err();
        assert!(error.to_string().contains("digest mismatch"), "{error}");
        assert!(!temp.exists() && !store.has_blob(&wrong).unwrap());
        let temp = store.temp_path("blob");
        fs::write(&temp, b"layer").unwrap();
        let right = sha256_digest(b"layer");
        store.commit_blob(&temp, &right).unwrap();
        assert!(store.has_blob(&right).unwrap());
        // What an interrupted pull of a process that is gone left is removed when the store
        // opens again (no process has a pid above the kernel's limit of 2^22).
        let leftover = dir.join("tmp/99999999/image-0");
        fs::create_dir_all(&leftover).unwrap();
        let in_flight = store.temp_path("image");
        fs::create_dir(&in_flight).unwrap();
        let store = PullStore::open(&dir).unwrap();
        assert!(!leftover.exists() && store.has_blob(&right).unwrap());
        assert!(
            in_flight.exists(),
            "this process's own temporaries are kept"
        );
        assert!(store.blob_path("sha256:../../x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
