//! Lab statefulset-dns: the tutorial's section 应用 (web.yaml). A StatefulSet `web` of nginx
//! pods behind the headless Service `nginx`; the pods come up one after the other, and each
//! gets a stable DNS name `web-N.nginx.<namespace>.svc.cluster.local`.
//!
//! Each step below is one command of the tutorial and the claims its output supports. The
//! namespace is the run's own (`lab-statefulset-dns-xxxxx`) where the tutorial says `default`.
//! What a step shows is checked against `expected/` (golden files, redacted); what varies in
//! shape from run to run (the watch history) is checked against a computed expectation.

pub mod check;
mod steps;

use std::path::PathBuf;
use std::time::Duration;

use k8s_labs_harness::{Lab, Step};

use crate::steps::{
    apply_web_yaml, curl_from_web_1, headless_service_endpoints, nslookup_from_busybox,
    nslookup_on_the_node, pods_ready_in_order,
};

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
    .step(apply_web_yaml_step())
    .step(pods_ready_in_order_step(replicas))
    .step(headless_service_endpoints_step())
    .step(curl_from_web_1_step())
    .step(nslookup_on_the_node_step())
    .step(nslookup_from_busybox_step())
}

fn apply_web_yaml_step() -> Step {
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
    )
}

fn pods_ready_in_order_step(replicas: usize) -> Step {
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
    )
}

fn headless_service_endpoints_step() -> Step {
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
    )
}

fn curl_from_web_1_step() -> Step {
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
    )
}

fn nslookup_on_the_node_step() -> Step {
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
    )
}

fn nslookup_from_busybox_step() -> Step {
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
