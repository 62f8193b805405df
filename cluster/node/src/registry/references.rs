//! Which image each pulled reference names, kept in the store so that `IfNotPresent` finds an
//! image after a restart and `cargo xtask images list` can say where each came from. One file
//! per reference, named by the reference's digest and replaced by a rename, so readers never
//! see half a record and two clusters sharing the store never corrupt each other's.

use std::fs;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::digest::{sha256_digest, sha256_hex};
use super::store::PullStore;

/// A reference and the image it named when last pulled (or loaded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceRecord {
    /// The normalized reference (`docker.io/library/nginx:latest`).
    pub reference: String,
    /// The image's manifest digest (for an index, the host platform's manifest).
    pub digest: String,
    /// The digest the registry named it by (an index's), when that is another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_digest: Option<String>,
    /// Where it came from: `registry docker.io`, `mirror mirror.gcr.io`, `archive nginx.tar`.
    pub source: String,
}

impl PullStore {
    /// Records that `record.reference` names `record.digest`.
    pub fn record_reference(&self, record: &ReferenceRecord) -> Result<()> {
        let path = self.reference_path(&record.reference)?;
        let temp = self.temp_path("reference");
        fs::write(&temp, serde_json::to_vec(record)?)
            .with_context(|| format!("writing {}", temp.display()))?;
        fs::rename(&temp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// What `reference` (normalized) names, if it was pulled and its image is still stored.
    pub fn reference(&self, reference: &str) -> Result<Option<ReferenceRecord>> {
        let path = self.reference_path(reference)?;
        let Some(record) = read_record(&path)? else {
            return Ok(None);
        };
        Ok(self.image(&record.digest)?.map(|_| record))
    }

    /// Every recorded reference, sorted.
    pub fn references(&self) -> Result<Vec<ReferenceRecord>> {
        let dir = self.root().join("references");
        let mut records = Vec::new();
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            if let Some(record) = read_record(&entry?.path())? {
                records.push(record);
            }
        }
        records.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(records)
    }

    /// Forgets `reference`.
    pub fn remove_reference(&self, reference: &str) -> Result<()> {
        let path = self.reference_path(reference)?;
        match fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(error).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }

    fn reference_path(&self, reference: &str) -> Result<std::path::PathBuf> {
        let digest = sha256_digest(reference.as_bytes());
        Ok(self.root().join("references").join(sha256_hex(&digest)?))
    }
}

fn read_record(path: &std::path::Path) -> Result<Option<ReferenceRecord>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", path.display()))?,
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}
