//! A step that cannot run on this cluster ends as skipped, reported with its reason, also
//! when the skip comes from inside a retried check (which is then not tried again), and the
//! run goes on to the next step. A value a step reads back that no earlier step recorded
//! fails the step, naming the value. On the embedded cluster (needs root and
//! `scripts/install-deps`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use k8s_labs_harness::testing::start_embedded_cluster;
use k8s_labs_harness::{
    CancellationToken, Console, Lab, RunOptions, Skip, Step, StepContext, StepOutcome, StepResult,
    ValueKey,
};

const NEVER_RECORDED: ValueKey<Vec<String>> = ValueKey::new("the pods of an earlier step");

fn lab(tries: Arc<AtomicUsize>) -> Lab {
    let timeout = Duration::from_secs(20);
    Lab::new("skip-test", "skips a step", "manifests")
        .step(Step::new(
            "on the node",
            "nslookup on the node",
            timeout,
            move |ctx: StepContext| {
                let tries = tries.clone();
                async move {
                    ctx.retry(|| async {
                        tries.fetch_add(1, Ordering::SeqCst);
                        Err::<(), _>(Skip::new("this cluster has no shell on its nodes").into())
                    })
                    .await?;
                    Ok(StepOutcome::passed("unreachable"))
                }
            },
        ))
        .step(Step::new("after the skip", "true", timeout, |_| async {
            Ok(StepOutcome::passed("ran"))
        }))
        .step(Step::new(
            "reads what nothing recorded",
            "true",
            timeout,
            |ctx: StepContext| async move {
                let pods = ctx.recall(&NEVER_RECORDED)?;
                Ok(StepOutcome::passed(pods.join(" ")))
            },
        ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skip_is_reported_and_a_missing_value_fails_its_step() -> Result<()> {
    let _turn = crate::support::one_cluster_at_a_time().await;
    let provider = start_embedded_cluster().await;
    let tries = Arc::new(AtomicUsize::new(0));
    let console = Console::capturing();
    let report = lab(tries.clone())
        .run_with(
            &provider,
            &console,
            &CancellationToken::new(),
            &RunOptions::default(),
        )
        .await;
    let output = console.captured();
    assert_eq!(report.steps.len(), 3, "{output}");
    match &report.steps[0].result {
        StepResult::Skipped { reason } => {
            assert_eq!(reason, "this cluster has no shell on its nodes")
        }
        other => panic!("the first step is skipped, not {other:?}\n{output}"),
    }
    assert_eq!(
        tries.load(Ordering::SeqCst),
        1,
        "a skip is never tried again"
    );
    assert!(
        matches!(&report.steps[1].result, StepResult::Passed { output } if output == "ran"),
        "{output}"
    );
    match &report.steps[2].result {
        StepResult::Failed { message, .. } => assert_eq!(
            message,
            "no earlier step of this run recorded the pods of an earlier step, which this \
             step checks against"
        ),
        other => panic!("reading an unrecorded value fails, not {other:?}\n{output}"),
    }
    provider.stop().await?;
    Ok(())
}
