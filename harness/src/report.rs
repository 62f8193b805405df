//! What a run tells its reader: per step the name, the kubectl command it stands for, the
//! elapsed time and ✓/✗; on failure what was expected, what was got (a diff), then the pods'
//! statuses and the namespace's recent events, collected without being asked.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::expect::Mismatch;
use crate::wait::pod_phase;

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
    /// How long the step took.
    pub elapsed: Duration,
    /// How many tries retried checks took (0 when the step retried nothing).
    pub tries: usize,
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
    /// The namespace the run used.
    pub namespace: String,
    /// The steps that ran, in order (the run stops at the first failure).
    pub steps: Vec<StepReport>,
    /// How many steps the lab has (more than `steps.len()` when the run stopped early).
    pub total_steps: usize,
    /// Set when the run could not start or clean up (cluster errors rather than claims).
    pub error: Option<String>,
    /// Set when a signal stopped the run.
    pub interrupted: bool,
    /// Pod statuses and events collected when a step failed.
    pub diagnostics: Option<String>,
    /// Whether the namespace was confirmed gone at the end.
    pub namespace_deleted: bool,
    /// Wall time of the whole run, cleanup included.
    pub elapsed: Duration,
}

impl LabReport {
    /// Whether every claim held and the run cleaned up after itself.
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && !self.interrupted
            && self.namespace_deleted
            && self.steps.len() == self.total_steps
            && self.steps.iter().all(StepReport::ok)
    }

    /// The first failed step, if any.
    pub fn failed_step(&self) -> Option<&StepReport> {
        self.steps.iter().find(|step| !step.ok())
    }
}

/// Console output of runs: to stdout, or captured for tests (and echoed to stdout, which
/// libtest captures unless `--nocapture`).
#[derive(Clone)]
pub struct Console {
    captured: Option<Arc<Mutex<String>>>,
    color: bool,
}

impl Console {
    /// A console writing to stdout, colored when stdout is a terminal.
    pub fn stdout() -> Console {
        Console {
            captured: None,
            color: std::io::stdout().is_terminal(),
        }
    }

    /// A console that also keeps everything it prints, for [`Console::captured`].
    pub fn capturing() -> Console {
        Console {
            captured: Some(Arc::new(Mutex::new(String::new()))),
            color: false,
        }
    }

    /// Everything printed so far (empty unless made with [`Console::capturing`]).
    pub fn captured(&self) -> String {
        self.captured
            .as_ref()
            .map(|text| text.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .unwrap_or_default()
    }

    /// Prints `text` as is (it should end with a newline).
    pub fn print(&self, text: &str) {
        if let Some(captured) = &self.captured {
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
    pub fn lab_started(&self, lab: &str, title: &str, cluster: &str, namespace: &str) {
        self.print(&format!(
            "{} {lab}: {title}\n  on {cluster}, namespace {namespace}\n\n",
            self.paint("1", "lab")
        ));
    }

    /// A step begins.
    pub fn step_started(&self, index: usize, total: usize, name: &str, command: &str) {
        self.print(&format!(
            "[{index}/{total}] {}\n      {}\n",
            self.paint("1", name),
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
        match &step.result {
            StepResult::Passed { output } => {
                for line in output.lines() {
                    let _ = writeln!(text, "      | {line}");
                }
                let mark = self.paint("32", "✓");
                let _ = writeln!(text, "      {mark} {elapsed}{tries}\n");
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
                text.push('\n');
            }
        }
        self.print(&text);
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
        let cleanup = if report.namespace_deleted {
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

/// Elapsed time for people: `12 ms`, `1.42 s`.
pub fn format_elapsed(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(1) {
        format!("{} ms", elapsed.as_millis())
    } else {
        format!("{:.2} s", elapsed.as_secs_f64())
    }
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|line| format!("{pad}{line}\n")).collect()
}

/// The namespace's pods (phase, conditions, container states) and its recent events sorted
/// by time, as text; what a reader needs first when a step failed. Errors reading them are
/// reported inline: diagnostics must never hide the original failure.
pub async fn collect_diagnostics(client: &Client, namespace: &str) -> String {
    let mut text = format!("pods in {namespace}:\n");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match pods.list(&ListParams::default()).await {
        Ok(list) if list.items.is_empty() => text.push_str("  (none)\n"),
        Ok(list) => {
            for pod in &list.items {
                text.push_str(&describe_pod(pod));
            }
        }
        Err(error) => {
            let _ = writeln!(text, "  (cannot list pods: {error})");
        }
    }
    let _ = writeln!(text, "events in {namespace} (oldest first):");
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    match events.list(&ListParams::default()).await {
        Ok(list) if list.items.is_empty() => text.push_str("  (none)\n"),
        Ok(list) => text.push_str(&describe_events(list.items, 30)),
        Err(error) => {
            let _ = writeln!(text, "  (cannot list events: {error})");
        }
    }
    text
}

/// One pod as diagnostic text: phase, IP, conditions and each container's state.
pub fn describe_pod(pod: &Pod) -> String {
    let mut text = String::new();
    let status = pod.status.as_ref();
    let ip = status
        .and_then(|status| status.pod_ip.as_deref())
        .unwrap_or("<none>");
    let _ = writeln!(text, "  pod {}: {} ip {ip}", pod.name_any(), pod_phase(pod));
    if let Some(conditions) = status.and_then(|status| status.conditions.as_ref()) {
        let conditions: Vec<String> = conditions
            .iter()
            .map(|condition| {
                let reason = condition
                    .reason
                    .as_deref()
                    .map(|reason| format!(" ({reason})"))
                    .unwrap_or_default();
                format!("{}={}{reason}", condition.type_, condition.status)
            })
            .collect();
        let _ = writeln!(text, "    conditions: {}", conditions.join(", "));
    }
    for container in status
        .and_then(|status| status.container_statuses.as_ref())
        .into_iter()
        .flatten()
    {
        let _ = writeln!(text, "    container {}", describe_container(container));
    }
    text
}

fn describe_container(container: &ContainerStatus) -> String {
    let state = container.state.as_ref();
    let now = if let Some(waiting) = state.and_then(|state| state.waiting.as_ref()) {
        format!(
            "waiting: {} {}",
            waiting.reason.as_deref().unwrap_or(""),
            waiting.message.as_deref().unwrap_or("")
        )
    } else if let Some(terminated) = state.and_then(|state| state.terminated.as_ref()) {
        format!(
            "terminated: exit {} {} {}",
            terminated.exit_code,
            terminated.reason.as_deref().unwrap_or(""),
            terminated.message.as_deref().unwrap_or("")
        )
    } else if state.and_then(|state| state.running.as_ref()).is_some() {
        "running".to_string()
    } else {
        "unknown".to_string()
    };
    let last = container
        .last_state
        .as_ref()
        .and_then(|state| state.terminated.as_ref())
        .map(|terminated| {
            format!(
                "; last terminated: exit {} {}",
                terminated.exit_code,
                terminated.reason.as_deref().unwrap_or("")
            )
        })
        .unwrap_or_default();
    format!(
        "{}: {} ready={} restarts={}{last}",
        container.name,
        now.trim_end(),
        container.ready,
        container.restart_count
    )
}

/// The last `limit` events sorted by time, one per line: `time type reason object: message`.
pub fn describe_events(mut events: Vec<Event>, limit: usize) -> String {
    events.sort_by_key(event_time);
    let skip = events.len().saturating_sub(limit);
    events
        .iter()
        .skip(skip)
        .map(|event| {
            let time = event_time(event)
                .map(|time| time.to_string())
                .unwrap_or_else(|| "-".to_string());
            let object = format!(
                "{}/{}",
                event
                    .involved_object
                    .kind
                    .as_deref()
                    .unwrap_or("?")
                    .to_lowercase(),
                event.involved_object.name.as_deref().unwrap_or("?")
            );
            format!(
                "  {time} {} {} {object}: {}\n",
                event.type_.as_deref().unwrap_or("-"),
                event.reason.as_deref().unwrap_or("-"),
                event.message.as_deref().unwrap_or("").trim()
            )
        })
        .collect()
}

/// When an event happened: lastTimestamp, else eventTime, else firstTimestamp, else creation.
fn event_time(event: &Event) -> Option<jiff::Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|Time(time)| *time)
        .or_else(|| event.event_time.as_ref().map(|micro| micro.0))
        .or_else(|| event.first_timestamp.as_ref().map(|Time(time)| *time))
        .or_else(|| {
            event
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|Time(time)| *time)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;

    fn event(reason: &str, at: &str) -> Event {
        Event {
            reason: Some(reason.to_string()),
            type_: Some("Normal".to_string()),
            message: Some(format!("{reason} happened")),
            involved_object: ObjectReference {
                kind: Some("Pod".to_string()),
                name: Some("web-0".to_string()),
                ..Default::default()
            },
            last_timestamp: Some(Time(at.parse().unwrap())),
            ..Default::default()
        }
    }

    #[test]
    fn events_are_sorted_by_time_and_limited_to_the_latest() {
        let events = vec![
            event("Started", "2024-01-01T00:00:03Z"),
            event("Scheduled", "2024-01-01T00:00:01Z"),
            event("Pulled", "2024-01-01T00:00:02Z"),
        ];
        let text = describe_events(events, 2);
        let reasons: Vec<&str> = text
            .lines()
            .map(|line| line.split_whitespace().nth(2).unwrap())
            .collect();
        assert_eq!(reasons, vec!["Pulled", "Started"]);
        assert!(text.contains("pod/web-0: Pulled happened"), "{text}");
    }

    #[test]
    fn elapsed_times_read_naturally() {
        assert_eq!(format_elapsed(Duration::from_millis(12)), "12 ms");
        assert_eq!(format_elapsed(Duration::from_millis(1420)), "1.42 s");
    }

    #[test]
    fn a_failed_step_prints_the_claim_and_its_diff() {
        let console = Console::capturing();
        console.step_finished(&StepReport {
            name: "pods".into(),
            command: "kubectl get pod".into(),
            elapsed: Duration::from_millis(5),
            tries: 1,
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
}
