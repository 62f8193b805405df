//! The Lab/Step model: a lab is a tutorial section as named steps, each with the kubectl
//! command it stands for, an explanation for readers of transcripts and walkthroughs, a
//! timeout, and a body. How a lab runs is [`crate::runner`]'s business.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::context::StepContext;

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
pub(crate) type StepBody = Arc<dyn Fn(StepContext) -> StepFuture + Send + Sync>;

/// The languages a step's explanation can be read in: English for instructors, Chinese as the
/// source tutorial is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// English.
    #[default]
    En,
    /// Chinese, following the source tutorial's own words.
    Zh,
}

/// One step of a lab: what it is called, the kubectl command it stands for, how long it may
/// take, and what it does.
#[derive(Clone)]
pub struct Step {
    pub(crate) name: String,
    pub(crate) command: String,
    pub(crate) timeout: Duration,
    explanation_en: String,
    explanation_zh: String,
    hint: String,
    pub(crate) body: StepBody,
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
            explanation_en: String::new(),
            explanation_zh: String::new(),
            hint: String::new(),
            body: Arc::new(move |context| Box::pin(body(context))),
        }
    }

    /// What the step shows and why it matters, in English, for transcripts and walkthroughs.
    pub fn explain(mut self, english: &str) -> Step {
        self.explanation_en = english.trim().to_string();
        self
    }

    /// The same explanation in Chinese, in the words of the source tutorial where it has them.
    pub fn explain_zh(mut self, chinese: &str) -> Step {
        self.explanation_zh = chinese.trim().to_string();
        self
    }

    /// What to look at when this step's claim does not hold (from the tutorial's
    /// troubleshooting advice), shown under a failure — for students checking their own work.
    pub fn hint(mut self, hint: &str) -> Step {
        self.hint = hint.trim().to_string();
        self
    }

    /// The troubleshooting hint (may be empty).
    pub fn hint_text(&self) -> &str {
        &self.hint
    }

    /// The explanation in `language`, falling back to English when there is none in it.
    pub fn explanation(&self, language: Language) -> &str {
        match language {
            Language::Zh if !self.explanation_zh.is_empty() => &self.explanation_zh,
            _ => &self.explanation_en,
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
    expected: Option<PathBuf>,
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
            expected: None,
            steps: Vec::new(),
        }
    }

    /// Where the lab's golden files are (`labs/<lab>/expected/`), for
    /// [`StepContext::expect_golden`].
    pub fn expected(mut self, dir: impl Into<PathBuf>) -> Lab {
        self.expected = Some(dir.into());
        self
    }

    /// The lab's golden-file directory, if it has one.
    pub fn expected_dir(&self) -> Option<&Path> {
        self.expected.as_deref()
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

    /// The names of the steps that show one of the tutorial's errata (named `erratum: …`, so
    /// that a reader sees where the lab departs from the text), in order.
    pub fn errata(&self) -> Vec<&str> {
        self.steps
            .iter()
            .map(Step::name)
            .filter(|name| name.starts_with("erratum:"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanations_fall_back_to_english() {
        let step = Step::new("s", "kubectl get pod", Duration::from_secs(1), |_| async {
            Ok(StepOutcome::passed(""))
        })
        .explain("  Pods start in order.  ");
        assert_eq!(step.explanation(Language::En), "Pods start in order.");
        assert_eq!(step.explanation(Language::Zh), "Pods start in order.");
        let step = step.explain_zh("Pod 按顺序启动。");
        assert_eq!(step.explanation(Language::Zh), "Pod 按顺序启动。");
    }

    #[test]
    fn errata_are_the_steps_named_erratum_in_order() {
        let step = |name: &str| {
            Step::new(name, "kubectl get pod", Duration::from_secs(1), |_| async {
                Ok(StepOutcome::passed(""))
            })
        };
        let lab = Lab::new("l", "L", "manifests/l")
            .step(step("apply web.yaml"))
            .step(step("erratum: image cannot be pulled"))
            .step(step("the erratum is fixed"))
            .step(step("erratum: targetPort 8080"));
        assert_eq!(
            lab.errata(),
            [
                "erratum: image cannot be pulled",
                "erratum: targetPort 8080"
            ]
        );
    }
}
