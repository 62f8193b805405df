//! The whole lab on the embedded cluster, as `cargo xtask lab pvc-templates` runs it.
//! Ignored by default: each lab runs end to end once per `cargo test --workspace`, through the
//! CLI (xtask's `it::cli_on_a_cluster`, which also checks the reports and the handouts). Run
//! it with `cargo test -p lab-pvc-templates --test it -- --ignored`, on the embedded cluster (needs root
//! and the Debian packages the cluster uses) or on a real one with `LAB_KUBECONFIG=PATH`.

use k8s_labs_harness::testing::assert_lab_passes;
use lab_pvc_templates::lab;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run once per test run by xtask's it::cli_on_a_cluster"]
async fn the_tutorial_lab_passes_on_the_embedded_cluster() {
    assert_lab_passes(lab(), 12).await;
}
