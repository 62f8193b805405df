//! Blocking network calls (an `ip` command, a `setns` thread) kept off the async runtime.

/// Runs a short blocking network call (an `ip` command, a `setns` thread) off the runtime.
pub(crate) async fn blocking<T, F>(work: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> anyhow::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await?
}
