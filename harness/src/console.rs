//! What a run tells its reader as it goes: per step the name, the kubectl command it stands
//! for, the elapsed time and ✓/✗; on failure what was expected, what was got (a diff), then
//! the pods' statuses, logs and the namespace's recent events, collected without being asked.
//! Files for machines and handouts (JUnit, JSON, Markdown transcripts) are in
//! [`crate::report`].

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};

use crate::expect::Mismatch;
use crate::report::{LabReport, StepReport, StepResult, format_elapsed};

/// How a console shows a step that waits (see [`crate::progress`]).
pub(crate) enum ProgressMode {
    /// A live line redrawn on stdout, a terminal.
    LiveOnStdout,
    /// A live line redrawn on this terminal.
    LiveOn(Arc<Mutex<std::fs::File>>),
    /// A plain line every few seconds (a pipe, `NO_COLOR`, `TERM=dumb`, labs in parallel).
    Plain,
    /// Nothing (a captured console).
    Off,
}

/// Console output of runs: to stdout, or captured for tests (and echoed to stdout, which
/// libtest captures unless `--nocapture`).
#[derive(Clone)]
pub struct Console {
    captured: Option<Arc<Mutex<String>>>,
    /// A terminal other than stdout (a pty), written instead of stdout.
    terminal: Option<Arc<Mutex<std::fs::File>>>,
    color: bool,
    /// Whether a waiting step may show a live line (a terminal that understands cursor moves).
    live: bool,
    prefix: Option<String>,
}

impl Console {
    /// A console writing to stdout, colored when stdout is a terminal; live progress lines
    /// too, unless `NO_COLOR` is set or `TERM=dumb`.
    pub fn stdout() -> Console {
        let terminal = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some();
        let dumb = std::env::var("TERM").is_ok_and(|term| term == "dumb");
        Console {
            captured: None,
            terminal: None,
            color: terminal && !no_color,
            live: terminal && !no_color && !dumb,
            prefix: None,
        }
    }

    /// A console writing to the terminal `file` (e.g. a pty), colored and with live lines.
    pub fn terminal(file: std::fs::File) -> Console {
        Console {
            captured: None,
            terminal: Some(Arc::new(Mutex::new(file))),
            color: true,
            live: true,
            prefix: None,
        }
    }

    /// A console that also keeps everything it prints, for [`Console::captured`]. It shows
    /// no progress while steps wait, so what it keeps does not depend on timing.
    pub fn capturing() -> Console {
        Console {
            captured: Some(Arc::new(Mutex::new(String::new()))),
            terminal: None,
            color: false,
            live: false,
            prefix: None,
        }
    }

    /// How this console shows a waiting step: a live line on a terminal (one lab at a
    /// time), a plain line now and then elsewhere, nothing when captured.
    pub(crate) fn progress_mode(&self) -> ProgressMode {
        if self.captured.is_some() {
            ProgressMode::Off
        } else if self.live && self.prefix.is_none() {
            match &self.terminal {
                Some(file) => ProgressMode::LiveOn(file.clone()),
                None => ProgressMode::LiveOnStdout,
            }
        } else {
            ProgressMode::Plain
        }
    }

    /// The same console with every line prefixed by `[prefix] `, so that labs running in
    /// parallel (`--jobs`) stay readable when their lines interleave.
    pub fn prefixed(&self, prefix: &str) -> Console {
        let mut console = self.clone();
        console.prefix = Some(format!("[{prefix}] "));
        console
    }

    /// Everything printed so far (empty unless made with [`Console::capturing`]).
    pub fn captured(&self) -> String {
        self.captured
            .as_ref()
            .map(|text| text.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .unwrap_or_default()
    }

    /// Prints `text` as is (it should end with a newline), prefixing each line when the
    /// console has a prefix. One call is one write, so lines of parallel runs do not mix.
    pub fn print(&self, text: &str) {
        let prefixed;
        let text = match &self.prefix {
            Some(prefix) => {
                prefixed = text
                    .lines()
                    .map(|line| format!("{prefix}{line}\n"))
                    .collect::<String>();
                prefixed.as_str()
            }
            None => text,
        };
        if let Some(terminal) = &self.terminal {
            let mut file = terminal.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = file.write_all(text.as_bytes());
            let _ = file.flush();
        } else if let Some(captured) = &self.captured {
            captured
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_str(text);
            print!("{text}");
        } else {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// The header of a run.
    pub fn lab_started(&self, lab: &str, title: &str, cluster: &str, facts: &str, namespace: &str) {
        self.print(&format!(
            "{} {lab}: {title}\n  on {cluster}, namespace {namespace}\n  found {facts}\n\n",
            self.paint("1", "lab")
        ));
    }

    /// A step's explanation, before it begins (nothing when it has none).
    pub fn explanation(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        let mut lines = String::new();
        // 80 columns: 6 of indent, 74 of text (Chinese counts two columns a character).
        for line in textwrap::wrap(text, 74) {
            let _ = writeln!(lines, "      {}", self.paint("3", &line));
        }
        self.print(&lines);
    }

    /// A namespace kept for inspection, and how to look at it.
    pub fn kept(&self, namespace: &str, inspect_hint: Option<&str>) {
        let reach = inspect_hint
            .map(|hint| format!("{hint} "))
            .unwrap_or_default();
        self.print(&format!(
            "namespace {namespace} kept for inspection:\n  {reach}kubectl -n {namespace} get all,events\n  delete it with: {reach}kubectl delete namespace {namespace}\n"
        ));
    }

    /// A step begins: its number and name, its explanation when asked for (wrapped to 80
    /// columns), and the kubectl command it stands for.
    pub fn step_started(
        &self,
        index: usize,
        total: usize,
        name: &str,
        explanation: &str,
        command: &str,
    ) {
        self.print(&format!("[{index}/{total}] {}\n", self.paint("1", name)));
        self.explanation(explanation);
        self.print(&format!(
            "      {}\n",
            self.paint("2", &format!("$ {command}"))
        ));
    }

    /// A step ended.
    pub fn step_finished(&self, step: &StepReport) {
        let mut text = String::new();
        let elapsed = format_elapsed(step.elapsed);
        let tries = if step.tries > 1 {
            format!(", {} tries", step.tries)
        } else {
            String::new()
        };
        for (path, diff) in &step.blessed {
            let _ = writeln!(text, "      blessed {}:", path.display());
            text.push_str(&indent(diff, 8));
        }
        match &step.result {
            StepResult::Passed { output } => {
                for line in output.lines() {
                    let _ = writeln!(text, "      | {}", self.highlight(line, &step.highlights));
                }
                let mark = self.paint("32", "✓");
                let _ = writeln!(text, "      {mark} {elapsed}{tries}");
                if let Some(reason) = step.first_failed_try.as_deref().filter(|_| step.tries > 1) {
                    // A pass that needed tries can hide a flaky cluster: say so.
                    let warning = format!(
                        "warning: passed after {} tries; the first failed: {}",
                        step.tries,
                        reason.lines().next().unwrap_or_default()
                    );
                    text.push_str(&indent(&self.paint("33", &warning), 6));
                }
                text.push('\n');
            }
            StepResult::Skipped { reason } => {
                let mark = self.paint("33", "-");
                let _ = writeln!(text, "      {mark} skipped ({elapsed}): {reason}\n");
            }
            StepResult::Failed { message, mismatch } => {
                let mark = self.paint("31", "✗");
                let _ = writeln!(text, "      {mark} {elapsed}{tries}");
                match mismatch {
                    Some(mismatch) => text.push_str(&indent(&self.render_mismatch(mismatch), 6)),
                    None => text.push_str(&indent(message, 6)),
                }
                if !step.hint.is_empty() {
                    let hint = format!("hint: {}", step.hint);
                    text.push_str(&indent(&self.paint("33", &hint), 6));
                }
                text.push('\n');
            }
        }
        self.print(&text);
    }

    /// `line` with each of `values` painted bold yellow (only on a color console).
    fn highlight(&self, line: &str, values: &[String]) -> String {
        if !self.color || values.is_empty() {
            return line.to_string();
        }
        let mut painted = line.to_string();
        for value in values {
            painted = painted.replace(value.as_str(), &self.paint("1;33", value));
        }
        painted
    }

    fn render_mismatch(&self, mismatch: &Mismatch) -> String {
        let mut text = format!("claim failed: {}\n", mismatch.claim);
        for line in mismatch.diff().lines() {
            let painted = match line.chars().next() {
                Some('-') => self.paint("31", line),
                Some('+') => self.paint("32", line),
                Some('@') => self.paint("36", line),
                _ => line.to_string(),
            };
            let _ = writeln!(text, "{painted}");
        }
        if let Some(detail) = &mismatch.detail {
            text.push_str("output:\n");
            for line in detail.lines() {
                let _ = writeln!(text, "  | {line}");
            }
        }
        text
    }

    /// Diagnostics collected after a failure.
    pub fn diagnostics(&self, diagnostics: &str) {
        self.print(&format!("{}\n", indent(diagnostics, 2)));
    }

    /// The end of a run.
    pub fn lab_finished(&self, report: &LabReport) {
        let mut text = String::new();
        if let Some(error) = &report.error {
            let _ = writeln!(text, "error: {error}");
        }
        let cleanup = if report.kept {
            format!("namespace {} kept", report.namespace)
        } else if report.namespace_deleted {
            format!("namespace {} deleted", report.namespace)
        } else {
            format!("namespace {} NOT confirmed deleted", report.namespace)
        };
        let passed = report.steps.iter().filter(|step| step.ok()).count();
        let verdict = if report.passed() {
            self.paint("32", "PASSED")
        } else if report.interrupted {
            self.paint("33", "INTERRUPTED")
        } else {
            self.paint("31", "FAILED")
        };
        let _ = writeln!(
            text,
            "{verdict} {}: {passed}/{} steps in {}; {cleanup}\n",
            report.lab,
            report.total_steps,
            format_elapsed(report.elapsed)
        );
        self.print(&text);
    }
}

pub(crate) fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|line| format!("{pad}{line}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_failed_step_prints_the_claim_and_its_diff() {
        let console = Console::capturing();
        console.step_finished(&StepReport {
            name: "pods".into(),
            command: "kubectl get pod".into(),
            explanation_en: String::new(),
            explanation_zh: String::new(),
            elapsed: Duration::from_millis(5),
            timeout: Duration::from_secs(1),
            tries: 1,
            first_failed_try: None,
            blessed: Vec::new(),
            hint: String::new(),
            highlights: Vec::new(),
            result: StepResult::Failed {
                message: "claim failed".into(),
                mismatch: Some(Mismatch::new("pods ready", "web-0\nweb-1\n", "web-0\n")),
            },
        });
        let text = console.captured();
        assert!(text.contains("✗ 5 ms"), "{text}");
        assert!(text.contains("claim failed: pods ready"), "{text}");
        assert!(text.contains("-web-1"), "{text}");
    }

    #[test]
    fn a_pass_after_several_tries_is_a_warning_with_the_first_failure() {
        let console = Console::capturing();
        let mut step = StepReport {
            name: "nslookup".into(),
            command: "kubectl run -i --rm dns -- nslookup web-0.nginx".into(),
            explanation_en: String::new(),
            explanation_zh: String::new(),
            elapsed: Duration::from_millis(900),
            timeout: Duration::from_secs(30),
            tries: 2,
            first_failed_try: Some("no answer for web-0.nginx\nin: (empty)".into()),
            blessed: Vec::new(),
            hint: String::new(),
            highlights: Vec::new(),
            result: StepResult::Passed {
                output: "Name: web-0.nginx".into(),
            },
        };
        console.step_finished(&step);
        let text = console.captured();
        assert!(
            text.contains(
                "warning: passed after 2 tries; the first failed: no answer for web-0.nginx\n"
            ),
            "{text}"
        );
        step.tries = 1;
        step.first_failed_try = None;
        let console = Console::capturing();
        console.step_finished(&step);
        assert!(!console.captured().contains("warning"));
    }

    #[test]
    fn a_prefixed_console_prefixes_every_line() {
        let console = Console::capturing();
        let prefixed = console.prefixed("pvc-templates");
        prefixed.print("one\ntwo\n");
        console.print("plain\n");
        assert_eq!(
            console.captured(),
            "[pvc-templates] one\n[pvc-templates] two\nplain\n"
        );
    }

    #[test]
    fn explanations_wrap_to_80_columns_in_both_languages() {
        let console = Console::capturing();
        console.explanation(&"The headless Service gives each pod a stable DNS name. ".repeat(4));
        console.explanation(
            &"无头服务为每个 Pod 提供一个稳定的域名，客户端可以直接访问某一个 Pod。".repeat(3),
        );
        let text = console.captured();
        assert!(text.lines().count() >= 5, "{text}");
        for line in text.lines() {
            let columns: usize = line
                .chars()
                .map(|c| if c.len_utf8() == 3 { 2 } else { 1 })
                .sum();
            assert!(columns <= 80, "{columns} columns: {line}");
        }
    }

    #[test]
    fn checked_values_are_highlighted_only_in_color() {
        let values = vec!["10.244.0.5".to_string()];
        let plain = Console::capturing();
        assert_eq!(
            plain.highlight("Address: 10.244.0.5", &values),
            "Address: 10.244.0.5"
        );
        let mut color = Console::capturing();
        color.color = true;
        assert_eq!(
            color.highlight("Address: 10.244.0.5", &values),
            "Address: \x1b[1;33m10.244.0.5\x1b[0m"
        );
    }
}
