//! What a run found, step by step ([`LabReport`], [`StepReport`], [`StepResult`]), and the
//! files written from it: JUnit XML for CI dashboards ([`junit`]), JSON for scripts
//! ([`json`]), and Markdown transcripts that double as handouts ([`transcript`]). Every file
//! keeps every error: the diff, the diagnostics, the message. [`crate::console`] prints the
//! same report for people as the run goes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::expect::{Mismatch, Redactions};
use crate::lab::Lab;

/// How one step ended.
#[derive(Debug, Clone)]
pub enum StepResult {
    /// Every claim of the step held; `output` is what it observed (kubectl-like text).
    Passed {
        /// What the step observed.
        output: String,
    },
    /// The step could not run here (e.g. no node access); the reason.
    Skipped {
        /// Why the step was skipped.
        reason: String,
    },
    /// A claim did not hold or the step could not finish.
    Failed {
        /// The error, with its causes, as one text.
        message: String,
        /// The failed claim, when the failure is one (for a diff).
        mismatch: Option<Mismatch>,
    },
}

/// The record of one step of a run.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// The step's name.
    pub name: String,
    /// The kubectl command the step stands for (namespace filled in).
    pub command: String,
    /// What the step shows, in English (may be empty).
    pub explanation_en: String,
    /// What the step shows, in Chinese (the English one when there is none).
    pub explanation_zh: String,
    /// How long the step took.
    pub elapsed: Duration,
    /// The step's timeout (scaled).
    pub timeout: Duration,
    /// How many tries retried checks took (0 when the step retried nothing).
    pub tries: usize,
    /// Why the first try of a retried check failed (`None` when nothing was retried).
    pub first_failed_try: Option<String>,
    /// Golden files `--bless` rewrote, with what changed.
    pub blessed: Vec<(PathBuf, String)>,
    /// What to look at when the step fails (may be empty).
    pub hint: String,
    /// Values the step's claims checked, highlighted in its output on a color console.
    pub highlights: Vec<String>,
    /// How it ended.
    pub result: StepResult,
}

impl StepReport {
    /// Whether the step counts as a success (passed or skipped with a reason).
    pub fn ok(&self) -> bool {
        !matches!(self.result, StepResult::Failed { .. })
    }
}

/// The record of one lab run.
#[derive(Debug, Clone)]
pub struct LabReport {
    /// The lab's name.
    pub lab: String,
    /// The lab's title.
    pub title: String,
    /// The cluster it ran on, as the start line shows it.
    pub cluster: String,
    /// The namespace the run used.
    pub namespace: String,
    /// The steps that ran, in order (the run stops at the first failure).
    pub steps: Vec<StepReport>,
    /// How many steps the lab has (more than `steps.len()` when the run stopped early).
    pub total_steps: usize,
    /// The names of all the lab's steps, run or not.
    pub step_names: Vec<String>,
    /// Set when the run could not start or clean up (cluster errors rather than claims).
    pub error: Option<String>,
    /// Set when a signal stopped the run.
    pub interrupted: bool,
    /// Pod statuses and events collected when a step failed.
    pub diagnostics: Option<String>,
    /// Whether the namespace was confirmed gone at the end.
    pub namespace_deleted: bool,
    /// Whether the namespace was kept on purpose (`--keep`).
    pub kept: bool,
    /// Wall time of the whole run, cleanup included.
    pub elapsed: Duration,
}

impl LabReport {
    /// The report of a run of `lab` that has not started yet.
    pub fn new(lab: &Lab, namespace: &str, cluster: &str) -> LabReport {
        LabReport {
            lab: lab.name().to_string(),
            title: lab.title().to_string(),
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
            steps: Vec::new(),
            total_steps: lab.steps().len(),
            step_names: lab
                .steps()
                .iter()
                .map(|step| step.name().to_string())
                .collect(),
            error: None,
            interrupted: false,
            diagnostics: None,
            namespace_deleted: false,
            kept: false,
            elapsed: Duration::ZERO,
        }
    }

    /// Whether every claim held and the run cleaned up after itself (or kept its namespace
    /// because it was asked to).
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && !self.interrupted
            && (self.namespace_deleted || self.kept)
            && self.steps.len() == self.total_steps
            && self.steps.iter().all(StepReport::ok)
    }

    /// What this run redacts from the outputs it shows in files: the generic placeholders and
    /// its namespace as `[NS]`.
    pub fn redactions(&self) -> Redactions {
        Redactions::new().with_value(&self.namespace, "[NS]")
    }

    /// The first failed step, if any.
    pub fn failed_step(&self) -> Option<&StepReport> {
        self.steps.iter().find(|step| !step.ok())
    }
}

pub mod json;
pub mod junit;
pub mod transcript;

/// Elapsed time for people: `12 ms`, `1.42 s`.
pub fn format_elapsed(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(1) {
        format!("{} ms", elapsed.as_millis())
    } else {
        format!("{:.2} s", elapsed.as_secs_f64())
    }
}

/// How a step of a report ended, as one word (`passed`, `failed`, `skipped`, `not-run`).
pub fn step_status(report: &LabReport, index: usize) -> &'static str {
    match report.steps.get(index).map(|step| &step.result) {
        Some(StepResult::Passed { .. }) => "passed",
        Some(StepResult::Failed { .. }) => "failed",
        Some(StepResult::Skipped { .. }) => "skipped",
        None => "not-run",
    }
}

/// The full text of a failed step: message, diff of the failed claim and its raw output.
pub fn failure_text(result: &StepResult) -> Option<String> {
    let StepResult::Failed { message, mismatch } = result else {
        return None;
    };
    Some(match mismatch {
        Some(mismatch) => format!("{message}\n\n{mismatch}"),
        None => message.clone(),
    })
}

/// Writes `text` to `path`, creating its directory.
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create directory {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
pub(crate) mod fixtures {
    use std::time::Duration;

    use crate::expect::Mismatch;
    use crate::report::{LabReport, StepReport, StepResult};

    fn step(name: &str, command: &str, result: StepResult) -> StepReport {
        StepReport {
            name: name.to_string(),
            command: command.to_string(),
            explanation_en: format!("Why {name} matters."),
            explanation_zh: format!("{name} 的意义。"),
            elapsed: Duration::from_millis(1500),
            timeout: Duration::from_secs(30),
            tries: 3,
            first_failed_try: Some("nslookup printed \";; connection timed out\"".into()),
            blessed: Vec::new(),
            hint: String::new(),
            highlights: Vec::new(),
            result,
        }
    }

    /// A run of three steps where the second failed and the third did not run.
    pub(crate) fn failed_run() -> LabReport {
        LabReport {
            lab: "statefulset-dns".into(),
            title: "StatefulSet web".into(),
            cluster: "embedded cluster v1.33.0".into(),
            namespace: "lab-statefulset-dns-x7k2m".into(),
            steps: vec![
                step(
                    "apply web.yaml",
                    "kubectl apply -f web.yaml",
                    StepResult::Passed {
                        output:
                            "service/nginx created\nweb-0 10.244.0.7 in lab-statefulset-dns-x7k2m\n"
                                .into(),
                    },
                ),
                step(
                    "pods ready",
                    "kubectl get pod",
                    StepResult::Failed {
                        message: "claim failed: pods <ready>".into(),
                        mismatch: Some(Mismatch::new("pods <ready>", "web-0\nweb-1\n", "web-0\n")),
                    },
                ),
            ],
            total_steps: 3,
            step_names: vec![
                "apply web.yaml".into(),
                "pods ready".into(),
                "nslookup".into(),
            ],
            error: None,
            interrupted: false,
            diagnostics: Some("pods in lab-statefulset-dns-x7k2m:\n  pod web-0: Running\n".into()),
            namespace_deleted: true,
            kept: false,
            elapsed: Duration::from_secs(4),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_times_read_naturally() {
        assert_eq!(format_elapsed(Duration::from_millis(12)), "12 ms");
        assert_eq!(format_elapsed(Duration::from_millis(1420)), "1.42 s");
    }
}
