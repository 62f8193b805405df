//! The images of a `docker save` archive: `manifest.json` lists, for each image, its config
//! file, its tags and its layer tars, lowest first. The layers are uncompressed tars (gzip'd in
//! some archives) whose digests are the config's `rootfs.diff_ids`, which is what `docker
//! load` checks and so is checked here. Such an archive has no manifest: one is made, an OCI
//! image manifest of the config and the layers as stored, and its digest names the image, as
//! containerd names an image it imports from a `docker save`.

use std::io::Read;

use anyhow::{Context, Result, bail};
use oci_client::manifest::{
    IMAGE_CONFIG_MEDIA_TYPE, IMAGE_LAYER_GZIP_MEDIA_TYPE, IMAGE_LAYER_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest,
};
use serde::Deserialize;

use super::staging::{Staged, Staging, check_digest, named_blob};
use super::{Blob, Content, ImagePlan, merge, normalized};
use crate::registry::config::ImageConfig;
use crate::registry::digest::{DigestingWriter, sha256_digest};
use crate::registry::layer::{Compression, decompressed};

/// The OCI media type of a zstd'd layer (oci-client names none).
const LAYER_ZSTD_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// One image of `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// The part of a config blob that names its layers.
#[derive(Deserialize)]
struct ConfigLayers {
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// The images `manifest.json` lists.
pub(super) fn plans(staging: &Staging) -> Result<Vec<ImagePlan>> {
    let manifest = staging.file("manifest.json")?;
    let saved: Vec<SavedImage> = staging.json(manifest, "manifest.json")?;
    let mut plans = Vec::new();
    for (index, image) in saved.iter().enumerate() {
        let plan = plan(staging, image).with_context(|| {
            let name = image.repo_tags.iter().flatten().next();
            match name {
                Some(name) => format!("image {name}"),
                None => format!("image {} of manifest.json", index + 1),
            }
        })?;
        merge(&mut plans, plan);
    }
    Ok(plans)
}

fn plan(staging: &Staging, image: &SavedImage) -> Result<ImagePlan> {
    let config = staging.file(&image.config)?;
    if let Some(named) = named_blob(&image.config) {
        check_digest(&image.config, config, &named)?;
    }
    let bytes = staging.bytes(config, &image.config)?;
    ImageConfig::from_blob(&bytes).with_context(|| format!("reading {}", image.config))?;
    let listed: ConfigLayers = serde_json::from_slice(&bytes)
        .with_context(|| format!("reading the layers of {}", image.config))?;
    let diff_ids = listed
        .rootfs
        .map(|rootfs| rootfs.diff_ids)
        .unwrap_or_default();
    if diff_ids.len() != image.layers.len() {
        bail!(
            "{} lists {} layers (rootfs.diff_ids) but manifest.json {}",
            image.config,
            diff_ids.len(),
            image.layers.len()
        );
    }
    let (layer_blobs, descriptors) = layers(staging, &image.layers, &diff_ids)?;
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
        config: descriptor(IMAGE_CONFIG_MEDIA_TYPE, config)?,
        layers: descriptors,
        subject: None,
        artifact_type: None,
        annotations: None,
    };
    let manifest = serde_json::to_vec(&manifest).context("writing the image's manifest")?;
    let digest = sha256_digest(&manifest);
    let mut references = Vec::new();
    for tag in image.repo_tags.iter().flatten() {
        references.push(normalized(tag)?);
    }
    Ok(ImagePlan {
        digest: digest.clone(),
        manifest: Blob {
            digest,
            content: Content::Bytes(manifest),
        },
        config: Blob {
            digest: config.digest.clone(),
            content: Content::Staged(config.clone()),
        },
        layers: layer_blobs,
        references,
    })
}

/// The layer tars `names`, checked against their diff ids: as blobs, and as descriptors.
fn layers(
    staging: &Staging,
    names: &[String],
    diff_ids: &[String],
) -> Result<(Vec<Blob>, Vec<OciDescriptor>)> {
    let mut blobs = Vec::new();
    let mut descriptors = Vec::new();
    for (name, diff_id) in names.iter().zip(diff_ids) {
        let staged = staging.file(name)?;
        if let Some(named) = named_blob(name) {
            check_digest(name, staged, &named)?;
        }
        let (media_type, uncompressed) =
            diff_id_of(staged).with_context(|| format!("reading {name}"))?;
        if &uncompressed != diff_id {
            bail!(
                "{name}: digest mismatch: the config's diff id is {diff_id}, the layer has \
                 {uncompressed}"
            );
        }
        descriptors.push(descriptor(media_type, staged)?);
        blobs.push(Blob {
            digest: staged.digest.clone(),
            content: Content::Staged(staged.clone()),
        });
    }
    Ok((blobs, descriptors))
}

fn descriptor(media_type: &str, staged: &Staged) -> Result<OciDescriptor> {
    Ok(OciDescriptor {
        media_type: media_type.to_string(),
        digest: staged.digest.clone(),
        size: i64::try_from(staged.size).context("a blob too large")?,
        ..OciDescriptor::default()
    })
}

/// A layer's media type and the digest of its uncompressed tar (its diff id): the blob's own
/// digest when it is not compressed, else computed by decompressing it once more.
fn diff_id_of(staged: &Staged) -> Result<(&'static str, String)> {
    let mut head = [0u8; 4];
    let mut file = std::fs::File::open(&staged.path)?;
    let read = file.read(&mut head)?;
    let media_type = match Compression::of(&head[..read]) {
        Compression::None => return Ok((IMAGE_LAYER_MEDIA_TYPE, staged.digest.clone())),
        Compression::Gzip => IMAGE_LAYER_GZIP_MEDIA_TYPE,
        Compression::Zstd => LAYER_ZSTD_MEDIA_TYPE,
    };
    let mut reader = decompressed(std::fs::File::open(&staged.path)?)?;
    let mut writer = DigestingWriter::new(std::io::sink());
    std::io::copy(&mut reader, &mut writer).context("decompressing it")?;
    let (digest, _, _) = writer.finish();
    Ok((media_type, digest))
}
