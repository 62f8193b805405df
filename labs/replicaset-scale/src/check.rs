//! Check mode (`cargo xtask check replicaset-scale`): the lab's claims verified against a
//! student's own namespace, where they applied the (corrected) ReplicaSet and Service by
//! hand. Every step only reads — except the last, which starts one short-lived pod that
//! curls the Service, and removes it. Each claim carries a troubleshooting hint.

use std::time::Duration;

use anyhow::Result;
use k8s_labs_harness::expect::{expect_text, html_title};
use k8s_labs_harness::pod::is_pod_running_and_ready;
use k8s_labs_harness::table::pod_table;
use k8s_labs_harness::{Lab, Step, StepContext, StepOutcome};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;

use crate::{NAME, REPLICASET, SELECTOR, SERVICE, manifests_dir};

/// The one pod the check starts (named so that it cannot be mistaken for a student's).
const CURL_POD: &str = "k8s-labs-curl-check";

const READ_TIMEOUT: Duration = Duration::from_secs(10);
const CURL_TIMEOUT: Duration = Duration::from_secs(30);

const HINT_PODS: &str = "the ReplicaSet's pods must run an image that can be pulled \
    (example-image:latest cannot: use image nginx) and match spec.replicas; check \
    `kubectl describe pod -l app=example` and the cluster's state.\n\
    ReplicaSet确保在集群中运行指定数量的副本;检查Kubernetes集群的状态。";
const HINT_ENDPOINTS: &str = "the Service example-service must select app: example and its \
    targetPort must be the port nginx listens on (80, not 8080); compare `kubectl get ep \
    example-service` with `kubectl get pod -o wide`.\n\
    Service为副本集提供一个稳定的网络终结点;检查Service名称和端口。";
const HINT_CURL: &str = "the Service forwards to targetPort on the pods: with targetPort 8080 \
    nothing answers; also check the cluster DNS (the Service name must resolve) and its \
    spelling.\n\
    确保Service的名称和命令中的名称匹配;检查DNS服务器和端口配置。";

/// The checks of a student's replicaset-scale setup.
pub fn check() -> Lab {
    Lab::new(
        NAME,
        "check your ReplicaSet example-app and Service example-service",
        manifests_dir(),
    )
    .step(
        Step::new(
            "the ReplicaSet's pods are all Running and Ready",
            "kubectl get rs example-app; kubectl get pod -l app=example",
            READ_TIMEOUT,
            pods_running_and_ready,
        )
        .hint(HINT_PODS),
    )
    .step(
        Step::new(
            "endpoints example-service are the Ready pods' IPs on port 80",
            "kubectl get ep example-service",
            READ_TIMEOUT,
            endpoints_are_the_pods,
        )
        .hint(HINT_ENDPOINTS),
    )
    .step(
        Step::new(
            "curl example-service from a pod returns the nginx page",
            "kubectl run k8s-labs-curl-check --image nginx --restart=Never --rm -i -- \
             curl -s --max-time 3 http://example-service",
            CURL_TIMEOUT,
            curl_service,
        )
        .hint(HINT_CURL),
    )
}

async fn pods_running_and_ready(ctx: StepContext) -> Result<StepOutcome> {
    let replicaset: ReplicaSet = ctx.get(REPLICASET).await?;
    let replicas = replicaset
        .spec
        .as_ref()
        .and_then(|spec| spec.replicas)
        .unwrap_or(1);
    let pods = ctx
        .retry(|| async {
            let pods = ctx.pods(SELECTOR).await?;
            let ready = pods
                .iter()
                .filter(|pod| is_pod_running_and_ready(pod))
                .count();
            expect_text(
                &format!("the ReplicaSet's {replicas} pods are Running and Ready"),
                &format!("{replicas} pods, {replicas} Running and Ready\n"),
                &format!("{} pods, {ready} Running and Ready\n", pods.len()),
            )?;
            Ok(pods)
        })
        .await?;
    Ok(StepOutcome::passed(format!(
        "replicaset {REPLICASET}: replicas {replicas}\n{}",
        pod_table(&pods)
    )))
}

async fn endpoints_are_the_pods(ctx: StepContext) -> Result<StepOutcome> {
    let _service: Service = ctx.get(SERVICE).await?;
    let column = ctx.endpoints_of_ready_pods(SERVICE, SELECTOR, 80).await?;
    Ok(StepOutcome::passed(format!(
        "endpoints {SERVICE}: {column}\n"
    )))
}

async fn curl_service(ctx: StepContext) -> Result<StepOutcome> {
    let page = crate::fetch_service_page(&ctx, CURL_POD).await?;
    Ok(StepOutcome::passed(html_title(&page)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_a_hint() {
        let lab = check();
        assert_eq!(lab.name(), "replicaset-scale");
        for step in lab.steps() {
            assert!(!step.hint_text().is_empty(), "{}", step.name());
        }
    }
}
