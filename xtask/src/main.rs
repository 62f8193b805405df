//! `cargo xtask`: the project's only CLI (matklad's cargo-xtask pattern: plain Rust, run via
//! the alias in .cargo/config.toml).
//!
//! Exit codes: 0 every claim held; 1 a claim failed; 2 usage or configuration error; 3 the
//! cluster could not be started or reached; 130/143 stopped by SIGINT/SIGTERM.

#[cfg(not(feature = "embedded"))]
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[cfg(feature = "embedded")]
mod bench;
#[cfg(feature = "embedded")]
mod bench_memory;
#[cfg(feature = "embedded")]
mod bench_wait;
mod check;
mod cluster_choice;
mod cluster_up;
#[cfg(feature = "embedded")]
mod embedded;
// Without the embedded cluster, a stand-in that refuses what needs it in one line.
#[cfg(not(feature = "embedded"))]
#[path = "embedded_absent.rs"]
mod embedded;
#[cfg(feature = "embedded")]
mod images;
mod run_labs;
mod soak;
mod walk;

use clap::{Parser, Subcommand, ValueEnum};
use k8s_labs_harness::provider::{Backends, ConnectError};
use k8s_labs_harness::{Keep, Lab, Language, Provider, RunOptions};
use tokio::signal::unix::{SignalKind, signal};
use xtask::registry;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Executable, self-checking Kubernetes tutorial labs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lists the labs with their titles.
    Labs,
    /// Runs a lab (or every lab) on the embedded cluster or on the cluster of a kubeconfig.
    Lab {
        /// The lab to run (see `cargo xtask labs`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Runs every lab.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        cluster: cluster_choice::ClusterArgs,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        walk: walk::WalkArgs,
    },
    /// Checks a lab's claims against a namespace where a student applied it by hand.
    Check(check::CheckArgs),
    /// The embedded cluster.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Every lab, round after round on one cluster while busy loops load the machine: counts
    /// failed rounds and steps that passed only after retries.
    Soak {
        /// How many times to run every lab.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000))]
        rounds: u16,
        /// Run up to N labs at a time, each in its own namespace.
        #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// How many busy loops keep cores busy meanwhile.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=64))]
        busy_cores: u16,
        #[command(flatten)]
        cluster: cluster_choice::ClusterArgs,
    },
    /// Speed and scale figures of the embedded cluster (printed, not asserted).
    #[cfg(feature = "embedded")]
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// The node's pulled-image store: load image archives, list images, prune unused ones.
    #[cfg(feature = "embedded")]
    Images {
        #[command(subcommand)]
        command: images::ImagesCommand,
    },
    /// Any other name: without the embedded cluster, `bench` and `images` come here to be
    /// refused in one line (with it, clap refuses unknown names itself).
    #[cfg(not(feature = "embedded"))]
    #[command(external_subcommand)]
    NotBuilt(Vec<OsString>),
}

/// How labs run and what they write, beyond which cluster they run on.
#[derive(clap::Args)]
struct RunArgs {
    /// When to keep a lab's namespace for inspection instead of deleting it.
    #[arg(long, value_enum, default_value_t = KeepArg::Never)]
    keep: KeepArg,
    /// Run up to N labs at a time, each in its own namespace.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Multiply every step timeout by this factor (slow clusters, first image pulls).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0, value_parser = parse_timeout_scale)]
    timeout_scale: f64,
    /// Rewrite golden files under labs/<lab>/expected/ that no longer match, showing what changed.
    #[arg(long)]
    bless: bool,
    /// Print each step's explanation before it runs, in this language.
    #[arg(long, value_enum, value_name = "LANG")]
    explain: Option<LangArg>,
    /// Write a JUnit XML report (a test suite per lab, a test case per step).
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Write every step's result, duration and tries as JSON.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Write one Markdown transcript per lab and language into this directory.
    #[arg(long, value_name = "DIR")]
    transcript: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum KeepArg {
    Never,
    OnFailure,
    Always,
}

#[derive(Clone, Copy, ValueEnum)]
enum LangArg {
    En,
    Zh,
}

impl From<LangArg> for Language {
    fn from(lang: LangArg) -> Language {
        match lang {
            LangArg::En => Language::En,
            LangArg::Zh => Language::Zh,
        }
    }
}

pub(crate) fn parse_timeout_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(scale) if scale.is_finite() && (0.1..=100.0).contains(&scale) => Ok(scale),
        _ => Err(format!("{text:?} is not a factor between 0.1 and 100")),
    }
}

impl RunArgs {
    fn options(&self) -> RunOptions {
        RunOptions {
            keep: match self.keep {
                KeepArg::Never => Keep::Never,
                KeepArg::OnFailure => Keep::OnFailure,
                KeepArg::Always => Keep::Always,
            },
            timeout_scale: self.timeout_scale,
            bless: self.bless,
            explain: self.explain.map(Language::from),
            inspect_hint: None,
            pacer: None,
            existing_namespace: None,
        }
    }

    fn files(&self) -> run_labs::ReportFiles {
        run_labs::ReportFiles {
            junit: self.junit.clone(),
            json: self.json.clone(),
            transcript: self.transcript.clone(),
        }
    }
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Starts the embedded cluster in the foreground until Ctrl-C/SIGTERM, or creates a kind
    /// cluster and leaves it running (`--cluster kind`).
    Up {
        /// Where to write the kubeconfig.
        #[arg(long, value_name = "PATH", default_value = "target/cluster/kubeconfig")]
        kubeconfig_out: PathBuf,
        /// Which cluster to start.
        #[arg(long, value_enum, value_name = "KIND", default_value = "embedded")]
        cluster: cluster_up::UpKind,
        /// Kubernetes version of the cluster, vMAJOR.MINOR[.PATCH] [default: v1.33]
        #[arg(long, value_name = "VERSION", value_parser = cluster_choice::parse_version)]
        k8s_version: Option<k8s_labs_harness::provider::KubernetesVersion>,
    },
}

/// Why the command stopped, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    Passed,
    ClaimFailed,
    Usage,
    Cluster,
    Signal(Stop),
}

/// The signal that stopped a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Interrupt,
    Terminate,
}

impl Exit {
    fn code(self) -> u8 {
        match self {
            Exit::Passed => 0,
            Exit::ClaimFailed => 1,
            Exit::Usage => 2,
            Exit::Cluster => 3,
            Exit::Signal(Stop::Interrupt) => 130,
            Exit::Signal(Stop::Terminate) => 143,
        }
    }
}

/// Logs shown without RUST_LOG: warnings, except kube's client logging each failed request
/// at error level, which our own one-line errors already report; and the progress of long
/// image pulls (`k8s_labs_node::registry::PULL_PROGRESS`).
const DEFAULT_LOG_FILTER: &str = "warn,kube_client::client::builder=off,k8s_labs::pulls=info";

/// How long a cluster start interrupted by a signal may still take before we give up on it.
pub(crate) const START_GRACE: Duration = Duration::from_secs(30);

/// Every lab of the project, in the order `labs` lists them.
fn all_labs() -> Vec<Lab> {
    registry::LABS.iter().map(|entry| (entry.lab)()).collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}; check the process limits");
            return ExitCode::from(Exit::Cluster.code());
        }
    };
    let exit = runtime.block_on(run(cli));
    ExitCode::from(exit.code())
}

async fn run(cli: Cli) -> Exit {
    match cli.command {
        Command::Labs => list_labs(),
        Command::Lab {
            name,
            all,
            cluster,
            run,
            walk,
        } => run_lab_command(name.as_deref(), all, &cluster, &run, &walk).await,
        Command::Check(args) => check::check(args).await,
        Command::Soak {
            rounds,
            jobs,
            busy_cores,
            cluster,
        } => {
            soak::soak(
                all_labs(),
                connect(&cluster),
                usize::from(rounds),
                usize::from(jobs),
                usize::from(busy_cores),
            )
            .await
        }
        Command::Cluster {
            command:
                ClusterCommand::Up {
                    kubeconfig_out,
                    cluster,
                    k8s_version,
                },
        } => cluster_up::cluster_up(&kubeconfig_out, cluster, k8s_version).await,
        #[cfg(feature = "embedded")]
        Command::Images { command } => {
            // Plain file work: off the runtime's threads.
            tokio::task::spawn_blocking(move || images::images(command))
                .await
                .unwrap_or(Exit::Usage)
        }
        #[cfg(feature = "embedded")]
        Command::Bench { command } => bench::bench(command).await,
        #[cfg(not(feature = "embedded"))]
        Command::NotBuilt(args) => embedded::subcommand(&args),
    }
}

/// `cargo xtask labs`: each lab's name and title.
fn list_labs() -> Exit {
    let labs = all_labs();
    let width = labs.iter().map(|lab| lab.name().len()).max().unwrap_or(0);
    for lab in labs {
        println!("{:<width$}  {}", lab.name(), lab.title());
    }
    Exit::Passed
}

/// `cargo xtask lab <name>|--all …`.
async fn run_lab_command(
    name: Option<&str>,
    all: bool,
    cluster: &cluster_choice::ClusterArgs,
    run: &RunArgs,
    walk: &walk::WalkArgs,
) -> Exit {
    let labs = match select_labs(name, all) {
        Ok(labs) => labs,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::Usage;
        }
    };
    let connecting = connect(cluster);
    let mut options = run.options();
    if walk.walk {
        // The pacer shows the explanation itself, wrapped, with the command.
        options.explain = None;
        options.pacer = Some(std::sync::Arc::new(walk::WalkPacer::new(
            walk::stdin_lines(),
            walk.auto,
            walk.lang.into(),
        )));
    }
    run_labs::run_labs(
        labs,
        connecting,
        options,
        usize::from(run.jobs),
        &run.files(),
    )
    .await
}

fn select_labs(name: Option<&str>, all: bool) -> Result<Vec<Lab>, String> {
    let labs = all_labs();
    if all {
        return Ok(labs);
    }
    let Some(name) = name else {
        return Err("name a lab or pass --all; `cargo xtask labs` lists them".to_string());
    };
    let known: Vec<String> = labs.iter().map(|lab| lab.name().to_string()).collect();
    match labs.into_iter().find(|lab| lab.name() == name) {
        Some(lab) => Ok(vec![lab]),
        None => Err(format!(
            "no lab named {name:?}; the labs are: {}",
            known.join(", ")
        )),
    }
}

/// A token cancelled on SIGINT or SIGTERM, and the task that reports which signal came.
pub(crate) fn cancel_on_signal() -> (
    k8s_labs_harness::CancellationToken,
    tokio::task::JoinHandle<Stop>,
) {
    let cancel = k8s_labs_harness::CancellationToken::new();
    let signal_cancel = cancel.clone();
    let stop = stop_signal();
    let signals = tokio::spawn(async move {
        let stop = stop.await;
        signal_cancel.cancel();
        stop
    });
    (cancel, signals)
}

/// Resolves on SIGINT or SIGTERM with which one it was. The handlers are installed when this
/// is called, not when the future is first polled, so a signal that comes while the caller is
/// still setting up (before a spawned task ran) is caught rather than killing the process.
pub(crate) fn stop_signal() -> impl std::future::Future<Output = Stop> + Send + 'static {
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        let (Ok(mut interrupt), Ok(mut terminate)) = handlers else {
            // Without signal handlers we cannot clean up on a signal; never resolve.
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => Stop::Interrupt,
            _ = terminate.recv() => Stop::Terminate,
        }
    }
}

/// The optional clusters this build of xtask has: its own features, which decide what its
/// commands accept (the harness it links may have more, asked for by another package).
const BACKENDS: Backends = Backends {
    embedded: cfg!(feature = "embedded"),
    k3s: cfg!(feature = "k3s"),
};

/// The subcommands that exist only with the embedded cluster (feature `embedded`).
#[cfg(any(test, not(feature = "embedded")))]
const EMBEDDED_SUBCOMMANDS: [&str; 2] = ["bench", "images"];

/// The one line for `what`, which needs the embedded cluster, in a build without it;
/// `instead` is another way forward, ending in ", or " (or empty).
#[cfg(any(test, not(feature = "embedded")))]
fn embedded_not_built(what: &str, instead: &str) -> String {
    format!(
        "{what} needs the embedded cluster, which this xtask was built without (cargo feature \
         `embedded`); {instead}build with default features"
    )
}

/// Starts the embedded cluster (after its preflight), an ephemeral k3s, or connects to a
/// kubeconfig's cluster; on failure (or a choice this build lacks) prints one error line and
/// returns the exit code.
async fn connect(cluster: &cluster_choice::ClusterArgs) -> Result<Provider, Exit> {
    let choice = cluster.choice();
    if let Some(line) = BACKENDS.missing(&choice) {
        eprintln!("error: {line}");
        return Err(Exit::Usage);
    }
    embedded::preflight(&choice)?;
    cluster.connect().await.map_err(report_connect_error)
}

/// `path` made absolute (relative to the current directory), its parent directory created;
/// when that fails, the error line is printed and the exit code returned.
pub(crate) fn kubeconfig_path(path: &Path) -> Result<PathBuf, Exit> {
    let absolute = std::path::absolute(path).map_err(|error| {
        eprintln!("error: invalid path {}: {error}", path.display());
        Exit::Usage
    })?;
    if let Some(parent) = absolute.parent()
        && let Err(error) = std::fs::create_dir_all(parent)
    {
        eprintln!(
            "error: cannot create {}: {error}; choose another --kubeconfig-out",
            parent.display()
        );
        return Err(Exit::Usage);
    }
    Ok(absolute)
}

/// Prints why connecting failed, as one line, and returns its exit code: a usage error (2) for
/// the user's choice, an infrastructure one (3) for the cluster.
pub(crate) fn report_connect_error(error: ConnectError) -> Exit {
    eprintln!("error: {error}");
    match error {
        ConnectError::Config(_) => Exit::Usage,
        ConnectError::Cluster(_) => Exit::Cluster,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn unknown_lab_names_list_the_labs() {
        let error = select_labs(Some("nope"), false).err().unwrap();
        assert!(error.contains("no lab named \"nope\""), "{error}");
        assert!(error.contains("statefulset-dns"), "{error}");
        assert_eq!(select_labs(None, true).unwrap().len(), all_labs().len());
        for name in ["statefulset-dns", "replicaset-scale", "pvc-templates"] {
            assert_eq!(select_labs(Some(name), false).unwrap()[0].name(), name);
        }
    }

    #[test]
    fn the_embedded_subcommands_exist_exactly_when_the_embedded_cluster_does() {
        // A build without it refuses these names with a line of its own (embedded_absent.rs).
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|command| command.get_name().to_string())
            .collect();
        for name in EMBEDDED_SUBCOMMANDS {
            assert_eq!(
                names.iter().any(|known| known == name),
                cfg!(feature = "embedded"),
                "{name} in {names:?}"
            );
        }
    }

    #[test]
    fn a_command_without_the_embedded_cluster_is_one_line_saying_what_to_do() {
        let line = embedded_not_built("`cargo xtask bench`", "");
        assert_eq!(
            line,
            "`cargo xtask bench` needs the embedded cluster, which this xtask was built without \
             (cargo feature `embedded`); build with default features"
        );
        let line = embedded_not_built("`cargo xtask cluster up`", "pass --cluster kind, or ");
        assert!(
            line.ends_with("; pass --cluster kind, or build with default features"),
            "{line}"
        );
    }

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(Exit::Passed.code(), 0);
        assert_eq!(Exit::ClaimFailed.code(), 1);
        assert_eq!(Exit::Usage.code(), 2);
        assert_eq!(Exit::Cluster.code(), 3);
        assert_eq!(Exit::Signal(Stop::Interrupt).code(), 130);
        assert_eq!(Exit::Signal(Stop::Terminate).code(), 143);
    }

    #[test]
    fn lab_needs_a_name_or_all_but_not_both() {
        assert!(Cli::try_parse_from(["xtask", "lab"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "lab", "x", "--all"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "lab", "--all"]).is_ok());
        assert!(
            Cli::try_parse_from(["xtask", "lab", "x", "--cluster", "k3s", "--kubeconfig", "k"])
                .is_err()
        );
    }

    #[test]
    fn run_flags_are_checked_by_the_parser() {
        let parsed = Cli::try_parse_from([
            "xtask",
            "lab",
            "--all",
            "--keep",
            "on-failure",
            "--jobs",
            "3",
            "--timeout-scale",
            "2.5",
            "--junit",
            "j.xml",
            "--json",
            "r.json",
            "--transcript",
            "out",
            "--bless",
        ]);
        assert!(parsed.is_ok());
        for bad in [
            vec!["xtask", "lab", "--all", "--keep", "sometimes"],
            vec!["xtask", "lab", "--all", "--jobs", "0"],
            vec!["xtask", "lab", "--all", "--timeout-scale", "0"],
            vec!["xtask", "lab", "--all", "--timeout-scale", "fast"],
            vec!["xtask", "lab", "--all", "--explain", "fr"],
        ] {
            assert!(
                Cli::try_parse_from(&bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }
}
