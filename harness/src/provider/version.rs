//! The Kubernetes version a started cluster runs (`--k8s-version`), and the floor the labs
//! need: they are built against k8s-openapi's `v1_33` API, so no older server.

use std::fmt;
use std::str::FromStr;

/// The oldest Kubernetes minor version the labs support (k8s-openapi feature `v1_33`).
pub const OLDEST_SUPPORTED_MINOR: u32 = 33;

/// A version as `--k8s-version` takes it: `v1.33` or `v1.33.4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubernetesVersion {
    /// Always 1 today.
    pub major: u32,
    /// e.g. 33.
    pub minor: u32,
    /// e.g. 4; `None` when only the minor version was asked for.
    pub patch: Option<u32>,
}

impl KubernetesVersion {
    /// The version the started clusters run when none is asked for: the oldest the labs
    /// support, so that what passes by default passes everywhere newer.
    pub const DEFAULT: KubernetesVersion = KubernetesVersion {
        major: 1,
        minor: OLDEST_SUPPORTED_MINOR,
        patch: None,
    };

    /// Fails with one line when the labs cannot run on this version.
    pub fn check_supported(&self) -> Result<(), String> {
        if self.major != 1 || self.minor < OLDEST_SUPPORTED_MINOR {
            return Err(format!(
                "Kubernetes {self} is older than the labs support: they use the \
                 v1.{OLDEST_SUPPORTED_MINOR} API; pass --k8s-version v1.{OLDEST_SUPPORTED_MINOR} \
                 or newer"
            ));
        }
        Ok(())
    }
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(patch) => write!(f, "v{}.{}.{patch}", self.major, self.minor),
            None => write!(f, "v{}.{}", self.major, self.minor),
        }
    }
}

impl FromStr for KubernetesVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<KubernetesVersion, String> {
        let invalid = || {
            format!(
                "invalid Kubernetes version {text:?}: expected vMAJOR.MINOR or vMAJOR.MINOR.PATCH, \
                 e.g. v1.33 or v1.33.4"
            )
        };
        let numbers = text.strip_prefix('v').ok_or_else(invalid)?;
        let numbers: Vec<u32> = numbers
            .split('.')
            .map(|part| {
                if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
                    return Err(invalid());
                }
                part.parse::<u32>().map_err(|_| invalid())
            })
            .collect::<Result<_, _>>()?;
        match numbers[..] {
            [major, minor] => Ok(KubernetesVersion {
                major,
                minor,
                patch: None,
            }),
            [major, minor, patch] => Ok(KubernetesVersion {
                major,
                minor,
                patch: Some(patch),
            }),
            _ => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_with_or_without_a_patch() {
        let minor: KubernetesVersion = "v1.34".parse().unwrap();
        assert_eq!(minor.to_string(), "v1.34");
        assert_eq!(minor.patch, None);
        let patch: KubernetesVersion = "v1.33.4".parse().unwrap();
        assert_eq!((patch.major, patch.minor, patch.patch), (1, 33, Some(4)));
        assert_eq!(patch.to_string(), "v1.33.4");
    }

    #[test]
    fn malformed_versions_say_what_is_expected() {
        for bad in [
            "1.33",
            "v1",
            "v1.33.4.1",
            "v1.x",
            "v1..3",
            "v1.33-k3s1",
            "latest",
        ] {
            let error = bad.parse::<KubernetesVersion>().unwrap_err();
            assert!(
                error.contains("expected vMAJOR.MINOR or vMAJOR.MINOR.PATCH"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn versions_older_than_the_labs_api_are_refused() {
        assert!(KubernetesVersion::DEFAULT.check_supported().is_ok());
        assert!(
            "v1.37"
                .parse::<KubernetesVersion>()
                .unwrap()
                .check_supported()
                .is_ok()
        );
        let error = "v1.32.9"
            .parse::<KubernetesVersion>()
            .unwrap()
            .check_supported()
            .unwrap_err();
        assert_eq!(
            error,
            "Kubernetes v1.32.9 is older than the labs support: they use the v1.33 API; pass \
             --k8s-version v1.33 or newer"
        );
    }
}
