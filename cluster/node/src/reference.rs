//! Image references as a container runtime reads them: `nginx`, `nginx:1.25`,
//! `docker.io/library/nginx:latest`, `registry.example:5000/team/app:v1`, `app@sha256:...`.
//! Normalized the way Docker and containerd do, so that `nginx` and
//! `docker.io/library/nginx:latest` name the same image.

/// A normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// `docker.io/library/nginx`.
    pub repository: String,
    /// `latest` when the reference names no tag.
    pub tag: String,
    /// `sha256:...` when the reference pins a digest.
    pub digest: Option<String>,
}

impl ImageReference {
    /// Parses and normalizes a reference; `None` when it is not a valid reference.
    pub fn parse(text: &str) -> Option<ImageReference> {
        let text = text.trim();
        if text.is_empty() || text.chars().any(char::is_whitespace) {
            return None;
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let (algorithm, hex) = digest.split_once(':')?;
                if algorithm.is_empty() || hex.is_empty() {
                    return None;
                }
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // A tag is after the last ':' that comes after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |index| index + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(index) => {
                let split = last_slash + index;
                (&rest[..split], rest[split + 1..].to_string())
            }
            None => (rest, "latest".to_string()),
        };
        if name.is_empty() || tag.is_empty() || name.ends_with('/') || name.contains("//") {
            return None;
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        let first = parts[0];
        let has_registry =
            parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
        let registry = if has_registry {
            parts.remove(0).to_string()
        } else {
            "docker.io".to_string()
        };
        if registry == "docker.io" && parts.len() == 1 {
            parts.insert(0, "library");
        }
        if parts
            .iter()
            .any(|part| part.is_empty() || part.chars().any(|c| c.is_ascii_uppercase()))
        {
            return None;
        }
        Some(ImageReference {
            repository: format!("{registry}/{}", parts.join("/")),
            tag,
            digest,
        })
    }

    /// `docker.io/library/nginx:latest` (with `@digest` when pinned): what the kubelet reports
    /// as a container's image.
    pub fn normalized(&self) -> String {
        match &self.digest {
            Some(digest) => format!("{}:{}@{digest}", self.repository, self.tag),
            None => format!("{}:{}", self.repository, self.tag),
        }
    }

    /// Whether this reference matches a catalog pattern: a reference whose tag may be `*`.
    /// A reference pinned by digest matches nothing: the catalog has no image content whose
    /// digest could be checked.
    pub fn matches(&self, pattern: &ImageReference) -> bool {
        self.digest.is_none()
            && pattern.digest.is_none()
            && self.repository == pattern.repository
            && (pattern.tag == "*" || pattern.tag == self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(text: &str) -> String {
        ImageReference::parse(text).unwrap().normalized()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(normalized("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalized("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(
            normalized("library/nginx"),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(
            normalized("docker.io/library/busybox:1.28"),
            "docker.io/library/busybox:1.28"
        );
        assert_eq!(normalized("bitnami/redis:7"), "docker.io/bitnami/redis:7");
        assert_eq!(
            normalized("registry.example:5000/team/app"),
            "registry.example:5000/team/app:latest"
        );
        assert_eq!(normalized("localhost/app:v1"), "localhost/app:v1");
        assert_eq!(
            normalized("nginx@sha256:abc"),
            "docker.io/library/nginx:latest@sha256:abc"
        );
    }

    #[test]
    fn rejects_what_is_not_a_reference() {
        for text in [
            "",
            "Nginx",
            "nginx:",
            "a b",
            "nginx@sha256",
            "/nginx",
            "a//b",
        ] {
            assert_eq!(ImageReference::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn matches_patterns_by_repository_and_tag() {
        let any_nginx = ImageReference::parse("nginx:*").unwrap();
        let busybox_128 = ImageReference::parse("busybox:1.28").unwrap();
        let parse = |text| ImageReference::parse(text).unwrap();
        assert!(parse("nginx").matches(&any_nginx));
        assert!(parse("docker.io/library/nginx:1.25").matches(&any_nginx));
        assert!(!parse("nginx-unprivileged").matches(&any_nginx));
        assert!(!parse("quay.io/nginx/nginx").matches(&any_nginx));
        assert!(parse("busybox:1.28").matches(&busybox_128));
        assert!(!parse("busybox").matches(&busybox_128));
        assert!(!parse("busybox:1.28.4").matches(&busybox_128));
        assert!(!parse("nginx@sha256:abc").matches(&any_nginx));
    }
}
