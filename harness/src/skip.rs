//! Skipping a step that cannot run on this cluster, from anywhere in its body.

/// The error that ends a step as skipped rather than failed: the step cannot run on this
/// cluster (no shell on the node of a managed cluster). Return it from anywhere in a step's
/// body, also from inside a retried check, which [`crate::StepContext::retry`] then does not
/// try again; the runner reports the step as skipped with the reason.
#[derive(Debug, Clone)]
pub struct Skip {
    reason: String,
}

impl Skip {
    /// Skipped because of `reason`.
    pub fn new(reason: impl Into<String>) -> Skip {
        Skip {
            reason: reason.into(),
        }
    }

    /// Why the step cannot run.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The skip that `error` carries, if it (or one of its causes) is one.
    pub(crate) fn of(error: &anyhow::Error) -> Option<&Skip> {
        error.chain().find_map(|cause| cause.downcast_ref::<Skip>())
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skipped: {}", self.reason)
    }
}

impl std::error::Error for Skip {}
