//! The cluster DNS as a pod in `kube-system`, the way a kubelet shows a static pod: a mirror
//! pod (annotation `kubernetes.io/config.mirror`) that the node agent does not run, because
//! what it stands for already runs — here the DNS server inside this process (cluster/dns).
//!
//! On kubeadm or kind, `kubectl get pod -n kube-system` lists the `coredns-…` pods; students
//! follow the tutorial by looking for one. The pod's Ready condition is not assumed: like a
//! readiness probe, bind9's `nslookup`, run in the node network namespace, asks the DNS
//! server on the kube-dns address for the `kubernetes` Service every few seconds, and the
//! pod is Ready while that answers.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_labs_net::NodeNetwork;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The annotation a kubelet puts on the API copy of a static pod.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// How often the readiness probe runs (CoreDNS's readiness probe runs every 10 s).
const PROBE_PERIOD: Duration = Duration::from_secs(5);

/// The mirror pod's name: a static pod's name plus `-<node>`, as the kubelet names them.
pub fn pod_name(node: &str) -> String {
    format!("coredns-{node}")
}

/// What the probe needs: where to ask, and what.
pub struct DnsPod {
    pub client: kube::Client,
    pub network: Arc<NodeNetwork>,
    pub node: String,
    pub dns_ip: Ipv4Addr,
    pub cluster_domain: String,
}

impl DnsPod {
    /// Creates the mirror pod and starts its readiness probe; the task ends when aborted.
    pub async fn start(self) -> Result<JoinHandle<()>> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), "kube-system");
        let pod: Pod = serde_json::from_value(self.manifest()).context("building the DNS pod")?;
        pods.create(&PostParams::default(), &pod)
            .await
            .context("creating the DNS mirror pod in kube-system")?;
        let started = jiff::Timestamp::now().to_string();
        Ok(tokio::spawn(async move {
            let mut reported = None;
            loop {
                let ready = self.probe().await;
                if reported != Some(ready) {
                    let status = Patch::Merge(self.status(ready, &started));
                    let name = pod_name(&self.node);
                    match pods
                        .patch_status(&name, &PatchParams::default(), &status)
                        .await
                    {
                        Ok(_) => reported = Some(ready),
                        Err(error) => tracing::warn!("reporting the DNS pod's status: {error}"),
                    }
                }
                tokio::time::sleep(PROBE_PERIOD).await;
            }
        }))
    }

    fn manifest(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name(&self.node),
                "namespace": "kube-system",
                "labels": { "k8s-app": "kube-dns" },
                "annotations": {
                    MIRROR_ANNOTATION: "k8s-labs-cluster-dns",
                    "kubernetes.io/config.source": "file",
                    "k8s-labs.io/runs-as": "the cluster DNS server (crate cluster/dns) inside the embedded cluster's process, listening on the kube-dns Service address in the node network namespace",
                },
            },
            "spec": {
                "nodeName": self.node,
                "hostNetwork": true,
                "dnsPolicy": "Default",
                "priorityClassName": "system-cluster-critical",
                "containers": [{
                    "name": "coredns",
                    "image": "k8s-labs/cluster-dns:in-process",
                    "args": ["--cluster-domain", self.cluster_domain, "--listen", format!("{}:53", self.dns_ip)],
                    "ports": [
                        { "name": "dns", "containerPort": 53, "protocol": "UDP" },
                        { "name": "dns-tcp", "containerPort": 53, "protocol": "TCP" },
                    ],
                }],
            },
        })
    }

    fn status(&self, ready: bool, started: &str) -> Value {
        let now = jiff::Timestamp::now().to_string();
        let flag = if ready { "True" } else { "False" };
        let condition = |kind: &str, status: &str| json!({ "type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": now });
        json!({
            "status": {
                "phase": "Running",
                "startTime": started,
                "conditions": [
                    condition("PodReadyToStartContainers", "True"),
                    condition("Initialized", "True"),
                    condition("Ready", flag),
                    condition("ContainersReady", flag),
                    condition("PodScheduled", "True"),
                ],
                "containerStatuses": [{
                    "name": "coredns",
                    "image": "k8s-labs/cluster-dns:in-process",
                    "imageID": "",
                    "ready": ready,
                    "started": true,
                    "restartCount": 0,
                    "state": { "running": { "startedAt": started } },
                }],
            }
        })
    }

    /// One readiness probe: does the DNS server answer for the `kubernetes` Service?
    async fn probe(&self) -> bool {
        let name = format!("kubernetes.default.svc.{}", self.cluster_domain);
        let server = self.dns_ip.to_string();
        let mut command = self.network.command(
            "nslookup",
            &["-timeout=2", "-retry=1", name.as_str(), server.as_str()],
        );
        command.kill_on_drop(true);
        match tokio::time::timeout(Duration::from_secs(6), command.output()).await {
            Ok(Ok(output)) => {
                output.status.success() && String::from_utf8_lossy(&output.stdout).contains(&name)
            }
            Ok(Err(error)) => {
                tracing::warn!("DNS readiness probe: running nslookup: {error}");
                false
            }
            Err(_) => false,
        }
    }
}
