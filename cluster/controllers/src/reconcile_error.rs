//! The error type every reconciler returns; kube-runtime logs it and requeues the object.

use std::time::Duration;

use kube::runtime::controller::Action;

/// Any failure of one reconciliation (API errors, malformed objects).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct ReconcileError(anyhow::Error);

impl From<anyhow::Error> for ReconcileError {
    fn from(error: anyhow::Error) -> Self {
        Self(error)
    }
}

impl From<kube::Error> for ReconcileError {
    fn from(error: kube::Error) -> Self {
        Self(error.into())
    }
}

/// How soon a failed reconciliation is retried (conflicts and races settle quickly).
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// The error policy shared by the controllers: retry soon. `run_controller` logs the
/// failure, at the level its controller chose.
pub(crate) fn retry_soon<K, C>(
    _object: std::sync::Arc<K>,
    _error: &ReconcileError,
    _ctx: std::sync::Arc<C>,
) -> Action {
    Action::requeue(RETRY_AFTER)
}

/// True for a 409 AlreadyExists (someone — often our previous pass — created it already).
pub(crate) fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.is_already_exists())
}

/// True for a 404 NotFound (already gone).
pub(crate) fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.is_not_found())
}
