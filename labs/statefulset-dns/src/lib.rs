//! Lab statefulset-dns: the tutorial's section 应用 (web.yaml). A StatefulSet `web` of nginx
//! pods behind the headless Service `nginx`; the pods come up one after the other, and each
//! gets a stable DNS name `web-N.nginx.<namespace>.svc.cluster.local`.
//!
//! Each step below is one command of the tutorial and the claims its output supports. The
//! namespace is the run's own (`lab-statefulset-dns-xxxxx`) where the tutorial says `default`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use k8s_labs_harness::expect::{expect_contains, expect_text, html_title, nslookup_addresses};
use k8s_labs_harness::table::{endpoint_addresses, endpoints_column};
use k8s_labs_harness::wait::{PodEvent, ordered_ready_history, pod_phase, render_history};
use k8s_labs_harness::{Lab, NodeRun, Step, StepContext, StepOutcome};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};

/// The lab's name on the command line and in namespaces.
pub const NAME: &str = "statefulset-dns";
/// The StatefulSet of web.yaml.
const STATEFULSET: &str = "web";
/// The headless Service of web.yaml, the pods' DNS subdomain.
const SERVICE: &str = "nginx";
/// The pods' labels in web.yaml.
const SELECTOR: &str = "app=nginx";

/// Timeout of steps that wait for pods to start.
const POD_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of steps that run a command (with retries while DNS/endpoints propagate).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What the lab claims; the defaults are the tutorial's. Tests change them to see the lab
/// fail readably.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// How many pods the StatefulSet runs (web.yaml says 3).
    pub replicas: usize,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations { replicas: 3 }
    }
}

/// The lab with the tutorial's expectations.
pub fn lab() -> Lab {
    lab_expecting(Expectations::default())
}

/// The lab with the given expectations.
pub fn lab_expecting(expect: Expectations) -> Lab {
    let replicas = expect.replicas;
    Lab::new(
        NAME,
        "StatefulSet web behind headless Service nginx, and its DNS names",
        manifests_dir(),
    )
    .step(Step::new(
        "apply web.yaml",
        "kubectl apply -f web.yaml",
        COMMAND_TIMEOUT,
        apply_web_yaml,
    ))
    .step(Step::new(
        &format!(
            "pods {} become Running and Ready, in order",
            pod_names(replicas)
        ),
        "kubectl get pod",
        POD_TIMEOUT,
        move |ctx| pods_ready_in_order(ctx, replicas),
    ))
    .step(Step::new(
        "Service nginx is headless and its endpoints are the pods",
        "kubectl get svc nginx; kubectl get ep nginx",
        COMMAND_TIMEOUT,
        move |ctx| headless_service_endpoints(ctx, replicas),
    ))
    .step(Step::new(
        "inside web-1, curl its own DNS name",
        "kubectl exec web-1 -- curl -s web-1.nginx.{ns}.svc.cluster.local",
        COMMAND_TIMEOUT,
        curl_from_web_1,
    ))
    .step(Step::new(
        "on the node, nslookup web-1 at the cluster DNS",
        "nslookup web-1.nginx.{ns}.svc.cluster.local {dns}",
        COMMAND_TIMEOUT,
        nslookup_on_the_node,
    ))
    .step(Step::new(
        "from a one-shot busybox:1.28 pod, nslookup web-0.nginx and web-1.nginx",
        "kubectl run -i --image busybox:1.28 dns-test --restart=Never --rm -- \
         sh -c 'nslookup web-0.nginx; nslookup web-1.nginx'",
        COMMAND_TIMEOUT,
        nslookup_from_busybox,
    ))
}

/// `web-0, web-1, web-2` for 3 replicas.
fn pod_names(replicas: usize) -> String {
    let names: Vec<String> = (0..replicas)
        .map(|i| format!("{STATEFULSET}-{i}"))
        .collect();
    names.join(", ")
}

/// `manifests/statefulset-dns/` of the workspace this crate was built in.
pub fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../manifests/statefulset-dns")
}

/// `kubectl apply -f web.yaml` → `service/nginx created`, `statefulset.apps/web created`.
async fn apply_web_yaml(ctx: StepContext) -> Result<StepOutcome> {
    // Watch the pods before they exist, so their creation order is seen, not guessed.
    ctx.record_pods(SELECTOR).await?;
    let applied = ctx.apply("web.yaml").await?;
    let actual: String = applied.iter().map(|object| format!("{object}\n")).collect();
    expect_text(
        "kubectl apply creates the Service and the StatefulSet",
        "service/nginx created\nstatefulset.apps/web created\n",
        &actual,
    )?;
    Ok(StepOutcome::passed(actual))
}

/// `kubectl get pod`: web-0, web-1, web-2 are `1/1 Running`, and the watch saw each one
/// created only after the one before was Ready (OrderedReady).
async fn pods_ready_in_order(ctx: StepContext, replicas: usize) -> Result<StepOutcome> {
    let statefulset = ctx.wait_statefulset_ready(STATEFULSET).await?;
    let running = statefulset
        .spec
        .as_ref()
        .and_then(|spec| spec.replicas)
        .and_then(|replicas| usize::try_from(replicas).ok())
        .unwrap_or(1);
    let pods = ctx.pods(SELECTOR).await?;
    let actual = pod_table(&pods);
    let expected =
        pod_table_of((0..replicas).map(|i| (format!("{STATEFULSET}-{i}"), "1/1", "Running")));
    expect_text(
        "the StatefulSet's pods are Running and Ready",
        &expected,
        &actual,
    )?;

    let recorder = ctx.pod_recorder(SELECTOR)?;
    let ordered = ordered_ready_history(STATEFULSET, replicas);
    // The watch may deliver the last Ready a moment after the StatefulSet status says so.
    let history = recorder
        .wait_until("every pod to be seen Ready", ctx.deadline(), |history| {
            let ready = history
                .iter()
                .filter(|event| matches!(event, PodEvent::Ready(_)));
            ready.count() >= running
        })
        .await?;
    expect_text(
        "OrderedReady: each pod is created only after the previous one is Ready",
        &render_history(&ordered),
        &render_history(&history),
    )?;
    Ok(StepOutcome::passed(format!(
        "{actual}\nwatch order:\n{}",
        render_history(&history)
    )))
}

/// `kubectl get svc nginx` shows CLUSTER-IP None; `kubectl get ep nginx` lists the pod IPs
/// on port 80.
async fn headless_service_endpoints(ctx: StepContext, replicas: usize) -> Result<StepOutcome> {
    let service: Service = ctx.get(SERVICE).await?;
    let cluster_ip = service
        .spec
        .as_ref()
        .and_then(|spec| spec.cluster_ip.clone())
        .unwrap_or_default();
    expect_text(
        "Service nginx is headless (clusterIP None)",
        "None",
        &cluster_ip,
    )?;

    let mut pod_ips = Vec::with_capacity(replicas);
    for ordinal in 0..replicas {
        pod_ips.push(ctx.pod_ip(&format!("{STATEFULSET}-{ordinal}")).await?);
    }
    let expected = endpoints_column(pod_ips.iter().map(|ip| (ip.to_string(), 80)));
    let actual = ctx
        .retry(|| async {
            let endpoints: Endpoints = ctx.get(SERVICE).await?;
            let actual = endpoints_column(endpoint_addresses(&endpoints));
            expect_text(
                "endpoints nginx are the pods' IPs on port 80",
                &expected,
                &actual,
            )?;
            Ok(actual)
        })
        .await?;
    Ok(StepOutcome::passed(format!(
        "service nginx: CLUSTER-IP {cluster_ip}\nendpoints nginx: {actual}"
    )))
}

/// `kubectl exec web-1 -- curl web-1.nginx.<ns>.svc.cluster.local`: nginx in web-1 answers
/// its own DNS name with the welcome page.
async fn curl_from_web_1(ctx: StepContext) -> Result<StepOutcome> {
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
    Ok(StepOutcome::passed(html_title(&page)))
}

/// On the node: `nslookup web-1.nginx.<ns>.svc.cluster.local <cluster DNS IP>` answers
/// web-1's pod IP.
async fn nslookup_on_the_node(ctx: StepContext) -> Result<StepOutcome> {
    let dns_ip = ctx.dns_ip()?.to_string();
    let name = format!("web-1.{SERVICE}.{}.svc.cluster.local", ctx.namespace());
    let web_1 = ctx.pod_ip("web-1").await?;
    let result = ctx
        .retry(|| async {
            let output = match ctx.on_node("nslookup", &[&name, &dns_ip]).await? {
                NodeRun::Ran(output) => output,
                NodeRun::Unavailable(reason) => return Ok(Err(reason)),
            };
            let answer = answer_text(&name, &nslookup_addresses(&output.stdout, &name));
            expect_text(
                "the cluster DNS answers web-1's pod IP",
                &answer_text(&name, &[web_1]),
                &answer,
            )
            .map_err(|mismatch| mismatch.with_detail(output.combined()))?;
            Ok(Ok(output.stdout))
        })
        .await?;
    match result {
        Ok(output) => Ok(StepOutcome::passed(output)),
        Err(reason) => Ok(StepOutcome::skipped(reason)),
    }
}

/// From a one-shot busybox:1.28 pod: `nslookup web-0.nginx` and `nslookup web-1.nginx`
/// resolve through the pod's search list to exactly the pods' IPs.
async fn nslookup_from_busybox(ctx: StepContext) -> Result<StepOutcome> {
    let web_0 = ctx.pod_ip("web-0").await?;
    let web_1 = ctx.pod_ip("web-1").await?;
    let expected = format!(
        "{}{}",
        answer_text("web-0.nginx", &[web_0]),
        answer_text("web-1.nginx", &[web_1])
    );
    let mut attempt = 0;
    let output = ctx
        .retry(|| {
            attempt += 1;
            // A fresh pod name per try: a deleted pod's name may linger while it terminates.
            let pod = if attempt == 1 {
                "dns-test".to_string()
            } else {
                format!("dns-test-{attempt}")
            };
            let ctx = ctx.clone();
            let expected = expected.clone();
            async move {
                let script = "nslookup web-0.nginx; nslookup web-1.nginx";
                let output = ctx
                    .run_once(&pod, "busybox:1.28", &["sh", "-c", script])
                    .await?;
                let log = output.combined();
                let actual = format!(
                    "{}{}",
                    answer_text("web-0.nginx", &nslookup_addresses(&log, "web-0.nginx")),
                    answer_text("web-1.nginx", &nslookup_addresses(&log, "web-1.nginx"))
                );
                expect_text(
                    "nslookup in a pod resolves the pods' short names",
                    &expected,
                    &actual,
                )
                .map_err(|mismatch| mismatch.with_detail(log.clone()))?;
                Ok(log)
            }
        })
        .await?;
    Ok(StepOutcome::passed(output))
}

/// `web-1.nginx -> 10.244.0.3` (or `-> (no answer)`), one line, for comparing answers.
fn answer_text(name: &str, addresses: &[IpAddr]) -> String {
    if addresses.is_empty() {
        return format!("{name} -> (no answer)\n");
    }
    let addresses: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
    format!("{name} -> {}\n", addresses.join(", "))
}

/// The pods as `kubectl get pod` shows them (NAME READY STATUS; ages and restarts vary).
fn pod_table(pods: &[Pod]) -> String {
    pod_table_of(pods.iter().map(|pod| {
        let statuses = pod
            .status
            .as_ref()
            .and_then(|status| status.container_statuses.clone())
            .unwrap_or_default();
        let ready = statuses.iter().filter(|status| status.ready).count();
        let total = pod.spec.as_ref().map_or(0, |spec| spec.containers.len());
        (
            pod.metadata.name.clone().unwrap_or_default(),
            format!("{ready}/{total}"),
            pod_phase(pod).to_string(),
        )
    }))
}

fn pod_table_of<N, R, S>(rows: impl Iterator<Item = (N, R, S)>) -> String
where
    N: std::fmt::Display,
    R: std::fmt::Display,
    S: std::fmt::Display,
{
    let mut table = format!("{:<8}{:<8}{}\n", "NAME", "READY", "STATUS");
    for (name, ready, status) in rows {
        table.push_str(&format!("{name:<8}{ready:<8}{status}\n"));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_has_the_tutorials_six_steps() {
        let lab = lab();
        assert_eq!(lab.name(), "statefulset-dns");
        assert_eq!(lab.steps().len(), 6);
        assert_eq!(
            lab.steps()[1].name(),
            "pods web-0, web-1, web-2 become Running and Ready, in order"
        );
        assert!(lab.manifests().join("web.yaml").is_file());
    }

    #[test]
    fn pod_table_reads_like_kubectl_get_pod() {
        let table = pod_table_of([("web-0", "1/1", "Running")].into_iter());
        assert_eq!(table, "NAME    READY   STATUS\nweb-0   1/1     Running\n");
    }

    #[test]
    fn answers_render_one_line_per_name() {
        assert_eq!(
            answer_text("web-0.nginx", &["10.244.1.6".parse().unwrap()]),
            "web-0.nginx -> 10.244.1.6\n"
        );
        assert_eq!(
            answer_text("web-0.nginx", &[]),
            "web-0.nginx -> (no answer)\n"
        );
    }
}
