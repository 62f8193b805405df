//! Objects printed the way `kubectl get` prints them (only the columns that do not vary from
//! run to run), so that steps show and compare what a reader of the tutorial would see.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Endpoints, Pod};
use kube::ResourceExt;

use k8s_labs_podutil::{
    container_waiting_reason, is_pod_running_and_ready, is_pod_terminating, pod_phase,
};

/// `kubectl get pod`: NAME READY STATUS (ages, restarts and IPs vary). STATUS is the waiting
/// reason of a waiting container (`ErrImagePull`), `Terminating`, or the phase, as kubectl
/// shows it.
pub fn pod_table(pods: &[Pod]) -> String {
    let width = pods
        .iter()
        .map(|pod| pod.name_any().len() + 3)
        .max()
        .unwrap_or(8)
        .max(8);
    let mut table = format!("{:<width$}{:<8}{}\n", "NAME", "READY", "STATUS");
    for pod in pods {
        let statuses = pod
            .status
            .as_ref()
            .and_then(|status| status.container_statuses.clone())
            .unwrap_or_default();
        let ready = statuses.iter().filter(|status| status.ready).count();
        let total = pod.spec.as_ref().map_or(0, |spec| spec.containers.len());
        let status = pod_status(pod);
        table.push_str(&format!(
            "{:<width$}{:<8}{status}\n",
            pod.name_any(),
            format!("{ready}/{total}")
        ));
    }
    table
}

/// The STATUS column of `kubectl get pod`: `Terminating`, the waiting reason of a waiting
/// container (`ErrImagePull`, `ContainerCreating`), or the phase.
pub fn pod_status(pod: &Pod) -> &str {
    if is_pod_terminating(pod) {
        "Terminating"
    } else {
        container_waiting_reason(pod).unwrap_or_else(|| pod_phase(pod))
    }
}

/// Whether `pod` is a pod of StatefulSet `statefulset`: named `<statefulset>-<ordinal>`.
pub fn is_statefulset_pod(statefulset: &str, pod: &str) -> bool {
    pod.strip_prefix(statefulset)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|ordinal| !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit()))
}

/// `web-0 Running and Ready` (or `not Running and Ready`), one line per pod of StatefulSet
/// `statefulset` among `pods`: what a claim about the StatefulSet's pods compares.
pub fn statefulset_pod_states(statefulset: &str, pods: &[Pod]) -> String {
    pods.iter()
        .map(|pod| (pod, pod.name_any()))
        .filter(|(_, name)| is_statefulset_pod(statefulset, name))
        .map(|(pod, name)| {
            let ready = if is_pod_running_and_ready(pod) {
                "Running and Ready"
            } else {
                "not Running and Ready"
            };
            format!("{name} {ready}\n")
        })
        .collect()
}

/// The `ip:port` pairs of the ready addresses of an Endpoints object.
pub fn endpoint_addresses(endpoints: &Endpoints) -> Vec<(String, i32)> {
    let mut pairs = Vec::new();
    for subset in endpoints.subsets.iter().flatten() {
        for address in subset.addresses.iter().flatten() {
            for port in subset.ports.iter().flatten() {
                pairs.push((address.ip.clone(), port.port));
            }
        }
    }
    pairs
}

/// The ENDPOINTS column of `kubectl get ep`: `ip:port` pairs, sorted, comma-separated, or
/// `<none>`.
pub fn endpoints_column(pairs: impl IntoIterator<Item = (String, i32)>) -> String {
    let mut pairs: Vec<(IpAddr, String, i32)> = pairs
        .into_iter()
        .map(|(ip, port)| {
            let parsed = ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
            (parsed, ip, port)
        })
        .collect();
    pairs.sort();
    let column: Vec<String> = pairs
        .into_iter()
        .map(|(_, ip, port)| format!("{ip}:{port}"))
        .collect();
    if column.is_empty() {
        "<none>".to_string()
    } else {
        column.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_column_is_sorted_like_kubectl() {
        let column = endpoints_column([
            ("10.244.249.5".to_string(), 80),
            ("10.244.185.197".to_string(), 80),
        ]);
        assert_eq!(column, "10.244.185.197:80,10.244.249.5:80");
        assert_eq!(endpoints_column(Vec::new()), "<none>");
    }

    #[test]
    fn pod_table_shows_a_pending_pod_without_status() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("example-app-x7k2p".into());
        assert_eq!(
            pod_table(&[pod]),
            "NAME                READY   STATUS\nexample-app-x7k2p   0/0     Pending\n"
        );
    }

    #[test]
    fn only_the_statefulsets_pods_count() {
        assert!(is_statefulset_pod("web", "web-12"));
        assert!(!is_statefulset_pod("web", "web-"));
        assert!(!is_statefulset_pod("web", "webby-0"));
        assert!(!is_statefulset_pod("web", "web-0-debug"));
        assert!(!is_statefulset_pod("nginx", "nginx-x"));
        let mut pod = Pod::default();
        pod.metadata.name = Some("web-0".into());
        let mut other = Pod::default();
        other.metadata.name = Some("dns-test".into());
        assert_eq!(
            statefulset_pod_states("web", &[pod, other]),
            "web-0 not Running and Ready\n"
        );
    }
}
