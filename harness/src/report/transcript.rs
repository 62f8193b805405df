//! Markdown transcripts: for each step its explanation, the kubectl command a student would
//! type and the real output of this run, redacted (`[IP]`, `[AGE]`, `[NS]` …). A transcript
//! of a passing run is a handout that cannot drift from what the cluster really does; it
//! holds no timings, so two runs on the same cluster give the same text.

use std::fmt::Write as _;

use super::step_status;
use crate::lab::Language;
use crate::report::{LabReport, StepResult};

/// The transcript of `report` with explanations in `language`.
pub fn transcript(report: &LabReport, language: Language) -> String {
    let redactions = report.redactions();
    let mut text = String::new();
    let _ = writeln!(text, "# {} (`{}`)\n", report.title, report.lab);
    let note = match language {
        Language::En => {
            "Generated from a real run by `cargo xtask lab --transcript`. `[NS]` stands for the \
             lab's namespace (the tutorial's `default`); `[IP]`, `[AGE]`, `[HASH]` and `[UID]` \
             stand for what differs between runs."
        }
        Language::Zh => {
            "由 `cargo xtask lab --transcript` 根据一次真实运行生成。`[NS]` 表示实验的命名空间\
             （教程中的 `default`）；`[IP]`、`[AGE]`、`[HASH]`、`[UID]` 表示每次运行都会不同的内容。"
        }
    };
    let _ = writeln!(text, "{note}\n");
    for (index, name) in report.step_names.iter().enumerate() {
        let _ = writeln!(text, "## {}. {}\n", index + 1, name);
        let Some(step) = report.steps.get(index) else {
            let _ = writeln!(text, "_{}_\n", step_status(report, index));
            continue;
        };
        let explanation = match language {
            Language::En => &step.explanation_en,
            Language::Zh => &step.explanation_zh,
        };
        if !explanation.is_empty() {
            let _ = writeln!(text, "{explanation}\n");
        }
        let _ = writeln!(text, "```sh\n$ {}\n```\n", redactions.apply(&step.command));
        match &step.result {
            StepResult::Passed { output } => {
                if !output.trim().is_empty() {
                    let output = redactions.apply(output);
                    let _ = writeln!(text, "```text\n{}\n```\n", output.trim_end());
                }
                let _ = writeln!(text, "✓ passed\n");
            }
            StepResult::Skipped { reason } => {
                let _ = writeln!(text, "skipped: {}\n", redactions.apply(reason));
            }
            StepResult::Failed { .. } => {
                let failure = super::failure_text(&step.result).unwrap_or_default();
                let _ = writeln!(
                    text,
                    "✗ failed\n\n```text\n{}\n```\n",
                    redactions.apply(&failure).trim_end()
                );
            }
        }
    }
    if let Some(diagnostics) = &report.diagnostics {
        let _ = writeln!(
            text,
            "## Diagnostics\n\n```text\n{}\n```\n",
            redactions.apply(diagnostics).trim_end()
        );
    }
    text
}

/// The file name of a lab's transcript in `language`: `<lab>.md`, `<lab>.zh.md`.
pub fn transcript_file_name(lab: &str, language: Language) -> String {
    match language {
        Language::En => format!("{lab}.md"),
        Language::Zh => format!("{lab}.zh.md"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::failed_run;

    #[test]
    fn transcripts_show_explanations_commands_and_redacted_outputs() {
        let text = transcript(&failed_run(), Language::En);
        assert!(
            text.starts_with("# StatefulSet web (`statefulset-dns`)"),
            "{text}"
        );
        assert!(
            text.contains("## 1. apply web.yaml\n\nWhy apply web.yaml matters."),
            "{text}"
        );
        assert!(text.contains("$ kubectl apply -f web.yaml"), "{text}");
        assert!(text.contains("web-0 [IP] in [NS]"), "{text}");
        assert!(!text.contains("x7k2m"), "the namespace is redacted: {text}");
        assert!(text.contains("✗ failed"), "{text}");
        assert!(text.contains("-web-1"), "{text}");
        assert!(text.contains("## 3. nslookup\n\n_not-run_"), "{text}");
        assert!(!text.contains("1.5"), "no timings in a handout: {text}");
        let chinese = transcript(&failed_run(), Language::Zh);
        assert!(chinese.contains("apply web.yaml 的意义。"), "{chinese}");
        assert_eq!(
            transcript_file_name("pvc-templates", Language::Zh),
            "pvc-templates.zh.md"
        );
    }
}
