//! The whole lab on the embedded cluster, as `cargo xtask lab statefulset-dns` runs it, and
//! the same lab with one claim broken on purpose.
//!
//! Needs root and the Debian packages the cluster uses; without them the tests fail with
//! preflight's message (a skipped end-to-end test would hide that nothing was checked). The
//! whole lab is ignored by default: each lab runs end to end once per `cargo test
//! --workspace`, through the CLI (xtask's `it::cli_on_a_cluster`, which also checks the
//! reports and the handouts); `-- --ignored` runs it here, on a real cluster with
//! `LAB_KUBECONFIG=PATH`.

use k8s_labs_harness::testing::{assert_lab_passes, start_embedded_cluster};
use k8s_labs_harness::{CancellationToken, Console, StepResult};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use lab_statefulset_dns::{Expectations, lab, lab_expecting};

/// One embedded cluster at a time per machine: the tests take turns.
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run once per test run by xtask's it::cli_on_a_cluster"]
async fn the_tutorial_lab_passes_on_the_embedded_cluster() {
    let _turn = CLUSTER.lock().await;
    assert_lab_passes(lab(), 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expecting_four_replicas_fails_at_the_pods_step_with_a_diff_and_cleans_up() {
    let _turn = CLUSTER.lock().await;
    let provider = start_embedded_cluster().await;
    let console = Console::capturing();
    let broken = lab_expecting(Expectations { replicas: 4 });
    let report = broken
        .run(&provider, &console, &CancellationToken::new())
        .await;
    let namespaces: Api<Namespace> = Api::all(provider.client());
    let namespace_left = namespaces.get_opt(&report.namespace).await.unwrap();
    provider.stop().await.unwrap();

    let output = console.captured();
    assert!(!report.passed(), "{output}");
    let failed = report.failed_step().unwrap();
    assert_eq!(
        failed.name, "pods web-0, web-1, web-2, web-3 become Running and Ready, in order",
        "{output}"
    );
    assert_eq!(report.steps.len(), 2, "the run stops at the first failure");
    match &failed.result {
        StepResult::Failed {
            mismatch: Some(mismatch),
            ..
        } => {
            let diff = mismatch.diff();
            assert!(diff.contains("-  replicas: 4"), "{diff}");
            assert!(diff.contains("+  replicas: 3"), "{diff}");
            let paths = mismatch.detail.as_deref().unwrap_or_default();
            assert!(
                paths.contains("status.readyReplicas: expected 4, got 3"),
                "{paths}"
            );
        }
        other => panic!("expected a failed claim, got {other:?}\n{output}"),
    }
    assert!(output.contains("--- expected"), "{output}");
    assert!(output.contains("-  readyReplicas: 4"), "{output}");
    // Diagnostics follow the diff without being asked for: pods, their logs, the
    // StatefulSet's counts.
    let diagnostics = report.diagnostics.as_deref().unwrap_or_default();
    assert!(
        diagnostics.contains("pods in "),
        "diagnostics in the report:\n{output}"
    );
    assert!(
        diagnostics.contains("log of container nginx:"),
        "a pod's container log is in the diagnostics:\n{diagnostics}"
    );
    assert!(
        diagnostics.contains("statefulset web: replicas 3 wanted, 3 created, 3 ready"),
        "the StatefulSet's status is in the diagnostics:\n{diagnostics}"
    );
    assert!(
        output.contains("statefulset web: replicas"),
        "the console shows the diagnostics too:\n{output}"
    );
    assert!(report.namespace_deleted, "{output}");
    assert!(
        namespace_left.is_none(),
        "namespace {} is left",
        report.namespace
    );
}
