//! The image catalog (`cluster/node/images.yaml`): which image references this node can "pull"
//! and what each is made of (Debian packages, users, files). See the data file for why and for
//! its format; [`crate::image_store`] builds the images.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

pub use crate::rootfs::ImageUser;
use serde::Deserialize;

use crate::reference::ImageReference;

/// The catalog data file, embedded so the binary does not depend on where the repository is.
pub const CATALOG_YAML: &str = include_str!("../images.yaml");

/// Files of `cluster/node/data` that catalog entries may mount, by their path under `data/`.
const DATA_FILES: &[(&str, &str)] = &[
    ("nginx/nginx.conf", include_str!("../data/nginx/nginx.conf")),
    (
        "nginx/default.conf",
        include_str!("../data/nginx/default.conf"),
    ),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    images: Vec<ImageEntry>,
}

/// One image the node can run: see `images.yaml` for each field's meaning.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageEntry {
    pub name: String,
    pub description: String,
    pub references: Vec<String>,
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default = "root_dir")]
    pub working_dir: String,
    #[serde(default)]
    pub files: Vec<DataFileMount>,
    #[serde(default)]
    pub applets: Option<Applets>,
    pub packages: Vec<String>,
    #[serde(default)]
    pub essential: bool,
    pub users: Vec<ImageUser>,
}

fn root_dir() -> String {
    "/".to_string()
}

/// An environment variable of the image (`ENV` in a Dockerfile).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// A file of `cluster/node/data` mounted read-only at `target` in the container.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFileMount {
    pub source: String,
    pub target: String,
}

/// A directory of symlinks, one per applet of a multi-call binary, put first on PATH.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applets {
    /// Where the directory appears in the container.
    pub directory: String,
    /// The multi-call binary; its applets are what `<program> --list` prints.
    pub program: String,
    /// Applets that point elsewhere instead (applet name → path in the container).
    #[serde(default)]
    pub overrides: BTreeMap<String, String>,
}

/// Why an image cannot be "pulled"; the kubelet's waiting reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullError {
    /// `ErrImagePull`: no catalog entry matches.
    #[error("{0}")]
    NotFound(String),
    /// `InvalidImageName`: not a valid image reference.
    #[error("{0}")]
    InvalidName(String),
}

/// An image reference resolved to its catalog entry.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub reference: ImageReference,
    pub entry: Arc<ImageEntry>,
}

impl ResolvedImage {
    /// What the kubelet reports as `imageID`; it names the catalog entry, since there is no
    /// image content with a digest.
    pub fn image_id(&self) -> String {
        format!("k8s-labs-catalog://{}", self.entry.name)
    }
}

/// The parsed catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    entries: Vec<(Vec<ImageReference>, Arc<ImageEntry>)>,
}

impl Catalog {
    /// The catalog embedded in this binary.
    pub fn embedded() -> Result<Catalog> {
        Catalog::parse(CATALOG_YAML).context("loading cluster/node/images.yaml")
    }

    /// Parses and checks a catalog document.
    pub fn parse(yaml: &str) -> Result<Catalog> {
        let file: CatalogFile = serde_saphyr::from_str(yaml)?;
        let mut entries = Vec::new();
        for entry in file.images {
            let mut patterns = Vec::new();
            for pattern in &entry.references {
                let parsed = ImageReference::parse(pattern).with_context(|| {
                    format!("entry {}: {pattern:?} is not a reference", entry.name)
                })?;
                patterns.push(parsed);
            }
            if patterns.is_empty() {
                bail!("entry {} has no references", entry.name);
            }
            for file in &entry.files {
                if data_file(&file.source).is_none() {
                    bail!(
                        "entry {}: data file {} is not embedded",
                        entry.name,
                        file.source
                    );
                }
            }
            entries.push((patterns, Arc::new(entry)));
        }
        Ok(Catalog { entries })
    }

    /// Every entry, in order.
    pub fn entries(&self) -> impl Iterator<Item = &ImageEntry> {
        self.entries.iter().map(|(_, entry)| entry.as_ref())
    }

    /// Resolves `image` as it appears in a pod spec, failing as containerd would.
    pub fn resolve(&self, image: &str) -> Result<ResolvedImage, PullError> {
        let Some(reference) = ImageReference::parse(image) else {
            return Err(PullError::InvalidName(format!(
                "Failed to apply default image tag {image:?}: couldn't parse image name \
                 {image:?}: invalid reference format"
            )));
        };
        for (patterns, entry) in &self.entries {
            if patterns.iter().any(|pattern| reference.matches(pattern)) {
                return Ok(ResolvedImage {
                    reference,
                    entry: entry.clone(),
                });
            }
        }
        let normalized = reference.normalized();
        Err(PullError::NotFound(format!(
            "failed to pull and unpack image \"{normalized}\": failed to resolve reference \
             \"{normalized}\": {normalized}: not found (this node runs only the images of its \
             catalog, cluster/node/images.yaml)"
        )))
    }
}

pub(crate) fn data_file(source: &str) -> Option<&'static str> {
    DATA_FILES
        .iter()
        .find(|(name, _)| *name == source)
        .map(|(_, content)| *content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_catalog_loads_and_resolves_the_tutorial_images() {
        let catalog = Catalog::embedded().unwrap();
        assert_eq!(catalog.resolve("nginx").unwrap().entry.name, "nginx");
        assert_eq!(
            catalog
                .resolve("docker.io/library/nginx:1.25")
                .unwrap()
                .entry
                .name,
            "nginx"
        );
        let slim = catalog.resolve("registry.k8s.io/nginx-slim:0.24").unwrap();
        assert_eq!(slim.entry.name, "nginx");
        assert_eq!(
            slim.reference.normalized(),
            "registry.k8s.io/nginx-slim:0.24"
        );
        let busybox = catalog.resolve("busybox:1.28").unwrap();
        assert_eq!(busybox.entry.name, "busybox-1.28");
        assert_eq!(
            busybox.reference.normalized(),
            "docker.io/library/busybox:1.28"
        );
        let applets = busybox.entry.applets.as_ref().unwrap();
        assert_eq!(applets.overrides["nslookup"], "/usr/bin/nslookup");
        assert_eq!(catalog.resolve("busybox").unwrap().entry.name, "busybox");
        assert_eq!(
            catalog.resolve("busybox:1.36").unwrap().entry.name,
            "busybox"
        );
    }

    #[test]
    fn unknown_invalid_and_digest_references_fail_like_a_registry() {
        let catalog = Catalog::embedded().unwrap();
        match catalog.resolve("example-image") {
            Err(PullError::NotFound(message)) => assert!(
                message.starts_with(
                    "failed to pull and unpack image \"docker.io/library/example-image:latest\""
                ),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        // The source tutorial's image: its registry no longer serves it.
        assert!(matches!(
            catalog.resolve("gcr.io/google_containers/nginx-slim:0.8"),
            Err(PullError::NotFound(_))
        ));
        assert!(matches!(
            catalog.resolve("registry.k8s.io/nginx-slim:0.8"),
            Err(PullError::NotFound(_))
        ));
        assert!(matches!(
            catalog.resolve("nginx@sha256:0123"),
            Err(PullError::NotFound(_))
        ));
        assert!(matches!(
            catalog.resolve("NGINX"),
            Err(PullError::InvalidName(_))
        ));
    }

    #[test]
    fn a_catalog_naming_a_missing_data_file_is_rejected() {
        let yaml = "images:\n  - name: x\n    description: x\n    references: [x]\n    files:\n      - source: nope\n        target: /etc/nope\n";
        assert!(Catalog::parse(yaml).is_err());
        let unknown_field =
            "images:\n  - name: x\n    description: x\n    references: [x]\n    colour: red\n";
        assert!(Catalog::parse(unknown_field).is_err());
    }
}
