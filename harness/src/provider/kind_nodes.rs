//! Which kind node image runs each Kubernetes version, and which kind release it needs: the one
//! table (`kind_nodes.json`) that `--cluster kind` and the GitHub workflow's matrix both read.
//! Node images are pinned by digest, each with the kind release that published it (kind's
//! release notes: an image is only supported with the kind version it was built for).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::version::KubernetesVersion;

/// The table, as the workflow reads it too (`jq -c . harness/src/provider/kind_nodes.json`).
pub const KIND_NODES_JSON: &str = include_str!("kind_nodes.json");

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KindNode {
    /// The Kubernetes minor version, e.g. `v1.33`.
    pub kubernetes: String,
    /// The kind release that published the image, e.g. `v0.30.0`.
    pub kind: String,
    /// The node image, `kindest/node:vX.Y.Z@sha256:…`.
    pub image: String,
}

impl KindNode {
    /// The Kubernetes version the image runs (`v1.33.4` of `kindest/node:v1.33.4@…`).
    pub fn image_version(&self) -> Option<KubernetesVersion> {
        let tag = self.image.split_once(':')?.1;
        let tag = tag.split_once('@').map_or(tag, |(tag, _)| tag);
        tag.parse().ok()
    }

    /// The kind release the image needs, parsed.
    pub fn kind_release(&self) -> Option<KindRelease> {
        self.kind.parse().ok()
    }
}

/// Every row of the table, oldest Kubernetes first.
pub fn kind_nodes() -> Vec<KindNode> {
    // The table is compiled in and checked by this module's tests; a broken one is a bug.
    serde_json::from_str(KIND_NODES_JSON).unwrap_or_default()
}

/// The node image for `version`: the pinned row of its minor version; with a patch, only when
/// the pinned image is that patch (another patch has no digest here to pin it by).
pub fn kind_node_for(version: KubernetesVersion) -> Result<KindNode, String> {
    version.check_supported()?;
    let nodes = kind_nodes();
    let pinned: Vec<String> = nodes
        .iter()
        .filter_map(|node| node.image_version())
        .map(|version| version.to_string())
        .collect();
    let found = nodes.into_iter().find(|node| {
        node.image_version().is_some_and(|image| {
            image.major == version.major
                && image.minor == version.minor
                && (version.patch.is_none() || image.patch == version.patch)
        })
    });
    found.ok_or_else(|| {
        format!(
            "no kind node image is pinned for Kubernetes {version}; pass one of {} to \
             --k8s-version, or create the cluster yourself and pass --kubeconfig PATH",
            pinned.join(", ")
        )
    })
}

/// A kind release, `v0.30.0` (what `kind version` prints, pre-release suffix ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KindRelease {
    /// e.g. 0.
    pub major: u32,
    /// e.g. 30.
    pub minor: u32,
    /// e.g. 0.
    pub patch: u32,
}

impl KindRelease {
    /// Whether this release may run an image published with `needed`.
    pub fn supports(self, needed: KindRelease) -> bool {
        self.cmp(&needed) != Ordering::Less
    }

    /// The release in the output of `kind version`: `kind v0.30.0 go1.24.6 linux/amd64`.
    pub fn from_version_output(output: &str) -> Option<KindRelease> {
        output
            .split_whitespace()
            .find(|word| word.starts_with('v'))
            .and_then(|word| word.parse().ok())
    }
}

impl fmt::Display for KindRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for KindRelease {
    type Err = String;

    fn from_str(text: &str) -> Result<KindRelease, String> {
        let invalid = || format!("invalid kind release {text:?}: expected vMAJOR.MINOR.PATCH");
        let numbers = text.strip_prefix('v').ok_or_else(invalid)?;
        // `v0.31.0-alpha+abc` of a build from source: the release it leads up to.
        let numbers = numbers.split(['-', '+']).next().unwrap_or(numbers);
        let mut parts = numbers.split('.').map(str::parse::<u32>);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch)), None) => Ok(KindRelease {
                major,
                minor,
                patch,
            }),
            _ => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> KubernetesVersion {
        text.parse().unwrap()
    }

    #[test]
    fn the_table_parses_and_pins_every_image_by_digest() {
        let nodes: Vec<KindNode> = serde_json::from_str(KIND_NODES_JSON).unwrap();
        assert!(!nodes.is_empty());
        for node in &nodes {
            assert!(node.image.starts_with("kindest/node:v"), "{node:?}");
            assert!(node.image.contains("@sha256:"), "{node:?}");
            let image = node.image_version().unwrap();
            let minor: KubernetesVersion = node.kubernetes.parse().unwrap();
            assert_eq!((image.major, image.minor), (minor.major, minor.minor));
            assert!(node.kind_release().is_some(), "{node:?}");
        }
        assert_eq!(nodes[0].kubernetes, KubernetesVersion::DEFAULT.to_string());
    }

    #[test]
    fn the_workflow_reads_the_same_table() {
        let workflow = include_str!("../../../.github/workflows/labs.yml");
        assert!(
            workflow.contains("harness/src/provider/kind_nodes.json"),
            "labs.yml must build its matrix from kind_nodes.json"
        );
        assert!(
            !workflow.contains("kindest/node:"),
            "labs.yml pins images itself"
        );
    }

    #[test]
    fn a_minor_version_takes_the_pinned_image() {
        let node = kind_node_for(version("v1.33")).unwrap();
        assert!(node.image.starts_with("kindest/node:v1.33."), "{node:?}");
        let pinned = node.image_version().unwrap();
        assert_eq!(kind_node_for(pinned).unwrap(), node);
    }

    #[test]
    fn unpinned_versions_are_one_line_naming_the_pinned_ones() {
        let error = kind_node_for(version("v1.33.99")).unwrap_err();
        assert!(
            error.starts_with(
                "no kind node image is pinned for Kubernetes v1.33.99; pass one of v1.33."
            ),
            "{error}"
        );
        assert!(!error.contains('\n'));
        let error = kind_node_for(version("v1.99")).unwrap_err();
        assert!(error.contains("v1.37.0"), "{error}");
        let error = kind_node_for(version("v1.20")).unwrap_err();
        assert!(error.contains("older than the labs support"), "{error}");
    }

    #[test]
    fn kind_releases_compare_as_versions() {
        let release = |text: &str| text.parse::<KindRelease>().unwrap();
        assert!(release("v0.30.0").supports(release("v0.30.0")));
        assert!(release("v0.31.2").supports(release("v0.30.0")));
        assert!(release("v1.0.0").supports(release("v0.33.0")));
        assert!(!release("v0.29.9").supports(release("v0.30.0")));
        assert_eq!(release("v0.31.0-alpha+2d2a2a3"), release("v0.31.0"));
        assert!("0.30.0".parse::<KindRelease>().is_err());
        assert!("v0.30".parse::<KindRelease>().is_err());
        assert_eq!(
            KindRelease::from_version_output("kind v0.30.0 go1.24.6 linux/amd64\n"),
            Some(release("v0.30.0"))
        );
        assert_eq!(KindRelease::from_version_output("garbage"), None);
    }
}
