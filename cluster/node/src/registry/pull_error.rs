//! A failed pull described as containerd describes it in the kubelet's `Failed` event, so a
//! student reads here what they would read on kind: `failed to pull and unpack image
//! "docker.io/library/x:latest": failed to resolve reference "…": …: not found`, or `pull
//! access denied, repository does not exist or may require authorization`.

use oci_client::errors::{OciDistributionError, OciErrorCode};

use super::reference::PullReference;

/// What kind of failure a pull error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NotFound,
    Denied,
    Other,
}

fn kind_of(error: &anyhow::Error) -> Kind {
    for cause in error.chain() {
        let Some(oci) = cause.downcast_ref::<OciDistributionError>() else {
            continue;
        };
        return match oci {
            OciDistributionError::ImageManifestNotFoundError(_) => Kind::NotFound,
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => Kind::Denied,
            OciDistributionError::ServerError { code: 404, .. } => Kind::NotFound,
            OciDistributionError::ServerError {
                code: 401 | 403, ..
            } => Kind::Denied,
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                if codes.iter().any(|code| {
                    matches!(
                        code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    Kind::NotFound
                } else if codes
                    .iter()
                    .any(|code| matches!(code, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    Kind::Denied
                } else {
                    Kind::Other
                }
            }
            _ => Kind::Other,
        };
    }
    Kind::Other
}

/// The message of the kubelet's `Failed` event (after `Failed to pull image "…": `) for a
/// pull of `reference` that failed with `error`.
pub fn describe_pull_error(reference: &PullReference, error: &anyhow::Error) -> String {
    let head = format!("failed to pull and unpack image \"{reference}\"");
    // The head names the image already: the puller's own "pulling image …" goes.
    // Some errors print their source in their own message: it is not repeated.
    let mut causes: Vec<String> = Vec::new();
    for cause in error.chain().map(ToString::to_string) {
        let repeated = causes.last().is_some_and(|last| last.ends_with(&cause));
        if !repeated && !cause.starts_with("pulling image ") {
            causes.push(cause);
        }
    }
    let causes = causes.join(": ");
    match kind_of(error) {
        Kind::NotFound => {
            format!("{head}: failed to resolve reference \"{reference}\": {reference}: not found")
        }
        Kind::Denied => format!(
            "{head}: failed to resolve reference \"{reference}\": pull access denied, repository \
             does not exist or may require authorization: {causes}"
        ),
        Kind::Other => format!("{head}: {causes}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_denied_read_as_containerds() {
        let reference = PullReference::parse("127.0.0.1:5000/x:v1").unwrap();
        let missing =
            anyhow::Error::from(OciDistributionError::ImageManifestNotFoundError("x".into()))
                .context("fetching the manifest");
        assert_eq!(
            describe_pull_error(&reference, &missing),
            "failed to pull and unpack image \"127.0.0.1:5000/x:v1\": failed to resolve \
             reference \"127.0.0.1:5000/x:v1\": 127.0.0.1:5000/x:v1: not found"
        );
        let denied = anyhow::Error::from(OciDistributionError::UnauthorizedError {
            url: "http://127.0.0.1:5000/v2/x/manifests/v1".into(),
        });
        assert!(describe_pull_error(&reference, &denied).contains("pull access denied"));
        let other = anyhow::anyhow!("disk full");
        assert_eq!(
            describe_pull_error(&reference, &other),
            "failed to pull and unpack image \"127.0.0.1:5000/x:v1\": disk full"
        );
    }
}
