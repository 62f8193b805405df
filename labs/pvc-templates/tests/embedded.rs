//! The whole lab on the embedded cluster, as `cargo xtask lab pvc-templates` runs it.
//!
//! Needs root and the Debian packages the cluster uses; without them the test fails with
//! preflight's message (a skipped end-to-end test would hide that nothing was checked).

use k8s_labs_cluster::ClusterConfig;
use k8s_labs_harness::{CancellationToken, Console, LabReport, Provider, StepResult};
use lab_pvc_templates::lab;

fn summary(report: &LabReport) -> String {
    report
        .steps
        .iter()
        .map(|step| format!("{}: {:?}\n", step.name, step.result))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorial_lab_passes_on_the_embedded_cluster() {
    if let Err(error) = k8s_labs_cluster::preflight() {
        panic!("the embedded cluster cannot run here: {error:#}");
    }
    let provider = match Provider::embedded(ClusterConfig::default()).await {
        Ok(provider) => provider,
        Err(error) => panic!("the embedded cluster did not start: {error:#}"),
    };
    let console = Console::capturing();
    let report = lab()
        .run(&provider, &console, &CancellationToken::new())
        .await;
    provider.stop().await.unwrap();

    assert!(
        report.passed(),
        "{}\n{}",
        summary(&report),
        console.captured()
    );
    assert_eq!(report.steps.len(), 12);
    assert!(
        report
            .steps
            .iter()
            .all(|step| matches!(step.result, StepResult::Passed { .. })),
        "every step ran and passed (none skipped):\n{}",
        summary(&report)
    );
    assert!(report.namespace_deleted);
}
