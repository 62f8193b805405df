//! The bodies of the lab's steps, in the tutorial's order (see [`crate::lab`]).

use std::net::IpAddr;

use anyhow::Result;
use k8s_labs_harness::expect::nslookup_error;
use k8s_labs_harness::expect::object::expect_object;
use k8s_labs_harness::expect::relations::nslookup_answers_pod_ip;
use k8s_labs_harness::expect::{expect_contains, expect_text, html_title};
use k8s_labs_harness::table::{endpoint_addresses, pod_table};
use k8s_labs_harness::wait::{PodEvent, ordered_ready_history, render_history};
use k8s_labs_harness::{StepContext, StepOutcome};
use k8s_openapi::api::core::v1::{Endpoints, Service};

use crate::{SELECTOR, SERVICE, STATEFULSET};

/// `kubectl apply -f web.yaml` → `service/nginx created`, `statefulset.apps/web created`.
pub(crate) async fn apply_web_yaml(ctx: StepContext) -> Result<StepOutcome> {
    // Watch the pods before they exist, so their creation order is seen, not guessed.
    ctx.record_pods(SELECTOR).await?;
    let actual = ctx.apply_output("web.yaml").await?;
    let shown = ctx.expect_golden(
        "apply-web.txt",
        "kubectl apply creates the Service and the StatefulSet",
        &actual,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// `kubectl get pod`: the StatefulSet reports `replicas` pods ready, web-0.. are `1/1
/// Running`, and the watch saw each one created only after the one before was Ready
/// (OrderedReady).
pub(crate) async fn pods_ready_in_order(ctx: StepContext, replicas: usize) -> Result<StepOutcome> {
    // Settled: the controller has seen the current spec and its status counts every pod.
    let statefulset = ctx.wait_statefulset_ready(STATEFULSET).await?;
    expect_object(
        &format!("StatefulSet web has {replicas} replicas, all ready"),
        &format!("status: {{replicas: {replicas}, readyReplicas: {replicas}}}"),
        &statefulset,
    )?;
    let pods = ctx.pods(SELECTOR).await?;
    let table = ctx.expect_golden(
        "get-pod.txt",
        "the StatefulSet's pods are Running and Ready",
        &pod_table(&pods),
    )?;

    let recorder = ctx.pod_recorder(SELECTOR)?;
    let ordered = ordered_ready_history(STATEFULSET, replicas);
    // The watch may deliver the last Ready a moment after the StatefulSet status says so.
    let history = recorder
        .wait_until("every pod to be seen Ready", ctx.deadline(), |history| {
            let ready = history
                .iter()
                .filter(|event| matches!(event, PodEvent::Ready(_)));
            ready.count() >= replicas
        })
        .await?;
    expect_text(
        "OrderedReady: each pod is created only after the previous one is Ready",
        &render_history(&ordered),
        &render_history(&history),
    )?;
    Ok(StepOutcome::passed(format!(
        "{table}\nwatch order:\n{}",
        render_history(&history)
    )))
}

/// `kubectl get svc nginx` shows CLUSTER-IP None and port 80 named web; `kubectl get ep
/// nginx` lists the Ready pods' IPs on port 80.
pub(crate) async fn headless_service_endpoints(ctx: StepContext) -> Result<StepOutcome> {
    let service: Service = ctx.get(SERVICE).await?;
    expect_object(
        "Service nginx is headless (clusterIP None) with port 80 named web",
        "spec: {clusterIP: None, ports: [{name: web, port: 80}]}",
        &service,
    )?;
    let endpoints = ctx.endpoints_of_ready_pods(SERVICE, SELECTOR, 80).await?;
    ctx.highlight("None");
    for (ip, _) in endpoint_addresses(&ctx.get::<Endpoints>(SERVICE).await?) {
        ctx.highlight(ip);
    }
    let shown = ctx.expect_golden(
        "svc-ep-nginx.txt",
        "kubectl get svc and ep show a headless Service with one endpoint per pod",
        &format!(
            "service {SERVICE}: CLUSTER-IP {}\nendpoints {SERVICE}: {endpoints}\n",
            cluster_ip(&service)
        ),
    )?;
    Ok(StepOutcome::passed(shown))
}

fn cluster_ip(service: &Service) -> String {
    service
        .spec
        .as_ref()
        .and_then(|spec| spec.cluster_ip.clone())
        .unwrap_or_else(|| "<none>".to_string())
}

/// `kubectl exec web-1 -- curl web-1.nginx.<ns>.svc.cluster.local`: nginx in web-1 answers
/// its own DNS name with the welcome page.
pub(crate) async fn curl_from_web_1(ctx: StepContext) -> Result<StepOutcome> {
    let url = format!("web-1.{SERVICE}.{}.svc.cluster.local", ctx.namespace());
    let page = ctx
        .retry(|| async {
            let output = ctx.exec("web-1", &["curl", "-s", &url]).await?;
            expect_contains(
                "nginx in web-1 serves its welcome page",
                "<title>Welcome to nginx!</title>",
                &output.stdout,
            )
            .map_err(|mismatch| mismatch.with_detail(output.combined()))?;
            Ok(output.stdout)
        })
        .await?;
    ctx.highlight("Welcome to nginx!");
    let shown = ctx.expect_golden(
        "curl-web-1.txt",
        "the page's title is nginx's welcome",
        &html_title(&page),
    )?;
    Ok(StepOutcome::passed(shown))
}

/// On the node: `nslookup web-1.nginx.<ns>.svc.cluster.local <cluster DNS IP>` answers
/// web-1's pod IP.
pub(crate) async fn nslookup_on_the_node(ctx: StepContext) -> Result<StepOutcome> {
    let dns_ip = ctx.dns_ip()?.to_string();
    let name = format!("web-1.{SERVICE}.{}.svc.cluster.local", ctx.namespace());
    let web_1 = ctx.pod_ip("web-1").await?;
    let output = ctx
        .retry(|| async {
            let output = ctx.on_node("nslookup", &[&name, &dns_ip]).await?;
            nslookup_answers_pod_ip(&output.stdout, &name, "web-1", web_1)?;
            no_unanswered_query(&output.stdout)?;
            Ok(output.stdout)
        })
        .await?;
    ctx.highlight(web_1.to_string());
    let shown = ctx.expect_golden(
        "nslookup-node-web-1.txt",
        "nslookup on the node prints the DNS server and one answer",
        &output,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// From a one-shot busybox:1.28 pod: `nslookup web-0.nginx` and `nslookup web-1.nginx`
/// resolve through the pod's search list to exactly the pods' IPs.
pub(crate) async fn nslookup_from_busybox(ctx: StepContext) -> Result<StepOutcome> {
    let (output, web_0, web_1) = resolve_short_names_in_a_pod(&ctx, "dns-test").await?;
    ctx.highlight(web_0.to_string());
    ctx.highlight(web_1.to_string());
    let shown = ctx.expect_golden(
        "nslookup-busybox.txt",
        "nslookup in a pod prints the DNS server and an answer for each name",
        &output,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// The whole nslookup output is shown and compared, so a query that went unanswered (its
/// `;;` error line) is a reason to try again.
fn no_unanswered_query(output: &str) -> Result<()> {
    match nslookup_error(output) {
        Some(line) => anyhow::bail!("nslookup printed {line:?}"),
        None => Ok(()),
    }
}

/// Runs `nslookup web-0.nginx; nslookup web-1.nginx` in one-shot busybox:1.28 pods named
/// `pod` (then `pod-2`, … on retries) until both answer exactly the pods' IPs; the log and
/// the two IPs. Shared by the lab and by check mode, which make the same claim.
pub(crate) async fn resolve_short_names_in_a_pod(
    ctx: &StepContext,
    pod: &str,
) -> Result<(String, IpAddr, IpAddr)> {
    let web_0 = ctx.pod_ip("web-0").await?;
    let web_1 = ctx.pod_ip("web-1").await?;
    let script = "nslookup web-0.nginx; nslookup web-1.nginx";
    let log = ctx
        .run_once_until(pod, "busybox:1.28", &["sh", "-c", script], |output| {
            let log = output.combined();
            nslookup_answers_pod_ip(&log, "web-0.nginx", "web-0", web_0)?;
            nslookup_answers_pod_ip(&log, "web-1.nginx", "web-1", web_1)?;
            no_unanswered_query(&log)?;
            Ok(log)
        })
        .await?;
    Ok((log, web_0, web_1))
}
