//! `cargo xtask lab`: runs labs on one cluster, one after the other or `--jobs N` at a time
//! (each in its own namespace, its console lines prefixed with its name), writes the
//! reports asked for, and keeps the cluster it started up when a namespace was kept for
//! inspection (the embedded one until Ctrl-C, a kind cluster after the run).

use std::path::{Path, PathBuf};

use futures::StreamExt;
use k8s_labs_harness::lab::Language;
use k8s_labs_harness::report::json::json_report;
use k8s_labs_harness::report::junit::junit_xml;
use k8s_labs_harness::report::transcript::{transcript, transcript_file_name};
use k8s_labs_harness::report::write_file;
use k8s_labs_harness::{CancellationToken, Console, Lab, LabReport, Provider, RunOptions};

use crate::{Exit, START_GRACE, Stop, cancel_on_signal};

/// Where the kubeconfig of an embedded cluster kept up for inspection is written.
pub const INSPECT_KUBECONFIG: &str = "target/cluster/kubeconfig";

/// Step timeouts are multiplied by this on clusters that pull images, unless
/// `--timeout-scale` says otherwise.
pub const PULLING_TIMEOUT_SCALE: f64 = 3.0;

/// The files a run writes besides its console output.
#[derive(Debug, Clone, Default)]
pub struct ReportFiles {
    /// JUnit XML, one suite per lab.
    pub junit: Option<PathBuf>,
    /// JSON with every step's result.
    pub json: Option<PathBuf>,
    /// A directory for one Markdown transcript per lab and language.
    pub transcript: Option<PathBuf>,
}

/// Runs `labs` on the cluster `connect` yields. Signals stop the run (cleaning up), and
/// starting a cluster is itself interruptible.
pub async fn run_labs<F>(
    labs: Vec<Lab>,
    connect: F,
    mut options: RunOptions,
    jobs: usize,
    files: &ReportFiles,
) -> Exit
where
    F: std::future::Future<Output = Result<Provider, Exit>>,
{
    let (cancel, signals) = cancel_on_signal();
    tokio::pin!(connect);
    let provider = tokio::select! {
        provider = &mut connect => provider,
        _ = cancel.cancelled() => {
            // Let a start in progress finish, so that stopping removes all it created.
            if let Ok(Ok(provider)) = tokio::time::timeout(START_GRACE, connect).await {
                let _ = provider.stop().await;
            }
            return Exit::Signal(signals.await.unwrap_or(Stop::Interrupt));
        }
    };
    let provider = match provider {
        Ok(provider) => provider,
        Err(exit) => return exit,
    };
    if provider.pulls_images() && options.timeout_scale == 1.0 {
        // First pod starts wait for image pulls on real clusters.
        options.timeout_scale = PULLING_TIMEOUT_SCALE;
        println!(
            "this cluster pulls images: step timeouts x{PULLING_TIMEOUT_SCALE} (--timeout-scale overrides)"
        );
    }
    if options.inspect_hint.is_none() && provider.embedded_kubeconfig().is_some() {
        options.inspect_hint = Some(format!("KUBECONFIG={INSPECT_KUBECONFIG}"));
    }
    let console = Console::stdout();
    let reports = run_all(&labs, &provider, &console, &cancel, &options, jobs).await;
    let mut exit = exit_of(&reports);
    if let Err(message) = write_reports(&reports, files) {
        eprintln!("error: {message}");
        if exit == Exit::Passed {
            exit = Exit::Usage;
        }
    }
    if reports.iter().any(|report| report.kept) && !cancel.is_cancelled() {
        if let Some(kubeconfig) = provider.embedded_kubeconfig() {
            hold_embedded_cluster_for_inspection(kubeconfig, &cancel).await;
        } else if let Some(notice) = provider.keep_for_inspection() {
            println!("{notice}");
        }
    }
    if let Err(error) = provider.stop().await {
        eprintln!("error: stopping the cluster failed: {error:#}; check for leftover processes");
        if exit == Exit::Passed {
            exit = Exit::Cluster;
        }
    }
    if cancel.is_cancelled() {
        return Exit::Signal(signals.await.unwrap_or(Stop::Interrupt));
    }
    signals.abort();
    exit
}

/// Runs the labs, `jobs` at a time; reports come back in the labs' order.
pub(crate) async fn run_all(
    labs: &[Lab],
    provider: &Provider,
    console: &Console,
    cancel: &CancellationToken,
    options: &RunOptions,
    jobs: usize,
) -> Vec<LabReport> {
    if jobs <= 1 || labs.len() <= 1 {
        let mut reports = Vec::new();
        for lab in labs {
            let report = lab.run_with(provider, console, cancel, options).await;
            let stop = report.interrupted;
            reports.push(report);
            if stop {
                break;
            }
        }
        return reports;
    }
    let mut reports: Vec<(usize, LabReport)> = futures::stream::iter(labs.iter().enumerate())
        .map(|(index, lab)| {
            let console = console.prefixed(lab.name());
            async move {
                let report = lab.run_with(provider, &console, cancel, options).await;
                (index, report)
            }
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    reports.sort_by_key(|(index, _)| *index);
    reports.into_iter().map(|(_, report)| report).collect()
}

/// The exit code of a set of runs: a signal wins, then an infrastructure error, then a
/// failed claim.
pub fn exit_of(reports: &[LabReport]) -> Exit {
    if reports.iter().any(|report| report.interrupted) {
        return Exit::Signal(Stop::Interrupt);
    }
    if reports
        .iter()
        .any(|report| report.error.is_some() && report.failed_step().is_none())
    {
        return Exit::Cluster;
    }
    if reports.iter().any(|report| !report.passed()) {
        return Exit::ClaimFailed;
    }
    Exit::Passed
}

/// Writes the JUnit, JSON and transcript files asked for; the error names the file.
pub fn write_reports(reports: &[LabReport], files: &ReportFiles) -> Result<(), String> {
    if let Some(path) = &files.junit {
        let xml = junit_xml(reports).map_err(|error| format!("cannot render JUnit: {error}"))?;
        write_file(path, &xml).map_err(|error| format!("{error:#}"))?;
    }
    if let Some(path) = &files.json {
        let json = serde_json::to_string_pretty(&json_report(reports))
            .map_err(|error| format!("cannot render JSON: {error}"))?;
        write_file(path, &json).map_err(|error| format!("{error:#}"))?;
    }
    if let Some(dir) = &files.transcript {
        for report in reports {
            for language in [Language::En, Language::Zh] {
                let path = dir.join(transcript_file_name(&report.lab, language));
                write_file(&path, &transcript(report, language))
                    .map_err(|error| format!("{error:#}"))?;
            }
        }
    }
    Ok(())
}

/// Writes the embedded cluster's kubeconfig where the kept-namespace hint says, and keeps
/// the cluster up until Ctrl-C: the cluster lives in this process, so "keep" means "wait".
async fn hold_embedded_cluster_for_inspection(
    kubeconfig: &kube::config::Kubeconfig,
    cancel: &CancellationToken,
) {
    let path = Path::new(INSPECT_KUBECONFIG);
    let written = serde_json::to_string(kubeconfig)
        .map_err(|error| error.to_string())
        .and_then(|text| write_file(path, &text).map_err(|error| format!("{error:#}")));
    match written {
        Ok(()) => println!(
            "the embedded cluster stays up for inspection (kubeconfig {INSPECT_KUBECONFIG}); \
             Ctrl-C stops it"
        ),
        Err(error) => {
            eprintln!("error: cannot write the kubeconfig for inspection: {error}");
            return;
        }
    }
    cancel.cancelled().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn report(passed: bool, error: Option<&str>, interrupted: bool) -> LabReport {
        let lab = Lab::new("lab", "title", "manifests");
        let mut report = LabReport::new(&lab, "lab-x", "cluster");
        report.total_steps = 0;
        report.namespace_deleted = passed;
        report.error = error.map(str::to_string);
        report.interrupted = interrupted;
        report.elapsed = Duration::ZERO;
        report
    }

    #[test]
    fn the_exit_code_says_what_went_wrong_first() {
        assert_eq!(exit_of(&[report(true, None, false)]), Exit::Passed);
        assert_eq!(
            exit_of(&[report(true, None, false), report(false, None, false)]),
            Exit::ClaimFailed
        );
        assert_eq!(
            exit_of(&[
                report(false, None, false),
                report(false, Some("no cluster"), false)
            ]),
            Exit::Cluster
        );
        assert_eq!(
            exit_of(&[report(false, Some("x"), false), report(false, None, true)]),
            Exit::Signal(Stop::Interrupt)
        );
    }

    #[test]
    fn reports_are_written_where_asked() {
        let dir = std::env::temp_dir().join(format!("xtask-reports-{}", std::process::id()));
        let files = ReportFiles {
            junit: Some(dir.join("junit.xml")),
            json: Some(dir.join("nested/results.json")),
            transcript: Some(dir.join("handouts")),
        };
        write_reports(&[report(true, None, false)], &files).unwrap();
        assert!(
            std::fs::read_to_string(dir.join("junit.xml"))
                .unwrap()
                .contains("<testsuite")
        );
        assert!(dir.join("nested/results.json").is_file());
        assert!(dir.join("handouts/lab.md").is_file());
        assert!(dir.join("handouts/lab.zh.md").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
