//! Which manifest of a multi-platform image (an image index) this node runs: the one for
//! linux on the host's architecture, as `docker pull` picks by default.

use oci_client::manifest::{ImageIndexEntry, Platform};

/// The OCI name of the host's architecture (`amd64`, `arm64`, ...).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The digest of the index entry for linux on the host's architecture, if the index has one.
pub fn host_platform(manifests: &[ImageIndexEntry]) -> Option<String> {
    platform_for(manifests, host_architecture())
}

/// Whether `platform` is linux on the host's architecture.
pub(super) fn is_host(platform: &Platform) -> bool {
    is_platform(platform, host_architecture())
}

fn is_platform(platform: &Platform, architecture: &str) -> bool {
    platform.os.to_string() == "linux" && platform.architecture.to_string() == architecture
}

fn platform_for(manifests: &[ImageIndexEntry], architecture: &str) -> Option<String> {
    manifests
        .iter()
        .find(|entry| {
            entry
                .platform
                .as_ref()
                .is_some_and(|platform| is_platform(platform, architecture))
        })
        .map(|entry| entry.digest.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Vec<ImageIndexEntry> {
        let json = r#"[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,
             "platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1,
             "platform":{"architecture":"amd64","os":"windows"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cc","size":1,
             "platform":{"architecture":"amd64","os":"linux"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:dd","size":1,
             "platform":{"architecture":"unknown","os":"unknown"}}
        ]"#;
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn picks_linux_on_the_architecture() {
        assert_eq!(
            platform_for(&index(), "amd64").as_deref(),
            Some("sha256:cc")
        );
        assert_eq!(
            platform_for(&index(), "arm64").as_deref(),
            Some("sha256:aa")
        );
        assert_eq!(platform_for(&index(), "s390x"), None);
        assert!(host_platform(&index()).is_some());
    }
}
