//! The flags that choose the cluster a lab runs on, shared by every command that runs labs
//! (`#[command(flatten)]`): the embedded cluster by default, an ephemeral k3s or kind cluster,
//! or any cluster of a kubeconfig. Contradictions (a kubeconfig *and* a cluster to start) are refused by clap
//! before anything starts.

use std::path::PathBuf;

use k8s_labs_harness::Provider;
use k8s_labs_harness::provider::{ClusterChoice, ConnectError, KubernetesVersion};

/// Which cluster `--cluster` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterKindArg {
    /// The cluster in this process (needs root and scripts/install-deps; no Docker).
    Embedded,
    /// An ephemeral k3s in a container (needs Docker, or podman through DOCKER_HOST).
    K3s,
    /// An ephemeral kind cluster (needs `kind` on PATH, and Docker or podman).
    Kind,
}

/// Where the labs run.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ClusterArgs {
    /// Start this cluster for the run and take it down at the end [default: embedded]
    #[arg(
        long,
        value_enum,
        value_name = "KIND",
        conflicts_with_all = ["kubeconfig", "context"]
    )]
    pub cluster: Option<ClusterKindArg>,
    /// Kubernetes version of the started cluster, vMAJOR.MINOR[.PATCH] [default: v1.33]
    #[arg(
        long,
        value_name = "VERSION",
        value_parser = parse_version,
        conflicts_with_all = ["kubeconfig", "context"]
    )]
    pub k8s_version: Option<KubernetesVersion>,
    /// Run on the cluster of this kubeconfig (kind, k3s, a cloud cluster) instead of starting one
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context [default: its current context]; alone, it selects a context of
    /// the kubeconfig kubectl uses ($KUBECONFIG, else ~/.kube/config)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

pub(crate) fn parse_version(text: &str) -> Result<KubernetesVersion, String> {
    text.parse()
}

impl ClusterArgs {
    /// What the flags ask for. `$KUBECONFIG` alone never moves a run off the embedded
    /// cluster: a lab creates and deletes namespaces, so it only touches a cluster named on
    /// the command line (`--kubeconfig` or `--context`).
    pub fn choice(&self) -> ClusterChoice {
        if self.kubeconfig.is_some() || self.context.is_some() {
            return ClusterChoice::Kubeconfig {
                path: self.kubeconfig.clone(),
                context: self.context.clone(),
            };
        }
        match self.cluster.unwrap_or(ClusterKindArg::Embedded) {
            ClusterKindArg::Embedded => ClusterChoice::Embedded {
                kubernetes_version: self.k8s_version,
            },
            ClusterKindArg::K3s => ClusterChoice::K3s {
                kubernetes_version: self.k8s_version,
            },
            ClusterKindArg::Kind => ClusterChoice::Kind {
                kubernetes_version: self.k8s_version,
            },
        }
    }

    /// Starts or connects to the chosen cluster. [`ConnectError::Config`] is a usage error
    /// (exit 2), [`ConnectError::Cluster`] an infrastructure one (exit 3); both display as
    /// one complete line, to be printed as `error: {error}`.
    pub async fn connect(&self) -> Result<Provider, ConnectError> {
        Provider::from_choice(self.choice()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use k8s_labs_harness::provider::Backends;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        cluster: ClusterArgs,
    }

    fn parse(args: &[&str]) -> Result<ClusterArgs, clap::Error> {
        let mut argv = vec!["xtask"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|cli| cli.cluster)
    }

    fn version(text: &str) -> Option<KubernetesVersion> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn the_embedded_cluster_is_the_default() {
        assert_eq!(
            parse(&[]).unwrap().choice(),
            ClusterChoice::Embedded {
                kubernetes_version: None
            }
        );
        assert_eq!(
            parse(&["--k8s-version", "v1.35"]).unwrap().choice(),
            ClusterChoice::Embedded {
                kubernetes_version: version("v1.35")
            }
        );
    }

    #[test]
    fn k3s_takes_a_version() {
        assert_eq!(
            parse(&["--cluster", "k3s", "--k8s-version", "v1.34.2"])
                .unwrap()
                .choice(),
            ClusterChoice::K3s {
                kubernetes_version: version("v1.34.2")
            }
        );
    }

    #[test]
    fn kind_takes_a_version() {
        assert_eq!(
            parse(&["--cluster", "kind", "--k8s-version", "v1.35"])
                .unwrap()
                .choice(),
            ClusterChoice::Kind {
                kubernetes_version: version("v1.35")
            }
        );
    }

    #[test]
    fn a_kubeconfig_or_a_context_selects_an_existing_cluster() {
        assert_eq!(
            parse(&["--kubeconfig", "/tmp/k", "--context", "kind-labs"])
                .unwrap()
                .choice(),
            ClusterChoice::Kubeconfig {
                path: Some(PathBuf::from("/tmp/k")),
                context: Some("kind-labs".to_string())
            }
        );
        assert_eq!(
            parse(&["--context", "kind-labs"]).unwrap().choice(),
            ClusterChoice::Kubeconfig {
                path: None,
                context: Some("kind-labs".to_string())
            }
        );
    }

    #[test]
    fn contradictory_flags_are_refused_by_clap() {
        for args in [
            &["--cluster", "k3s", "--kubeconfig", "/tmp/k"][..],
            &["--cluster", "embedded", "--context", "c"][..],
            &["--k8s-version", "v1.34", "--kubeconfig", "/tmp/k"][..],
        ] {
            let error = parse(args).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{args:?}"
            );
        }
        let error = parse(&["--cluster", "minikube"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::InvalidValue);
    }

    #[test]
    fn a_malformed_version_is_refused_with_the_expected_form() {
        let error = parse(&["--k8s-version", "1.33"]).unwrap_err().to_string();
        assert!(
            error.contains("expected vMAJOR.MINOR or vMAJOR.MINOR.PATCH"),
            "{error}"
        );
    }

    #[test]
    fn a_build_for_real_clusters_only_refuses_the_default_and_k3s_in_one_line() {
        let real_only = Backends {
            embedded: false,
            k3s: false,
        };
        for args in [
            &[][..],
            &["--cluster", "embedded"][..],
            &["--cluster", "k3s"][..],
        ] {
            let line = real_only.missing(&parse(args).unwrap().choice());
            let line = line.unwrap_or_else(|| panic!("{args:?} should be refused"));
            assert!(!line.contains('\n'), "{line}");
            assert!(line.contains("--kubeconfig PATH"), "{line}");
        }
        for args in [&["--kubeconfig", "/tmp/k"][..], &["--cluster", "kind"][..]] {
            assert_eq!(
                real_only.missing(&parse(args).unwrap().choice()),
                None,
                "{args:?}"
            );
        }
    }

    #[cfg(feature = "k3s")]
    #[tokio::test]
    async fn k3s_without_docker_is_one_clear_line() {
        use k8s_labs_harness::provider::EngineEnv;
        let args = parse(&["--cluster", "k3s"]).unwrap();
        let no_engine = EngineEnv {
            docker_host: Some("unix:///nonexistent/docker.sock".to_string()),
            ..Default::default()
        };
        match Provider::from_choice_with(args.choice(), &no_engine).await {
            Err(error @ ConnectError::Config(_)) => {
                let line = error.to_string();
                assert!(!line.contains('\n'), "{line}");
                assert!(
                    line.starts_with("--cluster k3s needs a Docker-compatible engine"),
                    "{line}"
                );
                assert!(line.contains("--kubeconfig PATH"), "{line}");
            }
            Err(other) => panic!("expected a usage error, got {other}"),
            Ok(_) => panic!("k3s started without an engine"),
        }
    }
}
