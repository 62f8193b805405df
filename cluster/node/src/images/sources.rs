//! Where images come from, in one configuration file (`/etc/k8s-labs/image-sources.yaml`, or
//! the file `$K8S_LABS_IMAGE_SOURCES` names): for each registry its mirrors, tried first (for
//! networks that cannot reach docker.io or registry.k8s.io); then the registry itself; then,
//! when no registry answered, the offline catalog for the references it lists. Every field is
//! optional:
//!
//! ```yaml
//! mirrors:                       # registry → mirrors, tried in order before it
//!   docker.io: [mirror.gcr.io]
//!   registry.k8s.io: [registry.classroom.lan:5000]
//! insecure: [registry.classroom.lan:5000]   # plain HTTP (localhost/127.0.0.1 always are)
//! registries: true               # false: never ask a registry (offline)
//! catalog: true                  # false: no catalog fallback
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::registry::is_local;

/// The environment variable naming the sources file.
pub const IMAGE_SOURCES_ENV: &str = "K8S_LABS_IMAGE_SOURCES";

/// The sources file read when the environment names none, if it exists.
pub const IMAGE_SOURCES_FILE: &str = "/etc/k8s-labs/image-sources.yaml";

/// The node's image sources.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageSources {
    /// Registry host (`docker.io`) → mirror hosts, asked in order before the registry.
    #[serde(default)]
    pub mirrors: BTreeMap<String, Vec<String>>,
    /// Registry or mirror hosts reached over plain HTTP.
    #[serde(default)]
    pub insecure: Vec<String>,
    /// Whether registries (and mirrors) are asked at all.
    #[serde(default = "yes")]
    pub registries: bool,
    /// Whether the offline catalog serves the references it lists when no registry answers.
    #[serde(default = "yes")]
    pub catalog: bool,
}

fn yes() -> bool {
    true
}

impl Default for ImageSources {
    fn default() -> Self {
        ImageSources {
            mirrors: BTreeMap::new(),
            insecure: Vec::new(),
            registries: true,
            catalog: true,
        }
    }
}

impl ImageSources {
    /// The sources the environment or [`IMAGE_SOURCES_FILE`] configure, else the defaults
    /// (the registries, then the catalog).
    pub fn discover() -> Result<ImageSources> {
        if let Some(path) = std::env::var_os(IMAGE_SOURCES_ENV) {
            return ImageSources::load(Path::new(&path))
                .with_context(|| format!("(named by ${IMAGE_SOURCES_ENV})"));
        }
        let path = PathBuf::from(IMAGE_SOURCES_FILE);
        if path.exists() {
            return ImageSources::load(&path);
        }
        Ok(ImageSources::default())
    }

    /// Reads and checks the sources file at `path`.
    pub fn load(path: &Path) -> Result<ImageSources> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the image sources file {}", path.display()))?;
        ImageSources::parse(&text)
            .with_context(|| format!("the image sources file {} is not valid", path.display()))
    }

    /// Parses and checks a sources document.
    pub fn parse(text: &str) -> Result<ImageSources> {
        let sources: ImageSources = if text.trim().is_empty() {
            ImageSources::default()
        } else {
            serde_saphyr::from_str(text)?
        };
        let hosts = sources
            .mirrors
            .iter()
            .flat_map(|(registry, mirrors)| std::iter::once(registry).chain(mirrors))
            .chain(&sources.insecure);
        for host in hosts {
            if host.is_empty() || host.contains("://") || host.contains('/') {
                bail!(
                    "{host:?} is not a registry host: write host or host:port, no scheme or path"
                );
            }
        }
        Ok(sources)
    }

    /// The mirrors of `registry`, in order.
    pub fn mirrors_of(&self, registry: &str) -> &[String] {
        self.mirrors.get(registry).map_or(&[], Vec::as_slice)
    }

    /// Whether `host` is reached over plain HTTP.
    pub fn is_insecure(&self, host: &str) -> bool {
        is_local(host) || self.insecure.iter().any(|insecure| insecure == host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_example_and_defaults() {
        let sources = ImageSources::parse(
            "mirrors:\n  docker.io: [mirror.gcr.io, 127.0.0.1:5000]\n\
             insecure: [registry.lan:5000]\ncatalog: false\n",
        )
        .unwrap();
        assert_eq!(
            sources.mirrors_of("docker.io"),
            ["mirror.gcr.io", "127.0.0.1:5000"]
        );
        assert!(sources.mirrors_of("registry.k8s.io").is_empty());
        assert!(sources.registries && !sources.catalog);
        assert!(sources.is_insecure("registry.lan:5000") && sources.is_insecure("localhost:1"));
        assert!(!sources.is_insecure("mirror.gcr.io"));
        assert_eq!(ImageSources::parse("").unwrap(), ImageSources::default());
    }

    #[test]
    fn refuses_unknown_fields_and_urls() {
        let unknown = ImageSources::parse("mirror: {}\n").unwrap_err();
        assert!(format!("{unknown:#}").contains("mirror"), "{unknown:#}");
        let url =
            ImageSources::parse("mirrors:\n  docker.io: [https://mirror.gcr.io]\n").unwrap_err();
        assert!(format!("{url:#}").contains("no scheme"), "{url:#}");
    }
}
