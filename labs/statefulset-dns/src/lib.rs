//! Lab statefulset-dns: the tutorial's section 应用 (web.yaml). A StatefulSet `web` of nginx
//! pods behind the headless Service `nginx`; the pods come up one after the other, and each
//! gets a stable DNS name `web-N.nginx.<namespace>.svc.cluster.local`.
//!
//! Each step below is one command of the tutorial and the claims its output supports. The
//! namespace is the run's own (`lab-statefulset-dns-xxxxx`) where the tutorial says `default`.
//! What a step shows is checked against `expected/` (golden files, redacted); what varies in
//! shape from run to run (the watch history) is checked against a computed expectation.

pub mod check;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use k8s_labs_harness::expect::nslookup_error;
use k8s_labs_harness::expect::object::expect_object;
use k8s_labs_harness::expect::relations::nslookup_answers_pod_ip;
use k8s_labs_harness::expect::{expect_contains, expect_text, html_title};
use k8s_labs_harness::table::{endpoint_addresses, pod_table};
use k8s_labs_harness::wait::{PodEvent, ordered_ready_history, render_history};
use k8s_labs_harness::{Lab, Step, StepContext, StepOutcome};
use k8s_openapi::api::core::v1::{Endpoints, Service};

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

/// `labs/statefulset-dns/expected/`: the golden files of what the steps show.
pub fn expected_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("expected")
}

/// The lab with the given expectations.
pub fn lab_expecting(expect: Expectations) -> Lab {
    let replicas = expect.replicas;
    Lab::new(
        NAME,
        "StatefulSet web behind headless Service nginx, and its DNS names",
        manifests_dir(),
    )
    .expected(expected_dir())
    .step(
        Step::new(
            "apply web.yaml",
            "kubectl apply -f web.yaml",
            COMMAND_TIMEOUT,
            apply_web_yaml,
        )
        .explain(
            "web.yaml holds two objects: the Service nginx and the StatefulSet web, which \
             runs 3 nginx pods and names nginx as its serviceName. kubectl apply creates both \
             and prints one line per object.",
        )
        .explain_zh(
            "web.yaml 用于创建一个Service和一个StatefulSet,这两者都用于部署和管理NGINX应用。\
             StatefulSet web 使用NGINX容器创建3个Pod,serviceName: \"nginx\" 将它们关联到该Service上。\
             kubectl apply 为每个对象输出一行。",
        ),
    )
    .step(
        Step::new(
            &format!(
                "pods {} become Running and Ready, in order",
                pod_names(replicas)
            ),
            "kubectl get pod",
            POD_TIMEOUT,
            move |ctx| pods_ready_in_order(ctx, replicas),
        )
        .explain(
            "A StatefulSet gives each pod a stable, unique name: web-0, web-1, web-2, not a \
             random suffix. By default it starts them in order: web-1 is created only after \
             web-0 is Running and Ready, and so on; the watch history shows that order.",
        )
        .explain_zh(
            "StatefulSet可以为每个Pod分配唯一的标识(web-0、web-1、web-2),并提供有序的部署和伸缩机制:\
             前一个Pod Running并Ready之后,才创建下一个Pod。下面的watch记录显示了这个顺序。",
        ),
    )
    .step(
        Step::new(
            "Service nginx is headless and its endpoints are the pods",
            "kubectl get svc nginx; kubectl get ep nginx",
            COMMAND_TIMEOUT,
            headless_service_endpoints,
        )
        .explain(
            "clusterIP: None makes nginx a headless Service: it gets no cluster IP and does \
             no load balancing. Its endpoints are simply the Ready pods' IPs on port 80 (the \
             port named web), and DNS answers with those pod IPs.",
        )
        .explain_zh(
            "clusterIP: None 意味着这是一个Headless Service,不会分配Cluster IP。\
             查看endpoint(kubectl get ep):nginx 的ENDPOINTS就是各个Pod的IP加端口80(名为 “web”)。",
        ),
    )
    .step(
        Step::new(
            "inside web-1, curl its own DNS name",
            "kubectl exec web-1 -- curl -s web-1.nginx.{ns}.svc.cluster.local",
            COMMAND_TIMEOUT,
            curl_from_web_1,
        )
        .explain(
            "Each pod of a StatefulSet has a DNS name made of pod name, Service name, \
             namespace and the cluster domain: web-1.nginx.<namespace>.svc.cluster.local. \
             Inside web-1, curl of that name reaches nginx in web-1, which answers with its \
             welcome page.",
        )
        .explain_zh(
            "serviceName: \"nginx\" 允许StatefulSet的Pods在DNS中使用 “nginx” 作为服务名:\
             每个Pod的DNS名称由Pod名、Service名、命名空间和集群域名组成,\
             即 web-1.nginx.<命名空间>.svc.cluster.local。进入web-1里用curl访问这个名称,\
             返回 “Welcome to nginx!” 页面。",
        ),
    )
    .step(
        Step::new(
            "on the node, nslookup web-1 at the cluster DNS",
            "nslookup web-1.nginx.{ns}.svc.cluster.local {dns}",
            COMMAND_TIMEOUT,
            nslookup_on_the_node,
        )
        .explain(
            "On the node, nslookup asks the cluster DNS server (the kube-dns Service IP, \
             10.96.0.10 in the tutorial) directly. The answer for web-1's full name is \
             web-1's own pod IP, not a Service IP, because the Service is headless.",
        )
        .explain_zh(
            "在Kubernetes主机上运行nslookup命令,并明确指定DNS服务器的IP地址\
             (教程中为 10.96.0.10),成功解析了 web-1.nginx.<命名空间>.svc.cluster.local。\
             因为是Headless Service,解析出的地址就是web-1这个Pod的IP。",
        ),
    )
    .step(
        Step::new(
            "from a one-shot busybox:1.28 pod, nslookup web-0.nginx and web-1.nginx",
            "kubectl run -i --image busybox:1.28 dns-test --restart=Never --rm -- \
             sh -c 'nslookup web-0.nginx; nslookup web-1.nginx'",
            COMMAND_TIMEOUT,
            nslookup_from_busybox,
        )
        .explain(
            "kubectl run starts a throwaway busybox:1.28 pod. Inside it the short names \
             web-0.nginx and web-1.nginx resolve through the pod's DNS search domains, and \
             each answer is exactly that pod's IP. If it fails: check the DNS server, the \
             search domains and the spelling of the Service name.",
        )
        .explain_zh(
            "使用 kubectl run 运行一个提供 nslookup 命令的容器(busybox:1.28)。\
             通过对 Pod 的主机名执行 nslookup,你可以检查这些主机名在集群内部的 DNS 地址:\
             web-0.nginx 经过容器的DNS搜索域补全,解析为web-0的Pod IP。\
             如果解析失败,请检查DNS服务器、搜索域以及Service名称的拼写。",
        ),
    )
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
async fn pods_ready_in_order(ctx: StepContext, replicas: usize) -> Result<StepOutcome> {
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
async fn headless_service_endpoints(ctx: StepContext) -> Result<StepOutcome> {
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
async fn nslookup_on_the_node(ctx: StepContext) -> Result<StepOutcome> {
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
async fn nslookup_from_busybox(ctx: StepContext) -> Result<StepOutcome> {
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
        assert_eq!(lab.expected_dir(), Some(expected_dir().as_path()));
    }

    #[test]
    fn pod_names_follow_the_ordinals() {
        assert_eq!(pod_names(2), "web-0, web-1");
    }
}
