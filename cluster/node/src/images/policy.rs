//! `imagePullPolicy`, and its default where a container leaves it out (the API server sets it
//! on create; a pod from elsewhere may not have it).

use k8s_openapi::api::core::v1::Container;

use crate::registry::PullReference;

/// When the image is pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Every time a container starts (the registry decides whether anything is downloaded).
    Always,
    /// Only when no image of that reference is on the node.
    IfNotPresent,
    /// Never; a missing image is `ErrImageNeverPull`.
    Never,
}

impl PullPolicy {
    /// The container's policy, or Kubernetes' default: `Always` for `:latest` or no tag,
    /// `IfNotPresent` otherwise (a digest pins the content, so it is never re-fetched).
    pub fn of(container: &Container) -> PullPolicy {
        match container.image_pull_policy.as_deref() {
            Some("Always") => PullPolicy::Always,
            Some("IfNotPresent") => PullPolicy::IfNotPresent,
            Some("Never") => PullPolicy::Never,
            _ => {
                let image = container.image.as_deref().unwrap_or_default();
                match PullReference::parse(image) {
                    Ok(reference)
                        if reference.digest.is_none()
                            && reference.tag.as_deref() == Some("latest") =>
                    {
                        PullPolicy::Always
                    }
                    _ => PullPolicy::IfNotPresent,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(image: &str, policy: Option<&str>) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            image_pull_policy: policy.map(str::to_string),
            ..Container::default()
        }
    }

    #[test]
    fn latest_or_no_tag_defaults_to_always_else_if_not_present() {
        assert_eq!(
            PullPolicy::of(&container("nginx", None)),
            PullPolicy::Always
        );
        assert_eq!(
            PullPolicy::of(&container("nginx:latest", None)),
            PullPolicy::Always
        );
        assert_eq!(
            PullPolicy::of(&container("busybox:1.28", None)),
            PullPolicy::IfNotPresent
        );
        let pinned = format!("nginx@sha256:{}", "a".repeat(64));
        assert_eq!(
            PullPolicy::of(&container(&pinned, None)),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            PullPolicy::of(&container("busybox:1.28", Some("Always"))),
            PullPolicy::Always
        );
        assert_eq!(
            PullPolicy::of(&container("nginx", Some("Never"))),
            PullPolicy::Never
        );
    }
}
