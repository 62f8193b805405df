//! Which optional cluster backends a build has. The embedded cluster (cargo feature
//! `embedded`) and k3s in a container (feature `k3s`) are default features; a build for real
//! clusters only leaves both out, and a choice that needs one is refused with one line that
//! says what is missing and what to do instead.

use super::ClusterChoice;

/// The optional backends a binary was built with, as its own features say (a binary built
/// without `embedded` may still link a harness that has it, when another package of the same
/// build asked for it; what the binary accepts follows its own features).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backends {
    /// The embedded cluster (feature `embedded`).
    pub embedded: bool,
    /// k3s in a container (feature `k3s`).
    pub k3s: bool,
}

impl Backends {
    /// The one error line for a `choice` whose backend is not in this build, `None` when it
    /// can be tried.
    pub fn missing(self, choice: &ClusterChoice) -> Option<&'static str> {
        match choice {
            ClusterChoice::Embedded { .. } if !self.embedded => Some(NO_EMBEDDED),
            ClusterChoice::K3s { .. } if !self.k3s => Some(NO_K3S),
            _ => None,
        }
    }
}

/// Why the embedded cluster cannot be chosen in a build without it, and what to do instead.
pub const NO_EMBEDDED: &str = "the embedded cluster (the default when no --kubeconfig is \
    given) is not in this build (cargo feature `embedded`); pass --kubeconfig PATH to run on an \
    existing cluster, or --cluster kind, or build with default features";

/// Why `--cluster k3s` cannot be chosen in a build without it, and what to do instead.
pub const NO_K3S: &str = "--cluster k3s is not in this build (cargo feature `k3s`); pass \
    --kubeconfig PATH to run on an existing cluster, or --cluster kind, or build with \
    `--features k3s` or default features";

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Backends = Backends {
        embedded: false,
        k3s: false,
    };
    const ALL: Backends = Backends {
        embedded: true,
        k3s: true,
    };

    fn embedded() -> ClusterChoice {
        ClusterChoice::Embedded {
            kubernetes_version: None,
        }
    }

    fn k3s() -> ClusterChoice {
        ClusterChoice::K3s {
            kubernetes_version: None,
        }
    }

    #[test]
    fn a_missing_backend_is_one_line_naming_the_feature_and_the_ways_forward() {
        let line = NONE.missing(&embedded()).unwrap();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("cargo feature `embedded`"), "{line}");
        assert!(line.contains("--kubeconfig PATH"), "{line}");
        let line = NONE.missing(&k3s()).unwrap();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("cargo feature `k3s`"), "{line}");
        assert!(line.contains("--kubeconfig PATH"), "{line}");
    }

    #[test]
    fn each_backend_answers_only_for_its_own_choice() {
        let only_k3s = Backends {
            embedded: false,
            k3s: true,
        };
        assert!(only_k3s.missing(&embedded()).is_some());
        assert_eq!(only_k3s.missing(&k3s()), None);
        assert_eq!(ALL.missing(&embedded()), None);
        assert_eq!(ALL.missing(&k3s()), None);
        let always_there = [
            ClusterChoice::Kind {
                kubernetes_version: None,
            },
            ClusterChoice::Kubeconfig {
                path: None,
                context: None,
            },
        ];
        for choice in always_there {
            assert_eq!(NONE.missing(&choice), None, "{choice:?}");
        }
    }
}
