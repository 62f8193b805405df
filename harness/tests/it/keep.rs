//! `--keep`: a failed run keeps its namespace when asked (with what was in it), and deletes it
//! otherwise; check mode runs in an existing namespace, runs every step and never deletes it.
//! On the embedded cluster (needs root and `scripts/install-deps`).

use std::time::Duration;

use anyhow::{Result, bail};
use k8s_labs_harness::testing::start_embedded_cluster;
use k8s_labs_harness::{
    CancellationToken, Console, Keep, Lab, RunOptions, Step, StepContext, StepOutcome,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

async fn create_config_map(ctx: StepContext) -> Result<StepOutcome> {
    let config_map: ConfigMap =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": "evidence" } }))?;
    Api::<ConfigMap>::namespaced(ctx.client(), ctx.namespace())
        .create(&PostParams::default(), &config_map)
        .await?;
    Ok(StepOutcome::passed("configmap/evidence created"))
}

async fn fail(_: StepContext) -> Result<StepOutcome> {
    bail!("a claim that does not hold")
}

fn failing_lab() -> Lab {
    let timeout = Duration::from_secs(20);
    Lab::new("keep-test", "keeps its namespace", "manifests")
        .step(Step::new(
            "create evidence",
            "kubectl create configmap evidence",
            timeout,
            create_config_map,
        ))
        .step(Step::new("fail", "false", timeout, fail).hint("look at the evidence"))
        .step(Step::new("after the failure", "true", timeout, |_| async {
            Ok(StepOutcome::passed("ran"))
        }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_on_failure_keeps_the_namespace_and_never_deletes_it() {
    let _turn = crate::support::one_cluster_at_a_time().await;
    let provider = start_embedded_cluster().await;
    let client = provider.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let cancel = CancellationToken::new();

    let console = Console::capturing();
    let options = RunOptions {
        keep: Keep::OnFailure,
        inspect_hint: Some("KUBECONFIG=x".to_string()),
        ..RunOptions::default()
    };
    let kept = failing_lab()
        .run_with(&provider, &console, &cancel, &options)
        .await;
    let output = console.captured();
    assert!(kept.kept && !kept.namespace_deleted, "{output}");
    assert_eq!(kept.steps.len(), 2, "a normal run stops at the failure");
    assert!(
        output.contains(&format!(
            "KUBECONFIG=x kubectl -n {} get all,events",
            kept.namespace
        )),
        "{output}"
    );
    assert!(output.contains("hint: look at the evidence"), "{output}");
    let evidence = Api::<ConfigMap>::namespaced(client.clone(), &kept.namespace)
        .get_opt("evidence")
        .await
        .unwrap();
    assert!(
        evidence.is_some(),
        "the kept namespace still holds what the run made"
    );

    // Check mode in the kept namespace: every step runs, nothing is deleted.
    let console = Console::capturing();
    let options = RunOptions {
        existing_namespace: Some(kept.namespace.clone()),
        ..RunOptions::default()
    };
    let checked = failing_lab()
        .run_with(&provider, &console, &cancel, &options)
        .await;
    assert_eq!(
        checked.steps.len(),
        3,
        "check mode runs every claim:\n{}",
        console.captured()
    );
    assert!(checked.kept && !checked.namespace_deleted);
    assert!(namespaces.get_opt(&kept.namespace).await.unwrap().is_some());

    namespaces
        .delete(&kept.namespace, &DeleteParams::default())
        .await
        .unwrap();

    let console = Console::capturing();
    let deleted = failing_lab().run(&provider, &console, &cancel).await;
    assert!(
        !deleted.kept && deleted.namespace_deleted,
        "{}",
        console.captured()
    );
    assert!(
        namespaces
            .get_opt(&deleted.namespace)
            .await
            .unwrap()
            .is_none()
    );
    provider.stop().await.unwrap();
}
