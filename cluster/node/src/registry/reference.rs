//! Image references as `docker pull` reads them, normalized the way Docker does: `nginx` is
//! `docker.io/library/nginx:latest`, `localhost:5000/x:y` names a registry on a port, and
//! `…@sha256:<hex>` pins a digest. Unlike [`crate::reference::ImageReference`] (the catalog's
//! matcher, which accepts `*` tags), this one says what is wrong with a reference it refuses,
//! because a pull error is the first thing a student reads when an image name has a typo.

use std::fmt;

/// Docker Hub, where a reference without a registry points.
const DOCKER_HUB: &str = "docker.io";

/// A normalized reference to pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullReference {
    /// `docker.io`, `registry.k8s.io`, `localhost:5000`.
    pub registry: String,
    /// `library/nginx`, `nginx-slim`, `test/img`.
    pub repository: String,
    /// `latest` when the reference names neither tag nor digest.
    pub tag: Option<String>,
    /// `sha256:<hex>` when the reference pins a digest; a pull then asks for the digest.
    pub digest: Option<String>,
}

/// Why a text is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct ReferenceError {
    /// The text as given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
}

impl PullReference {
    /// Parses and normalizes `text`.
    pub fn parse(text: &str) -> Result<PullReference, ReferenceError> {
        let fail = |reason: String| ReferenceError {
            reference: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(fail("it is empty".into()));
        }
        if text.chars().any(char::is_whitespace) {
            return Err(fail("it contains whitespace".into()));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(check_digest(digest).map_err(fail)?)),
            None => (text, None),
        };
        // A tag follows the last ':' after the last '/'; a ':' before it is a port.
        let last_slash = rest.rfind('/').map_or(0, |index| index + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(index) => {
                let split = last_slash + index;
                (
                    &rest[..split],
                    Some(check_tag(&rest[split + 1..]).map_err(fail)?),
                )
            }
            None => (rest, None),
        };
        let (registry, repository) = split_registry(name);
        check_repository(repository).map_err(fail)?;
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(PullReference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// The reference as oci-client takes it.
    pub fn to_oci(&self) -> oci_client::Reference {
        let (registry, repository) = (self.registry.clone(), self.repository.clone());
        match (&self.tag, &self.digest) {
            (Some(tag), Some(digest)) => oci_client::Reference::with_tag_and_digest(
                registry,
                repository,
                tag.clone(),
                digest.clone(),
            ),
            (None, Some(digest)) => {
                oci_client::Reference::with_digest(registry, repository, digest.clone())
            }
            (tag, None) => oci_client::Reference::with_tag(
                registry,
                repository,
                tag.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }
}

impl fmt::Display for PullReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Splits off the registry: the first component when it looks like a host (has a '.' or a
/// port, or is `localhost`) and more components follow, else Docker Hub.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn check_digest(digest: &str) -> Result<String, String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!("digest {digest:?} has no algorithm (sha256:<hex>)"));
    };
    let length = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "digest algorithm {algorithm:?} is not sha256 or sha512"
            ));
        }
    };
    if hex.len() != length || !hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(format!(
            "digest {digest:?} is not {length} lowercase hexadecimal digits after {algorithm}:"
        ));
    }
    Ok(digest.to_string())
}

fn check_tag(tag: &str) -> Result<String, String> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if tag.is_empty() {
        return Err("the tag after ':' is empty".into());
    }
    if tag.len() > 128 || tag.starts_with(['.', '-']) || !tag.chars().all(valid_char) {
        return Err(format!(
            "tag {tag:?} must be at most 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        ));
    }
    Ok(tag.to_string())
}

fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the repository name is empty".into());
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(format!(
                "repository {repository:?} has an empty path component"
            ));
        }
        if component.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("repository name {component:?} must be lowercase"));
        }
        let separator = |c: char| matches!(c, '.' | '_' | '-');
        let valid = component
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || separator(c));
        if !valid || component.starts_with(separator) || component.ends_with(separator) {
            return Err(format!(
                "repository name {component:?} may hold only lowercase letters, digits and \
                 separators ('.', '_', '-') between them"
            ));
        }
    }
    Ok(())
}

/// Whether `host` (`name[:port]`) is this machine.
pub fn is_local(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(text: &str) -> String {
        PullReference::parse(text).unwrap().to_string()
    }

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(normalized("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalized("busybox:1.28"), "docker.io/library/busybox:1.28");
        assert_eq!(normalized("bitnami/redis:7"), "docker.io/bitnami/redis:7");
        assert_eq!(
            normalized("registry.k8s.io/nginx-slim:0.8"),
            "registry.k8s.io/nginx-slim:0.8"
        );
        assert_eq!(normalized("localhost:5000/x:y"), "localhost:5000/x:y");
        assert_eq!(normalized("localhost/x"), "localhost/x:latest");
        let pinned = format!("nginx@sha256:{HEX}");
        assert_eq!(
            normalized(&pinned),
            format!("docker.io/library/nginx@sha256:{HEX}")
        );
        let both = format!("127.0.0.1:5000/test/img:v1@sha256:{HEX}");
        assert_eq!(normalized(&both), both);
    }

    #[test]
    fn splits_registry_repository_tag_digest() {
        let reference = PullReference::parse("localhost:5000/a/b:c").unwrap();
        assert_eq!(reference.registry, "localhost:5000");
        assert_eq!(reference.repository, "a/b");
        assert_eq!(reference.tag.as_deref(), Some("c"));
        assert!(is_local(&reference.registry));
        assert!(!is_local(&PullReference::parse("nginx").unwrap().registry));
        let oci = PullReference::parse("busybox:1.28").unwrap().to_oci();
        assert_eq!(oci.whole(), "docker.io/library/busybox:1.28");
    }

    #[test]
    fn says_what_is_wrong() {
        let reason = |text: &str| PullReference::parse(text).unwrap_err().to_string();
        assert!(reason("").contains("empty"));
        assert!(reason("a b").contains("whitespace"));
        assert!(
            reason("Nginx").contains("must be lowercase"),
            "{}",
            reason("Nginx")
        );
        assert!(reason("nginx:").contains("tag after ':' is empty"));
        assert!(reason("nginx:-x").contains("tag \"-x\""));
        assert!(reason("nginx@sha256:abc").contains("64 lowercase hexadecimal"));
        assert!(reason("nginx@md5:abc").contains("not sha256"));
        assert!(reason("nginx@abc").contains("no algorithm"));
        assert!(reason("a//b").contains("empty path component"));
        assert!(reason("/nginx").contains("empty path component"));
        assert!(reason("-x").contains("separators"));
        assert!(reason("nginx:").starts_with("invalid image reference \"nginx:\""));
    }
}
