//! Loading images from archives into the [`PullStore`], as `docker load` and `ctr images
//! import` do, so that pods run them with `imagePullPolicy: IfNotPresent` (or `Never`) and no
//! registry: a `docker save` archive (`manifest.json`) or an OCI image layout archive
//! (`index.json`), either possibly gzip'd as a whole.
//!
//! The archive is read once, as it streams (see [`staging`]); then every image it holds is
//! checked (each blob against its digest, each `docker save` layer against its config's diff
//! id, every blob present) before anything enters the store; then each image's blobs are
//! committed, its layers unpacked, its root filesystem built, and its references recorded with
//! the source `archive <file name>`. An image that fails after that (a full disk) takes back
//! the blobs and layers it added that no other image uses, so a failed load leaves the store
//! as it was.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::prune::used_by_images;
use super::reference::PullReference;
use super::references::ReferenceRecord;
use super::store::{PullStore, StoredImage};

#[path = "archive_docker.rs"]
mod docker;
#[path = "archive_oci.rs"]
mod oci;
#[path = "archive_staging.rs"]
mod staging;

/// How an archive is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The repository (`example.com/app`) for images an OCI archive names only by a tag
    /// (`v1`): they are loaded as `example.com/app:v1`. Without it such an image is refused.
    pub repository: Option<String>,
}

/// An image an archive held, now in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// Its manifest's digest (for a `docker save` archive, of the manifest made for it).
    pub digest: String,
    /// The references it was recorded under, normalized; empty when the archive names none.
    pub references: Vec<String>,
    /// Its size as the store counts it (see [`super::ImageRecord::size`]).
    pub size: u64,
}

/// An image to take in: its manifest, config and layer blobs, and its names.
struct ImagePlan {
    digest: String,
    manifest: Blob,
    config: Blob,
    layers: Vec<Blob>,
    references: Vec<String>,
}

/// A blob to commit, and where its content is.
struct Blob {
    digest: String,
    content: Content,
}

enum Content {
    /// Written out from the archive (or in the store already).
    Staged(staging::Staged),
    /// Made here (the manifest of a `docker save` image).
    Bytes(Vec<u8>),
}

/// Loads the images of the archive `file` into `store`. Errors start with the file's path and
/// say what is wrong with it. Blocking: run it off an async runtime.
pub fn load_archive(
    store: &PullStore,
    file: &Path,
    options: &LoadOptions,
) -> Result<Vec<LoadedImage>> {
    load(store, file, options).with_context(|| file.display().to_string())
}

fn load(store: &PullStore, file: &Path, options: &LoadOptions) -> Result<Vec<LoadedImage>> {
    let staging = staging::Staging::read(store, file)?;
    // Docker 25 and later write both; the OCI index has the images' own manifests.
    let plans = if staging.has("index.json") {
        oci::plans(&staging, options)?
    } else if staging.has("manifest.json") {
        docker::plans(&staging)?
    } else {
        bail!(
            "it is not an image archive: it has neither manifest.json (docker save) nor \
             index.json (OCI image layout)"
        );
    };
    if plans.is_empty() {
        bail!("it holds no image");
    }
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let source = format!("archive {name}");
    let mut loaded = Vec::new();
    for plan in &plans {
        loaded.push(install(store, plan, &source)?);
    }
    Ok(loaded)
}

/// What one image added to the store, to take back if it fails.
#[derive(Default)]
struct Added {
    blobs: Vec<String>,
    layers: Vec<String>,
}

fn install(store: &PullStore, plan: &ImagePlan, source: &str) -> Result<LoadedImage> {
    let mut added = Added::default();
    let image = match install_image(store, plan, &mut added) {
        Ok(image) => image,
        Err(error) => {
            roll_back(store, &added);
            return Err(error.context(format!("storing image {}", plan.digest)));
        }
    };
    for reference in &plan.references {
        store.record_reference(&ReferenceRecord {
            reference: reference.clone(),
            digest: plan.digest.clone(),
            repo_digest: None,
            source: source.to_string(),
        })?;
    }
    Ok(LoadedImage {
        digest: plan.digest.clone(),
        references: plan.references.clone(),
        size: image.record.size,
    })
}

fn install_image(store: &PullStore, plan: &ImagePlan, added: &mut Added) -> Result<StoredImage> {
    for blob in [&plan.manifest, &plan.config]
        .into_iter()
        .chain(&plan.layers)
    {
        commit(store, blob, added)?;
    }
    let layers: Vec<String> = plan.layers.iter().map(|blob| blob.digest.clone()).collect();
    for layer in &layers {
        let existed = store.layer_dir(layer)?.is_dir();
        store.unpack_layer(layer)?;
        if !existed {
            added.layers.push(layer.clone());
        }
    }
    store.build_image(&plan.digest, &plan.config.digest, &layers)
}

/// Commits a blob unless the store has it (the store checks its digest once more).
fn commit(store: &PullStore, blob: &Blob, added: &mut Added) -> Result<()> {
    if store.has_blob(&blob.digest)? {
        return Ok(());
    }
    match &blob.content {
        Content::Staged(staged) if staged.in_store => {
            bail!("blob {} vanished from the store while loading", blob.digest)
        }
        Content::Staged(staged) => store.commit_blob(&staged.path, &blob.digest)?,
        Content::Bytes(bytes) => {
            let temp = store.temp_path("manifest");
            fs::write(&temp, bytes).with_context(|| format!("writing {}", temp.display()))?;
            store.commit_blob(&temp, &blob.digest)?
        }
    };
    added.blobs.push(blob.digest.clone());
    Ok(())
}

/// Removes the blobs and layers a failed image added that no stored image uses.
fn roll_back(store: &PullStore, added: &Added) {
    let Ok(used) = used_by_images(store) else {
        return;
    };
    for blob in added
        .blobs
        .iter()
        .filter(|blob| !used.blobs.contains(*blob))
    {
        if let Ok(path) = store.blob_path(blob) {
            let _ = fs::remove_file(path);
        }
    }
    for layer in added
        .layers
        .iter()
        .filter(|layer| !used.layers.contains(*layer))
    {
        if let Ok(dir) = store.layer_dir(layer) {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Adds `plan` to `plans`, or its references to the plan of the same image.
fn merge(plans: &mut Vec<ImagePlan>, plan: ImagePlan) {
    match plans.iter_mut().find(|known| known.digest == plan.digest) {
        Some(known) => {
            for reference in plan.references {
                if !known.references.contains(&reference) {
                    known.references.push(reference);
                }
            }
        }
        None => plans.push(plan),
    }
}

/// `text` as a normalized reference (`nginx:1.27` → `docker.io/library/nginx:1.27`).
fn normalized(text: &str) -> Result<String> {
    Ok(PullReference::parse(text)?.to_string())
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
