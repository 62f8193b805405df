//! What every lab's end-to-end test does: start the embedded cluster, run the lab, stop the
//! cluster, and insist that every step ran and passed. One copy here keeps the labs' tests
//! to their claims.

use k8s_labs_cluster::ClusterConfig;
use tokio_util::sync::CancellationToken;

use crate::lab::Lab;
use crate::provider::Provider;
use crate::report::{Console, LabReport, StepResult};

/// Starts the embedded cluster, or panics with the reason: a skipped end-to-end test would
/// hide that nothing was checked (missing root or packages say so through preflight).
pub async fn start_embedded_cluster() -> Provider {
    if let Err(error) = k8s_labs_cluster::preflight() {
        panic!("the embedded cluster cannot run here: {error:#}");
    }
    match Provider::embedded(ClusterConfig::default()).await {
        Ok(provider) => provider,
        Err(error) => panic!("the embedded cluster did not start: {error:#}"),
    }
}

/// One line per step with its result, for assertion messages.
pub fn summary(report: &LabReport) -> String {
    report
        .steps
        .iter()
        .map(|step| format!("{}: {:?}\n", step.name, step.result))
        .collect()
}

/// Runs `lab` on a fresh embedded cluster and asserts that all of its `steps` ran and
/// passed (none skipped) and that its namespace was deleted.
pub async fn assert_lab_passes_on_embedded_cluster(lab: Lab, steps: usize) {
    let provider = start_embedded_cluster().await;
    let console = Console::capturing();
    let report = lab
        .run(&provider, &console, &CancellationToken::new())
        .await;
    if let Err(error) = provider.stop().await {
        panic!("the embedded cluster did not stop cleanly: {error:#}");
    }
    assert!(
        report.passed(),
        "{}\n{}",
        summary(&report),
        console.captured()
    );
    assert_eq!(report.steps.len(), steps, "{}", summary(&report));
    assert!(
        report
            .steps
            .iter()
            .all(|step| matches!(step.result, StepResult::Passed { .. })),
        "every step ran and passed (none skipped):\n{}",
        summary(&report)
    );
    assert!(
        report.namespace_deleted,
        "namespace {} is left",
        report.namespace
    );
}
