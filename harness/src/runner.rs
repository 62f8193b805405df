//! The runner. A run gets a fresh namespace, runs the steps in order (each in its own task,
//! under a timeout that covers the whole step), stops at the first failure, collects
//! diagnostics without being asked, and deletes the namespace at the end — on pass, failure,
//! a panic inside a step, or a signal — unless told to keep it for inspection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::console::Console;
use crate::context::{LabShared, StepContext, StepState};
use crate::diagnostics::collect_diagnostics;
use crate::expect::Mismatch;
use crate::lab::{Lab, Language, Step, StepOutcome};
use crate::progress::{StepProgress, Watched};
use crate::provider::Provider;
use crate::report::{LabReport, StepReport, StepResult};
use crate::skip::Skip;
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

/// When a run leaves its namespace in place for a person to inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keep {
    /// Always delete it (the default: thirty students on one cluster must not pile up).
    #[default]
    Never,
    /// Keep it when a claim failed (never after a signal: Ctrl-C means "clean up and stop").
    OnFailure,
    /// Keep it whatever happened (except a signal).
    Always,
}

/// What decides when the next step starts, for walkthroughs in front of a class: it is
/// called before each step with the step about to run, and returns false to stop the run
/// (which then cleans up as after a signal).
pub trait Pacer: Send + Sync {
    /// Waits until the next step may start (Enter, a delay…); false to stop. `command` is
    /// the step's kubectl command with the namespace and DNS IP filled in.
    fn before_step<'a>(
        &'a self,
        index: usize,
        total: usize,
        step: &'a Step,
        command: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>>;
}

/// How a run behaves, beyond what the lab says.
#[derive(Clone)]
pub struct RunOptions {
    /// When to keep the namespace.
    pub keep: Keep,
    /// Every step timeout is multiplied by this (slow clusters, first image pulls).
    pub timeout_scale: f64,
    /// Rewrite golden files that no longer match instead of failing.
    pub bless: bool,
    /// The language of explanations printed before steps (empty explanations print nothing).
    pub explain: Option<Language>,
    /// How a person reaches the cluster, printed with a kept namespace
    /// (e.g. `KUBECONFIG=target/cluster/kubeconfig`).
    pub inspect_hint: Option<String>,
    /// Paces the steps (walk mode); None runs them back to back.
    pub pacer: Option<Arc<dyn Pacer>>,
    /// Check mode: run in this existing namespace (a student's), never creating or deleting
    /// it, and run every step even after a failure, so the student sees every claim.
    pub existing_namespace: Option<String>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("keep", &self.keep)
            .field("timeout_scale", &self.timeout_scale)
            .field("bless", &self.bless)
            .field("explain", &self.explain)
            .field("inspect_hint", &self.inspect_hint)
            .field("pacer", &self.pacer.is_some())
            .field("existing_namespace", &self.existing_namespace)
            .finish()
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            keep: Keep::Never,
            timeout_scale: 1.0,
            bless: false,
            explain: None,
            inspect_hint: None,
            pacer: None,
            existing_namespace: None,
        }
    }
}

impl RunOptions {
    /// A step's timeout, scaled.
    pub fn scaled(&self, timeout: Duration) -> Duration {
        timeout.mul_f64(self.timeout_scale.max(0.01))
    }
}

impl Lab {
    /// Runs the lab on `provider` with the default options (see [`Lab::run_with`]).
    pub async fn run(
        &self,
        provider: &Provider,
        console: &Console,
        cancel: &CancellationToken,
    ) -> LabReport {
        self.run_with(provider, console, cancel, &RunOptions::default())
            .await
    }

    /// Runs the lab on `provider`, printing to `console`. `cancel` stops it between or inside
    /// steps (the namespace is still deleted). Never fails: everything that went wrong is in
    /// the report.
    pub async fn run_with(
        &self,
        provider: &Provider,
        console: &Console,
        cancel: &CancellationToken,
        options: &RunOptions,
    ) -> LabReport {
        let started = Instant::now();
        let checking = options.existing_namespace.is_some();
        let namespace = options
            .existing_namespace
            .clone()
            .unwrap_or_else(|| namespace_name(self.name()));
        let client = provider.client();
        let mut report = LabReport::new(self, &namespace, &provider.describe());
        console.lab_started(
            self.name(),
            self.title(),
            &provider.describe(),
            &provider.facts().summary(),
            &namespace,
        );
        let created = if checking {
            Ok(())
        } else {
            create_namespace(&client, &namespace, self.name()).await
        };
        if let Err(error) = created {
            report.error = Some(format!("{error:#}"));
            report.namespace_deleted = true;
            report.elapsed = started.elapsed();
            console.lab_finished(&report);
            return report;
        }
        let shared = Arc::new(LabShared::new(
            namespace.clone(),
            provider.clone(),
            self.manifests().clone(),
            self.expected_dir().map(PathBuf::from),
            options.bless,
        ));
        self.run_steps(&shared, console, cancel, options, &mut report)
            .await;
        shared.stop_recorders();
        drop(shared);
        self.clean_up(&client, console, options, &mut report).await;
        report.elapsed = started.elapsed();
        console.lab_finished(&report);
        report
    }

    /// Runs the steps in order until one fails (unless checking) or the run is interrupted,
    /// collecting diagnostics after a failure.
    async fn run_steps(
        &self,
        shared: &Arc<LabShared>,
        console: &Console,
        cancel: &CancellationToken,
        options: &RunOptions,
        report: &mut LabReport,
    ) {
        let checking = options.existing_namespace.is_some();
        let namespace = &shared.namespace;
        let dns = shared
            .provider
            .facts()
            .dns_service_ip
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "<cluster DNS IP>".to_string());
        let total = self.steps().len();
        for (index, step) in self.steps().iter().enumerate() {
            let command = step
                .command()
                .replace("{ns}", namespace)
                .replace("{dns}", &dns);
            if let Some(pacer) = &options.pacer {
                let go_on = tokio::select! {
                    go_on = pacer.before_step(index + 1, total, step, &command) => go_on,
                    _ = cancel.cancelled() => false,
                };
                if !go_on {
                    report.interrupted = true;
                    break;
                }
            }
            let explanation = options
                .explain
                .map(|language| step.explanation(language))
                .unwrap_or_default();
            console.step_started(index + 1, total, step.name(), explanation, &command);
            let timeout = options.scaled(step.timeout());
            let (step_report, interrupted) =
                run_step(step, command, timeout, shared.clone(), console, cancel).await;
            console.step_finished(&step_report);
            let failed = !step_report.ok();
            report.steps.push(step_report);
            if interrupted {
                report.interrupted = true;
                break;
            }
            if failed && !checking {
                let client = shared.provider.client();
                let diagnostics = collect_diagnostics(&client, namespace).await;
                console.diagnostics(&diagnostics);
                report.diagnostics = Some(diagnostics);
                break;
            }
        }
    }

    /// Deletes the run's namespace, or keeps it (check mode, `--keep`), as the report says.
    async fn clean_up(
        &self,
        client: &Client,
        console: &Console,
        options: &RunOptions,
        report: &mut LabReport,
    ) {
        let checking = options.existing_namespace.is_some();
        let keep = checking
            || !report.interrupted
                && match options.keep {
                    Keep::Never => false,
                    Keep::Always => true,
                    Keep::OnFailure => report.failed_step().is_some(),
                };
        if checking {
            // The student's namespace: never ours to delete.
            report.kept = true;
        } else if keep {
            report.kept = true;
            console.kept(&report.namespace, options.inspect_hint.as_deref());
        } else {
            match delete_namespace(client, &report.namespace).await {
                Ok(()) => report.namespace_deleted = true,
                Err(error) => report.error = Some(format!("cleanup: {error:#}")),
            }
        }
    }
}

/// Runs one step in its own task (a panic in it becomes a failure), under its timeout and
/// the cancellation token. Returns the step's record and whether it was interrupted.
async fn run_step(
    step: &Step,
    command: String,
    timeout: Duration,
    shared: Arc<LabShared>,
    console: &Console,
    cancel: &CancellationToken,
) -> (StepReport, bool) {
    let started = Instant::now();
    let deadline = started + timeout;
    let state = Arc::new(StepState::default());
    let progress = StepProgress::start(
        console,
        Watched {
            started,
            timeout,
            state: state.clone(),
            client: shared.provider.client(),
            namespace: shared.namespace.clone(),
        },
    );
    let context = StepContext::new(shared, deadline, state.clone());
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
                message: format!("the step did not finish within its timeout of {timeout:?}"),
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
    progress.finish().await;
    let report = StepReport {
        name: step.name().to_string(),
        command,
        explanation_en: step.explanation(Language::En).to_string(),
        explanation_zh: step.explanation(Language::Zh).to_string(),
        elapsed: started.elapsed(),
        timeout,
        tries: state.tries(),
        first_failed_try: state.first_failed_try(),
        blessed: state.blessed(),
        hint: step.hint_text().to_string(),
        highlights: state.highlights(),
        result,
    };
    (report, interrupted)
}

fn failure(error: anyhow::Error) -> StepResult {
    if let Some(skip) = Skip::of(&error) {
        return StepResult::Skipped {
            reason: skip.reason().to_string(),
        };
    }
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
        .map_err(|error| crate::errors::explain_api_error(error, "create", "namespaces"))
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
            return Err(crate::errors::explain_api_error(
                error,
                "delete",
                "namespaces",
            ))
            .with_context(|| format!("cannot delete namespace {namespace}"));
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

    #[test]
    fn a_skip_anywhere_in_the_chain_ends_the_step_as_skipped() {
        let error = anyhow::Error::new(Skip::new("no shell on the nodes")).context("nslookup");
        match failure(error) {
            StepResult::Skipped { reason } => assert_eq!(reason, "no shell on the nodes"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn timeouts_scale_and_never_reach_zero() {
        let options = RunOptions {
            timeout_scale: 2.5,
            ..RunOptions::default()
        };
        assert_eq!(
            options.scaled(Duration::from_secs(10)),
            Duration::from_secs(25)
        );
        let tiny = RunOptions {
            timeout_scale: 0.0,
            ..RunOptions::default()
        };
        assert!(tiny.scaled(Duration::from_secs(10)) > Duration::ZERO);
    }
}
