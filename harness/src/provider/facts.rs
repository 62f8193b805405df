//! What differs between clusters and is discovered, never assumed: the cluster DNS Service
//! (kubeadm and kind name it `kube-dns`, k3s and some distributions `coredns`), the default
//! StorageClass and the server version.

use std::net::IpAddr;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::ListParams;
use kube::{Api, Client};

/// The names the cluster DNS Service has in kube-system, in the order they are tried.
pub const DNS_SERVICE_NAMES: [&str; 2] = ["kube-dns", "coredns"];

/// The annotation that marks the default StorageClass.
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

/// Facts about the cluster, discovered at start and never assumed: labs use them where the
/// tutorial hard-codes its own cluster's values (e.g. the DNS server 10.96.0.10).
#[derive(Debug, Clone, Default)]
pub struct ClusterFacts {
    /// The cluster IP of the cluster DNS Service (`kube-dns`, or `coredns`, in kube-system).
    pub dns_service_ip: Option<IpAddr>,
    /// Which name the cluster DNS Service has (`kube-dns` or `coredns`), when there is one.
    pub dns_service_name: Option<String>,
    /// The API server's version, e.g. `v1.33.0` (k3s: `v1.33.11+k3s1`).
    pub server_version: String,
    /// The default StorageClass (annotation `storageclass.kubernetes.io/is-default-class`).
    pub default_storage_class: Option<String>,
}

impl ClusterFacts {
    /// The facts in one line for the start of a lab run, e.g.
    /// `Kubernetes v1.33.0, DNS 10.96.0.10 (kube-dns), default StorageClass standard`.
    pub fn summary(&self) -> String {
        let dns = match (&self.dns_service_ip, &self.dns_service_name) {
            (Some(ip), Some(name)) => format!("DNS {ip} ({name})"),
            (Some(ip), None) => format!("DNS {ip}"),
            (None, _) => "no cluster DNS Service found".to_string(),
        };
        let storage = match &self.default_storage_class {
            Some(class) => format!("default StorageClass {class}"),
            None => "no default StorageClass".to_string(),
        };
        format!("Kubernetes {}, {dns}, {storage}", self.server_version)
    }
}

/// Discovers the cluster's facts through the API. Fails only when `/version` does: a cluster
/// without a DNS Service or a default StorageClass is a fact, reported as such.
pub async fn discover_facts(client: &Client) -> Result<ClusterFacts> {
    let version = client
        .apiserver_version()
        .await
        .context("GET /version failed")?;
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let mut found = Vec::new();
    for name in DNS_SERVICE_NAMES {
        match services.get_opt(name).await {
            Ok(Some(service)) => found.push(service),
            Ok(None) => {}
            Err(error) => tracing::warn!("cannot read Service kube-system/{name}: {error}"),
        }
    }
    let dns = cluster_dns(&found);
    let default_storage_class = match Api::<StorageClass>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(classes) => default_storage_class(&classes.items),
        Err(error) => {
            // A cluster that serves no storage API has no default class, which is a fact.
            tracing::debug!("no StorageClasses: {error}");
            None
        }
    };
    Ok(ClusterFacts {
        dns_service_ip: dns.as_ref().map(|(_, ip)| *ip),
        dns_service_name: dns.map(|(name, _)| name),
        server_version: version.git_version,
        default_storage_class,
    })
}

/// The name and cluster IP of the first Service in `services` that has a usable cluster IP
/// (a headless `None` or an unparsable one does not answer DNS queries).
pub fn cluster_dns(services: &[Service]) -> Option<(String, IpAddr)> {
    services.iter().find_map(|service| {
        let ip = service
            .spec
            .as_ref()
            .and_then(|spec| spec.cluster_ip.as_deref())
            .and_then(|ip| ip.parse().ok())?;
        Some((service.metadata.name.clone().unwrap_or_default(), ip))
    })
}

/// The name of the StorageClass annotated as the default. When several claim it, the API
/// server takes the newest; we take the first in list order, a rare misconfiguration either way.
pub fn default_storage_class(classes: &[StorageClass]) -> Option<String> {
    classes
        .iter()
        .find(|class| {
            class
                .metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(DEFAULT_CLASS_ANNOTATION))
                .is_some_and(|value| value == "true")
        })
        .and_then(|class| class.metadata.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;
    use std::collections::BTreeMap;

    fn class(name: &str, default: Option<&str>) -> StorageClass {
        let mut class = StorageClass::default();
        class.metadata.name = Some(name.to_string());
        if let Some(value) = default {
            class.metadata.annotations = Some(BTreeMap::from([(
                DEFAULT_CLASS_ANNOTATION.to_string(),
                value.to_string(),
            )]));
        }
        class
    }

    fn service(name: &str, cluster_ip: &str) -> Service {
        Service {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(cluster_ip.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn finds_the_annotated_default_storage_class() {
        let classes = [
            class("slow", None),
            class("fast", Some("false")),
            class("standard", Some("true")),
        ];
        assert_eq!(
            default_storage_class(&classes),
            Some("standard".to_string())
        );
        assert_eq!(default_storage_class(&classes[..2]), None);
    }

    #[test]
    fn cluster_dns_skips_services_without_a_usable_cluster_ip() {
        let services = [
            service("kube-dns", "None"),
            service("coredns", "10.43.0.10"),
        ];
        assert_eq!(
            cluster_dns(&services),
            Some(("coredns".to_string(), "10.43.0.10".parse().unwrap()))
        );
        assert_eq!(cluster_dns(&services[..1]), None);
    }

    #[test]
    fn the_summary_names_what_was_found_and_what_was_not() {
        let facts = ClusterFacts {
            dns_service_ip: Some("10.96.0.10".parse().unwrap()),
            dns_service_name: Some("kube-dns".to_string()),
            server_version: "v1.33.0".to_string(),
            default_storage_class: None,
        };
        assert_eq!(
            facts.summary(),
            "Kubernetes v1.33.0, DNS 10.96.0.10 (kube-dns), no default StorageClass"
        );
    }
}
