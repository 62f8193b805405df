//! What the harness's tests share: one embedded cluster at a time.

/// One embedded cluster at a time in this binary, as when each file was a binary of its own
/// (live_progress reads the timing of a step that waits for pods).
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for this test's turn to run an embedded cluster; the turn lasts as long as the guard.
pub async fn one_cluster_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    CLUSTER.lock().await
}
