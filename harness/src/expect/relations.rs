//! Named relations between two observations, reused by every lab that makes the claim:
//! "nslookup answers the IP of pod web-0", "the endpoints are the ready pods' IPs". Each
//! compares a one-line rendering of both sides, so a failure reads as a two-line diff.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Endpoints, Pod};
use kube::ResourceExt;

use super::{Mismatch, expect_text, nslookup_addresses};
use crate::table::{endpoint_addresses, endpoints_column};
use k8s_labs_podutil::is_pod_ready;

/// `web-1.nginx -> 10.244.0.3` (or `-> (no answer)`): one line per name, for comparing
/// answers.
pub fn answer_line(name: &str, addresses: &[IpAddr]) -> String {
    if addresses.is_empty() {
        return format!("{name} -> (no answer)\n");
    }
    let addresses: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
    format!("{name} -> {}\n", addresses.join(", "))
}

/// Claims that nslookup `output` answers `query` with exactly the IP of pod `pod`.
pub fn nslookup_answers_pod_ip(
    output: &str,
    query: &str,
    pod: &str,
    pod_ip: IpAddr,
) -> Result<(), Mismatch> {
    expect_text(
        &format!("nslookup {query} answers the IP of pod {pod}"),
        &answer_line(query, &[pod_ip]),
        &answer_line(query, &nslookup_addresses(output, query)),
    )
    .map_err(|mismatch| mismatch.with_detail(output))
}

/// Claims that the Endpoints object lists exactly the IPs of the Ready pods among `pods`,
/// each on `port` (what `kubectl get ep` shows for a Service selecting them).
pub fn endpoints_are_ready_pod_ips(
    endpoints: &Endpoints,
    pods: &[Pod],
    port: i32,
) -> Result<(), Mismatch> {
    let ready = pods
        .iter()
        .filter(|pod| is_pod_ready(pod))
        .filter_map(|pod| pod.status.as_ref()?.pod_ip.clone())
        .map(|ip| (ip, port));
    expect_text(
        &format!(
            "endpoints {} are the Ready pods' IPs on port {port}",
            endpoints.name_any()
        ),
        &endpoints_column(ready),
        &endpoints_column(endpoint_addresses(endpoints)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        EndpointAddress, EndpointPort, EndpointSubset, PodCondition, PodStatus,
    };

    fn pod(name: &str, ip: &str, ready: bool) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        pod.status = Some(PodStatus {
            pod_ip: Some(ip.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        pod
    }

    fn endpoints(ips: &[&str]) -> Endpoints {
        let mut endpoints = Endpoints::default();
        endpoints.metadata.name = Some("nginx".into());
        endpoints.subsets = Some(vec![EndpointSubset {
            addresses: Some(
                ips.iter()
                    .map(|ip| EndpointAddress {
                        ip: ip.to_string(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ports: Some(vec![EndpointPort {
                port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        }]);
        endpoints
    }

    #[test]
    fn endpoints_must_be_exactly_the_ready_pods() {
        let pods = [
            pod("web-0", "10.244.0.2", true),
            pod("web-1", "10.244.0.3", true),
            pod("web-2", "10.244.0.4", false),
        ];
        assert!(
            endpoints_are_ready_pod_ips(&endpoints(&["10.244.0.3", "10.244.0.2"]), &pods, 80)
                .is_ok()
        );
        let mismatch =
            endpoints_are_ready_pod_ips(&endpoints(&["10.244.0.2", "10.244.0.4"]), &pods, 80)
                .unwrap_err();
        assert!(
            mismatch.diff().contains("+10.244.0.2:80,10.244.0.4:80"),
            "{}",
            mismatch.diff()
        );
        assert!(
            mismatch.claim.contains("endpoints nginx"),
            "{}",
            mismatch.claim
        );
    }

    #[test]
    fn nslookup_must_answer_the_pod_ip() {
        let output = "Server:    10.96.0.10\nAddress 1: 10.96.0.10\n\nName:      web-0.nginx\nAddress 1: 10.244.0.2\n";
        let ip: IpAddr = "10.244.0.2".parse().unwrap();
        assert!(nslookup_answers_pod_ip(output, "web-0.nginx", "web-0", ip).is_ok());
        let other: IpAddr = "10.244.0.9".parse().unwrap();
        let mismatch = nslookup_answers_pod_ip(output, "web-0.nginx", "web-0", other).unwrap_err();
        assert!(
            mismatch.diff().contains("-web-0.nginx -> 10.244.0.9"),
            "{}",
            mismatch.diff()
        );
        assert_eq!(mismatch.detail.as_deref(), Some(output));
        let none = nslookup_answers_pod_ip("** server can't find", "web-0.nginx", "web-0", ip)
            .unwrap_err();
        assert!(none.diff().contains("(no answer)"));
    }
}
