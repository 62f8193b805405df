//! The whole lab on the embedded cluster, as `cargo xtask lab pvc-templates` runs it.
//!
//! Needs root and the Debian packages the cluster uses; without them the test fails with
//! preflight's message (a skipped end-to-end test would hide that nothing was checked).

use k8s_labs_harness::testing::assert_lab_passes;
use lab_pvc_templates::lab;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorial_lab_passes_on_the_embedded_cluster() {
    assert_lab_passes(lab(), 12).await;
}
