//! Stands in for `embedded.rs` in a build without the embedded cluster (cargo feature
//! `embedded` off): whatever needs it is refused with one line that says what is missing and
//! what to do instead, and exit code 2.

use std::ffi::OsString;
use std::path::Path;

use k8s_labs_harness::provider::{ClusterChoice, KubernetesVersion};

use crate::{EMBEDDED_SUBCOMMANDS, Exit, embedded_not_built};

/// Nothing to check: `connect` refused the embedded choice before asking.
pub(crate) fn preflight(_choice: &ClusterChoice) -> Result<(), Exit> {
    Ok(())
}

/// `cargo xtask cluster up` without `--cluster kind`: refused.
pub(crate) async fn cluster_up(_kubeconfig_out: &Path, _version: KubernetesVersion) -> Exit {
    let what = "`cargo xtask cluster up` without --cluster kind";
    eprintln!(
        "error: {}",
        embedded_not_built(what, "pass --cluster kind, or ")
    );
    Exit::Usage
}

/// A subcommand clap did not know: one of the embedded cluster's (`bench`, `images`), said
/// as such, or a mistyped one.
pub(crate) fn subcommand(args: &[OsString]) -> Exit {
    let name = args
        .first()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    if EMBEDDED_SUBCOMMANDS.contains(&name.as_str()) {
        let what = format!("`cargo xtask {name}`");
        eprintln!("error: {}", embedded_not_built(&what, ""));
    } else {
        eprintln!("error: unrecognized subcommand {name:?}; `cargo xtask --help` lists them");
    }
    Exit::Usage
}
