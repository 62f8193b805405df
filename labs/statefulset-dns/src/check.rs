//! Check mode (`cargo xtask check statefulset-dns`): the lab's claims verified against a
//! student's own namespace, where they applied web.yaml by hand. Every step only reads —
//! except the DNS step, which starts one short-lived busybox:1.28 pod, as the tutorial does,
//! and removes it. Each claim carries a hint from the tutorial's troubleshooting section, so
//! a failed check says where to look.

use std::time::Duration;

use anyhow::Result;
use k8s_labs_harness::expect::expect_text;
use k8s_labs_harness::expect::object::expect_object;
use k8s_labs_harness::table::pod_table;
use k8s_labs_harness::table::statefulset_pod_states;
use k8s_labs_harness::{Lab, Step, StepContext, StepOutcome};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;

use crate::{NAME, SELECTOR, SERVICE, STATEFULSET, manifests_dir};

/// How many pods web.yaml asks for.
const REPLICAS: usize = 3;
/// The one pod the check starts (named so that it cannot be mistaken for a student's).
const DNS_POD: &str = "k8s-labs-dns-check";

/// Reading state: a little patience for pods that are still starting, not a long wait.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The DNS step starts a pod and retries while records propagate.
const DNS_TIMEOUT: Duration = Duration::from_secs(30);

const HINT_CLUSTER: &str = "web.yaml asks for replicas: 3; check the cluster's state: \
    `kubectl get statefulset web` and `kubectl describe pod web-N` (events, image pulls); \
    all components must run normally.\n\
    检查Kubernetes集群的状态,确保所有组件都在正常运行。";
const HINT_SERVICE_NAME: &str = "make sure the Service is named \"nginx\", exactly as the \
    StatefulSet's serviceName, with clusterIP: None; look for typos or case differences.\n\
    确保Service的名称 “nginx” 和命令中的名称匹配。检查是否有任何拼写错误或大小写问题。";
const HINT_ENDPOINTS: &str = "the Service's selector (app: nginx) must match the pods' labels, \
    and only Ready pods are endpoints: compare `kubectl get ep nginx` with \
    `kubectl get pod -o wide`.\n\
    matchLabels 与 Service 的标签匹配,以确保 Service 选中 StatefulSet 管理的 Pod。";
const HINT_DNS: &str = "check the DNS server (the pod's /etc/resolv.conf must name the \
    cluster DNS Service IP), the search domains (web-0.nginx needs <namespace>.svc.cluster.local \
    in the search list), the spelling of the Service name, and that the cluster DNS runs; \
    try `nslookup web-1.nginx.<namespace>.svc.cluster.local <cluster DNS IP>` to name the \
    server explicitly.\n\
    检查DNS服务器、搜索域以及Service名称的拼写;确保Kubernetes DNS服务正常工作。";

/// The checks of a student's statefulset-dns setup, in the tutorial's order.
pub fn check() -> Lab {
    Lab::new(
        NAME,
        "check your StatefulSet web, headless Service nginx and their DNS names",
        manifests_dir(),
    )
    .step(
        Step::new(
            "pods web-0, web-1, web-2 exist and are Running and Ready",
            "kubectl get statefulset web; kubectl get pod -l app=nginx",
            READ_TIMEOUT,
            pods_running_and_ready,
        )
        .hint(HINT_CLUSTER),
    )
    .step(
        Step::new(
            "Service nginx (the StatefulSet's serviceName) is headless, port 80 named web",
            "kubectl get svc nginx",
            READ_TIMEOUT,
            headless_service,
        )
        .hint(HINT_SERVICE_NAME),
    )
    .step(
        Step::new(
            "endpoints nginx are the Ready pods' IPs on port 80",
            "kubectl get ep nginx",
            READ_TIMEOUT,
            endpoints_are_the_pods,
        )
        .hint(HINT_ENDPOINTS),
    )
    .step(
        Step::new(
            "DNS in a pod answers web-0.nginx and web-1.nginx with the pods' IPs",
            "kubectl run -i --image busybox:1.28 k8s-labs-dns-check --restart=Never --rm -- \
             sh -c 'nslookup web-0.nginx; nslookup web-1.nginx'",
            DNS_TIMEOUT,
            dns_answers_pod_ips,
        )
        .hint(HINT_DNS),
    )
}

async fn pods_running_and_ready(ctx: StepContext) -> Result<StepOutcome> {
    let statefulset: StatefulSet = ctx.get(STATEFULSET).await?;
    let expected: String = (0..REPLICAS)
        .map(|i| format!("{STATEFULSET}-{i} Running and Ready\n"))
        .collect();
    // Pods still starting get until the step's timeout; a wrong count fails then.
    let pods = ctx
        .retry(|| async {
            let pods = ctx.pods(SELECTOR).await?;
            expect_text(
                "pods web-0, web-1, web-2 are Running and Ready",
                &expected,
                &statefulset_pod_states(STATEFULSET, &pods),
            )?;
            Ok(pods)
        })
        .await?;
    let replicas = statefulset.spec.as_ref().and_then(|spec| spec.replicas);
    Ok(StepOutcome::passed(format!(
        "statefulset web: replicas {}\n{}",
        replicas.map_or_else(|| "unset".to_string(), |count| count.to_string()),
        pod_table(&pods)
    )))
}

async fn headless_service(ctx: StepContext) -> Result<StepOutcome> {
    let statefulset: StatefulSet = ctx.get(STATEFULSET).await?;
    let service_name = statefulset
        .spec
        .as_ref()
        .and_then(|spec| spec.service_name.clone())
        .unwrap_or_default();
    expect_object(
        "StatefulSet web names nginx as its serviceName",
        "spec: {serviceName: nginx}",
        &statefulset,
    )?;
    let service: Service = ctx.get(&service_name).await?;
    expect_object(
        "Service nginx is headless (clusterIP None) with port 80 named web",
        "spec: {clusterIP: None, ports: [{name: web, port: 80}]}",
        &service,
    )?;
    Ok(StepOutcome::passed(format!(
        "service {SERVICE}: CLUSTER-IP None, port web 80\n"
    )))
}

async fn endpoints_are_the_pods(ctx: StepContext) -> Result<StepOutcome> {
    let column = ctx.endpoints_of_ready_pods(SERVICE, SELECTOR, 80).await?;
    Ok(StepOutcome::passed(format!(
        "endpoints {SERVICE}: {column}\n"
    )))
}

async fn dns_answers_pod_ips(ctx: StepContext) -> Result<StepOutcome> {
    let (log, web_0, web_1) = crate::steps::resolve_short_names_in_a_pod(&ctx, DNS_POD).await?;
    ctx.highlight(web_0.to_string());
    ctx.highlight(web_1.to_string());
    Ok(StepOutcome::passed(log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_a_hint() {
        let lab = check();
        assert_eq!(lab.name(), "statefulset-dns");
        assert_eq!(lab.steps().len(), 4);
        for step in lab.steps() {
            assert!(!step.hint_text().is_empty(), "{}", step.name());
        }
    }
}
