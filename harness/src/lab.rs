//! The Lab/Step model and the runner. A run gets a fresh namespace, runs the steps in order
//! (each in its own task, under its timeout), stops at the first failure, and always deletes
//! the namespace at the end — on pass, failure, a panic inside a step, or a signal.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::context::{LabShared, StepContext};
use crate::expect::Mismatch;
use crate::provider::Provider;
use crate::report::{Console, LabReport, StepReport, StepResult, collect_diagnostics};
use crate::wait::wait_for;

/// Label on every namespace a run creates, so leftovers can be found and told apart.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "k8s-labs");
/// Label naming the lab that created a namespace.
pub const LAB_LABEL: &str = "k8s-labs.dev/lab";
/// How long the runner waits for the namespace to be gone after deleting it.
pub const NAMESPACE_DELETION_TIMEOUT: Duration = Duration::from_secs(60);
/// Extra time past a step's timeout before its task is aborted, so a retried check can
/// return its last mismatch (which says more than "timed out").
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// How a step's body ends when it does not fail.
#[derive(Debug, Clone)]
pub enum StepOutcome {
    /// Every claim held; the text is what the step observed (shown under the step).
    Passed(String),
    /// The step cannot run on this cluster; the reason.
    Skipped(String),
}

impl StepOutcome {
    /// Passed, showing `output`.
    pub fn passed(output: impl Into<String>) -> StepOutcome {
        StepOutcome::Passed(output.into())
    }

    /// Skipped because of `reason`.
    pub fn skipped(reason: impl Into<String>) -> StepOutcome {
        StepOutcome::Skipped(reason.into())
    }
}

type StepFuture = Pin<Box<dyn Future<Output = Result<StepOutcome>> + Send>>;
type StepBody = Arc<dyn Fn(StepContext) -> StepFuture + Send + Sync>;

/// One step of a lab: what it is called, the kubectl command it stands for, how long it may
/// take, and what it does.
#[derive(Clone)]
pub struct Step {
    name: String,
    command: String,
    timeout: Duration,
    body: StepBody,
}

impl Step {
    /// A step. In `command`, `{ns}` stands for the run's namespace and `{dns}` for the
    /// cluster DNS IP; the console shows the command with both filled in.
    pub fn new<F, Fut>(name: &str, command: &str, timeout: Duration, body: F) -> Step
    where
        F: Fn(StepContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<StepOutcome>> + Send + 'static,
    {
        Step {
            name: name.to_string(),
            command: command.to_string(),
            timeout,
            body: Arc::new(move |context| Box::pin(body(context))),
        }
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kubectl command, with `{ns}` and `{dns}` placeholders.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The step's timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// A lab: a tutorial section as steps that run against a cluster and check what it says.
#[derive(Clone)]
pub struct Lab {
    name: String,
    title: String,
    manifests: PathBuf,
    steps: Vec<Step>,
}

impl Lab {
    /// A lab `name` (used in namespaces and on the command line) with a `title` for people,
    /// reading its manifests from `manifests`.
    pub fn new(name: &str, title: &str, manifests: impl Into<PathBuf>) -> Lab {
        Lab {
            name: name.to_string(),
            title: title.to_string(),
            manifests: manifests.into(),
            steps: Vec::new(),
        }
    }

    /// Adds a step at the end.
    pub fn step(mut self, step: Step) -> Lab {
        self.steps.push(step);
        self
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lab's title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Where the lab's manifests are.
    pub fn manifests(&self) -> &PathBuf {
        &self.manifests
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Runs the lab on `provider`, printing to `console`. `cancel` stops it between or
    /// inside steps (the namespace is still deleted). Never fails: everything that went
    /// wrong is in the report.
    pub async fn run(
        &self,
        provider: &Provider,
        console: &Console,
        cancel: &CancellationToken,
    ) -> LabReport {
        let started = Instant::now();
        let namespace = namespace_name(&self.name);
        let client = provider.client();
        let mut report = LabReport {
            lab: self.name.clone(),
            namespace: namespace.clone(),
            steps: Vec::new(),
            total_steps: self.steps.len(),
            error: None,
            interrupted: false,
            diagnostics: None,
            namespace_deleted: false,
            elapsed: Duration::ZERO,
        };
        console.lab_started(&self.name, &self.title, &provider.describe(), &namespace);
        if let Err(error) = create_namespace(&client, &namespace, &self.name).await {
            report.error = Some(format!("{error:#}"));
            report.namespace_deleted = true;
            report.elapsed = started.elapsed();
            console.lab_finished(&report);
            return report;
        }
        let shared = Arc::new(LabShared::new(
            namespace.clone(),
            provider.clone(),
            self.manifests.clone(),
        ));
        let dns = provider
            .facts()
            .dns_service_ip
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "<cluster DNS IP>".to_string());
        for (index, step) in self.steps.iter().enumerate() {
            let command = step
                .command
                .replace("{ns}", &namespace)
                .replace("{dns}", &dns);
            console.step_started(index + 1, self.steps.len(), &step.name, &command);
            let (step_report, interrupted) = run_step(step, command, shared.clone(), cancel).await;
            console.step_finished(&step_report);
            let failed = !step_report.ok();
            report.steps.push(step_report);
            if interrupted {
                report.interrupted = true;
                break;
            }
            if failed {
                let diagnostics = collect_diagnostics(&client, &namespace).await;
                console.diagnostics(&diagnostics);
                report.diagnostics = Some(diagnostics);
                break;
            }
        }
        shared.stop_recorders();
        drop(shared);
        match delete_namespace(&client, &namespace).await {
            Ok(()) => report.namespace_deleted = true,
            Err(error) => {
                report.error = Some(format!("cleanup: {error:#}"));
            }
        }
        report.elapsed = started.elapsed();
        console.lab_finished(&report);
        report
    }
}

/// Runs one step in its own task (a panic in it becomes a failure), under its timeout and
/// the cancellation token. Returns the step's record and whether it was interrupted.
async fn run_step(
    step: &Step,
    command: String,
    shared: Arc<LabShared>,
    cancel: &CancellationToken,
) -> (StepReport, bool) {
    let started = Instant::now();
    let deadline = started + step.timeout;
    let tries = Arc::new(AtomicUsize::new(0));
    let context = StepContext::new(shared, deadline, tries.clone());
    let mut task = tokio::spawn((step.body)(context));
    let mut interrupted = false;
    let result = tokio::select! {
        joined = tokio::time::timeout_at(deadline + ABORT_GRACE, &mut task) => match joined {
            Ok(Ok(Ok(StepOutcome::Passed(output)))) => StepResult::Passed { output },
            Ok(Ok(Ok(StepOutcome::Skipped(reason)))) => StepResult::Skipped { reason },
            Ok(Ok(Err(error))) => failure(error),
            Ok(Err(join_error)) => StepResult::Failed {
                message: format!("the step panicked: {}", panic_message(join_error)),
                mismatch: None,
            },
            Err(_) => StepResult::Failed {
                message: format!("the step did not finish within its timeout of {:?}", step.timeout),
                mismatch: None,
            },
        },
        _ = cancel.cancelled() => {
            interrupted = true;
            StepResult::Failed { message: "interrupted".to_string(), mismatch: None }
        }
    };
    if !task.is_finished() {
        task.abort();
        // Wait for the abort so the task's handles on the cluster are dropped.
        let _ = task.await;
    }
    let report = StepReport {
        name: step.name.clone(),
        command,
        elapsed: started.elapsed(),
        tries: tries.load(Ordering::Relaxed),
        result,
    };
    (report, interrupted)
}

fn failure(error: anyhow::Error) -> StepResult {
    let mismatch = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Mismatch>())
        .cloned();
    StepResult::Failed {
        message: format!("{error:#}"),
        mismatch,
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|text| text.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string()),
        Err(error) => error.to_string(),
    }
}

/// `lab-<lab>-<5 random lowercase letters or digits>`, cut to the 63 characters a namespace
/// name may have.
pub fn namespace_name(lab: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    let mut prefix = format!("lab-{lab}");
    prefix.truncate(63 - 6);
    format!("{}-{suffix}", prefix.trim_end_matches('-'))
}

async fn create_namespace(client: &Client, namespace: &str, lab: &str) -> Result<()> {
    let mut object = Namespace::default();
    object.metadata.name = Some(namespace.to_string());
    object.metadata.labels = Some(BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (LAB_LABEL.to_string(), lab.to_string()),
    ]));
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("cannot create namespace {namespace}"))?;
    Ok(())
}

/// Deletes the namespace and waits (by watch, bounded) until it is gone.
pub async fn delete_namespace(client: &Client, namespace: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.delete(namespace, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.is_not_found() => return Ok(()),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot delete namespace {namespace}"));
        }
    }
    let what = format!("namespace {namespace} to be gone");
    let deadline = Instant::now() + NAMESPACE_DELETION_TIMEOUT;
    wait_for(api, namespace, &what, deadline, |object| object.is_none()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_fresh_and_valid() {
        let first = namespace_name("statefulset-dns");
        let second = namespace_name("statefulset-dns");
        assert!(first.starts_with("lab-statefulset-dns-"), "{first}");
        assert_eq!(first.len(), "lab-statefulset-dns-".len() + 5);
        assert_ne!(first, second);
        assert!(
            first
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        let long = namespace_name(&"x".repeat(100));
        assert!(long.len() <= 63, "{long}");
    }

    #[test]
    fn a_failure_keeps_the_mismatch_found_anywhere_in_the_chain() {
        let error = anyhow::Error::new(Mismatch::new("pods", "a", "b")).context("step 2");
        match failure(error) {
            StepResult::Failed {
                mismatch: Some(mismatch),
                message,
            } => {
                assert_eq!(mismatch.claim, "pods");
                assert!(message.starts_with("step 2"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
