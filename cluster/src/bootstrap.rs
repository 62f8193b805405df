//! Objects a cluster has before anyone applies anything, which the add-on manager or kubeadm
//! would create on a real cluster: the `kube-dns` Service that pods' resolv.conf points at.

use std::net::Ipv4Addr;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PatchParams};

/// Creates (or updates) `kube-system/kube-dns` with the given cluster IP, labelled as kubeadm
/// labels it, so that labs can discover the DNS address the way they do on any cluster.
pub async fn create_cluster_dns_service(client: &kube::Client, dns_ip: Ipv4Addr) -> Result<()> {
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let service: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
        },
        "spec": {
            "clusterIP": dns_ip.to_string(),
            "selector": { "k8s-app": "kube-dns" },
            "ports": [
                { "name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53 },
                { "name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53 },
            ],
        },
    }))
    .context("building the kube-dns Service")?;
    services
        .patch(
            "kube-dns",
            &PatchParams::apply("k8s-labs-cluster").force(),
            &kube::api::Patch::Apply(&service),
        )
        .await
        .context("creating the kube-dns Service in kube-system")?;
    Ok(())
}
