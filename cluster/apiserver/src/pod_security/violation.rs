//! What a failed check says about a pod.

/// Why one check forbids a pod: upstream's `ForbiddenReason` and `ForbiddenDetail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Short, always shown: `hostPath volumes`.
    pub reason: String,
    /// The specifics, shown for a single pod: `volume "h"` (may be empty).
    pub detail: String,
}

impl Violation {
    pub(super) fn new(reason: impl Into<String>, detail: impl Into<String>) -> Option<Violation> {
        Some(Violation {
            reason: reason.into(),
            detail: detail.into(),
        })
    }
}
