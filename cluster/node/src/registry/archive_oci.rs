//! The images of an OCI image layout archive (`oci-layout`, `index.json`, `blobs/sha256/…`, as
//! `skopeo copy … oci-archive:` and `docker save` since Docker 25 write it): each entry of
//! `index.json` is an image manifest, or an index of one per platform, of which the host's is
//! taken. An entry is named by `io.containerd.image.name` (a full reference) or
//! `org.opencontainers.image.ref.name` (a full reference, or only a tag, which then needs a
//! repository from the caller), as containerd's import reads them. Every blob is checked
//! against its digest.

use anyhow::{Context, Result, bail};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, ImageIndexEntry,
    OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciImageManifest,
};
use serde::Deserialize;

use super::staging::Staging;
use super::{Blob, Content, ImagePlan, LoadOptions, merge, normalized};
use crate::registry::config::ImageConfig;
use crate::registry::platform::{host_architecture, host_platform, is_host};

/// The annotation containerd (and Docker) write with the image's full reference.
const IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation naming an entry of `index.json`: a tag, or a full reference.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<ImageIndexEntry>,
}

/// The images `index.json` lists, for this host's platform.
pub(super) fn plans(staging: &Staging, options: &LoadOptions) -> Result<Vec<ImagePlan>> {
    let index: Index = staging.json(staging.file("index.json")?, "index.json")?;
    let mut plans = Vec::new();
    for entry in for_this_host(&index.manifests)? {
        let references = references(entry, options)?;
        let what = match references.first() {
            Some(reference) => format!("image {reference}"),
            None => format!("image {}", entry.digest),
        };
        let Some(digest) = manifest_of(staging, entry).with_context(|| what.clone())? else {
            continue;
        };
        let plan = plan(staging, &digest, references).with_context(|| what.clone())?;
        merge(&mut plans, plan);
    }
    Ok(plans)
}

/// The entries without a platform or for linux on the host's architecture; an error when
/// every entry is for another platform.
fn for_this_host(entries: &[ImageIndexEntry]) -> Result<Vec<&ImageIndexEntry>> {
    let kept: Vec<&ImageIndexEntry> = entries
        .iter()
        .filter(|entry| entry.platform.as_ref().is_none_or(is_host))
        .collect();
    if kept.is_empty() && !entries.is_empty() {
        let platforms: Vec<String> = entries
            .iter()
            .filter_map(|entry| entry.platform.as_ref())
            .map(|platform| format!("{}/{}", platform.os, platform.architecture))
            .collect();
        bail!(
            "it has no image for linux/{}, only for {}",
            host_architecture(),
            platforms.join(", ")
        );
    }
    Ok(kept)
}

/// The digest of the image manifest `entry` stands for (the host's, for an index); `None`
/// when the entry is not an image (an artifact).
fn manifest_of(staging: &Staging, entry: &ImageIndexEntry) -> Result<Option<String>> {
    match entry.media_type.as_str() {
        OCI_IMAGE_MEDIA_TYPE | IMAGE_MANIFEST_MEDIA_TYPE => Ok(Some(entry.digest.clone())),
        OCI_IMAGE_INDEX_MEDIA_TYPE | IMAGE_MANIFEST_LIST_MEDIA_TYPE => {
            let what = format!("index {}", entry.digest);
            let nested: Index = staging.json(staging.blob(&entry.digest)?, &what)?;
            match host_platform(&nested.manifests) {
                Some(digest) => Ok(Some(digest)),
                None => bail!("{what} has no manifest for linux/{}", host_architecture()),
            }
        }
        _ => Ok(None),
    }
}

/// The image whose manifest is the blob `digest`.
fn plan(staging: &Staging, digest: &str, references: Vec<String>) -> Result<ImagePlan> {
    let staged = staging.blob(digest)?;
    let what = format!("manifest {digest}");
    let manifest: OciImageManifest = staging.json(staged, &what)?;
    let config = staging.blob(&manifest.config.digest)?;
    let bytes = staging.bytes(config, "the image's config")?;
    ImageConfig::from_blob(&bytes)?;
    let mut layers = Vec::new();
    for layer in &manifest.layers {
        layers.push(Blob {
            digest: layer.digest.clone(),
            content: Content::Staged(staging.blob(&layer.digest)?.clone()),
        });
    }
    Ok(ImagePlan {
        digest: digest.to_string(),
        manifest: Blob {
            digest: digest.to_string(),
            content: Content::Staged(staged.clone()),
        },
        config: Blob {
            digest: manifest.config.digest.clone(),
            content: Content::Staged(config.clone()),
        },
        layers,
        references,
    })
}

/// What an entry is named: a full reference as is; a bare tag under `options.repository`
/// (like containerd, a name without `/`, `:` or `@` is a tag); nothing when unnamed.
fn references(entry: &ImageIndexEntry, options: &LoadOptions) -> Result<Vec<String>> {
    let annotations = entry.annotations.as_ref();
    let annotation = |key: &str| annotations.and_then(|map| map.get(key));
    if let Some(name) = annotation(IMAGE_NAME) {
        return Ok(vec![normalized(name)?]);
    }
    let Some(name) = annotation(REF_NAME) else {
        return Ok(Vec::new());
    };
    if name.contains(['/', ':', '@']) {
        return Ok(vec![normalized(name)?]);
    }
    match &options.repository {
        Some(repository) => Ok(vec![normalized(&format!("{repository}:{name}"))?]),
        None => bail!(
            "image {} is named only by the tag {name:?}; give a repository to name it \
             (--repository REPO loads it as REPO:{name})",
            entry.digest
        ),
    }
}
