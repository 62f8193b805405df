//! Files written from lab reports: JUnit XML for CI dashboards ([`junit`]), JSON for scripts
//! ([`json`]), and Markdown transcripts that double as handouts ([`transcript`]). Every file
//! keeps every error: the diff, the diagnostics, the message.

use std::path::Path;

use anyhow::{Context, Result};

use crate::report::{LabReport, StepResult};

pub mod json;
pub mod junit;
pub mod transcript;

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
