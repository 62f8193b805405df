//! The Endpoints and EndpointSlices a Service should have, computed from its pods.
//!
//! Mirrors kube-controller-manager's endpoints controller (`syncService`, `addEndpointSubset`,
//! `RepackSubsets`) and EndpointSlice reconciler (`podToEndpoint`, `getEndpointPorts`):
//! - a pod takes part when it has an IP and is not Succeeded/Failed;
//! - Endpoints drop terminating pods, put ready pods in `addresses` and the others in
//!   `notReadyAddresses`; EndpointSlices keep terminating pods with `ready: false`,
//!   `terminating: true`;
//! - each Service port is resolved per pod (a number, or a named container port); pods are
//!   grouped by their resolved port set (one subset / one slice per group);
//! - an endpoint gets the pod's hostname when the pod's subdomain is the Service's name.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort as CorePort, EndpointSubset, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use k8s_labs_podutil::{is_pod_ready, is_pod_terminal, is_pod_terminating};

/// Label marking a headless Service's Endpoints/EndpointSlices.
pub(crate) const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// A Service port resolved for one pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ResolvedPort {
    pub name: String,
    pub port: i32,
    pub protocol: String,
    pub app_protocol: Option<String>,
}

/// One pod as an endpoint of the Service.
#[derive(Debug, Clone)]
struct PodEndpoint {
    ip: String,
    hostname: Option<String>,
    node_name: Option<String>,
    target: ObjectReference,
    /// Pod condition Ready=True.
    pod_ready: bool,
    terminating: bool,
    ports: Vec<ResolvedPort>,
}

/// The Service's selector, or `None` when it has none (its endpoints are managed by hand).
pub(crate) fn selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    service
        .spec
        .as_ref()
        .and_then(|spec| spec.selector.as_ref())
        .filter(|selector| !selector.is_empty())
}

/// Whether `pod` is selected by the Service (same namespace, labels match the selector).
pub(crate) fn selects(service: &Service, pod: &Pod) -> bool {
    let Some(selector) = selector(service) else {
        return false;
    };
    if pod.metadata.namespace != service.metadata.namespace {
        return false;
    }
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(key, value)| labels.and_then(|labels| labels.get(key)) == Some(value))
}

pub(crate) fn is_headless(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|spec| spec.cluster_ip.as_deref())
        == Some("None")
}

fn publishes_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|spec| spec.publish_not_ready_addresses)
        .unwrap_or(false)
}

fn service_ports(service: &Service) -> &[ServicePort] {
    service
        .spec
        .as_ref()
        .and_then(|spec| spec.ports.as_deref())
        .unwrap_or_default()
}

/// The container port a Service port sends to on this pod (Kubernetes' `FindPort`).
fn find_port(pod: &Pod, service_port: &ServicePort) -> Option<i32> {
    match &service_port.target_port {
        None => Some(service_port.port),
        Some(IntOrString::Int(port)) => Some(*port),
        Some(IntOrString::String(name)) => {
            let protocol = service_port.protocol.as_deref().unwrap_or("TCP");
            pod.spec.as_ref()?.containers.iter().find_map(|container| {
                container.ports.iter().flatten().find_map(|port| {
                    (port.name.as_deref() == Some(name.as_str())
                        && port.protocol.as_deref().unwrap_or("TCP") == protocol)
                        .then_some(port.container_port)
                })
            })
        }
    }
}

fn resolve_ports(service: &Service, pod: &Pod) -> Vec<ResolvedPort> {
    let mut ports: Vec<ResolvedPort> = service_ports(service)
        .iter()
        .filter_map(|service_port| {
            Some(ResolvedPort {
                name: service_port.name.clone().unwrap_or_default(),
                port: find_port(pod, service_port)?,
                protocol: service_port
                    .protocol
                    .clone()
                    .unwrap_or_else(|| "TCP".into()),
                app_protocol: service_port.app_protocol.clone(),
            })
        })
        .collect();
    ports.sort();
    ports
}

/// The selected pods that can be endpoints at all (an IPv4 address, not terminal).
fn pod_endpoints(service: &Service, pods: &[Pod]) -> Vec<PodEndpoint> {
    let service_name = service.metadata.name.as_deref();
    let mut endpoints: Vec<PodEndpoint> = pods
        .iter()
        .filter(|pod| selects(service, pod) && !is_pod_terminal(pod))
        .filter_map(|pod| {
            let ip = pod.status.as_ref()?.pod_ip.clone()?;
            if ip.parse::<std::net::Ipv4Addr>().is_err() {
                return None;
            }
            let spec = pod.spec.as_ref();
            let hostname = spec
                .filter(|spec| spec.subdomain.as_deref() == service_name)
                .and_then(|spec| spec.hostname.clone())
                .filter(|hostname| !hostname.is_empty());
            Some(PodEndpoint {
                ip,
                hostname,
                node_name: spec.and_then(|spec| spec.node_name.clone()),
                target: ObjectReference {
                    kind: Some("Pod".into()),
                    namespace: pod.metadata.namespace.clone(),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                    ..ObjectReference::default()
                },
                pod_ready: is_pod_ready(pod),
                terminating: is_pod_terminating(pod),
                ports: resolve_ports(service, pod),
            })
        })
        .collect();
    endpoints.sort_by(|a, b| {
        a.ip.cmp(&b.ip)
            .then_with(|| a.target.uid.cmp(&b.target.uid))
    });
    endpoints
}

/// The `subsets` of the Service's Endpoints object.
pub(crate) fn endpoints_subsets(service: &Service, pods: &[Pod]) -> Vec<EndpointSubset> {
    let publish_not_ready = publishes_not_ready(service);
    let headless_without_ports = is_headless(service) && service_ports(service).is_empty();
    let mut groups: BTreeMap<Vec<ResolvedPort>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    for endpoint in pod_endpoints(service, pods) {
        if endpoint.terminating && !publish_not_ready {
            continue;
        }
        if endpoint.ports.is_empty() && !headless_without_ports {
            continue;
        }
        let address = EndpointAddress {
            ip: endpoint.ip.clone(),
            hostname: endpoint.hostname.clone(),
            node_name: endpoint.node_name.clone(),
            target_ref: Some(endpoint.target.clone()),
        };
        let (ready, not_ready) = groups.entry(endpoint.ports.clone()).or_default();
        if publish_not_ready || endpoint.pod_ready {
            ready.push(address);
        } else {
            not_ready.push(address);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (ready, not_ready))| EndpointSubset {
            addresses: (!ready.is_empty()).then_some(ready),
            not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
            ports: (!ports.is_empty()).then(|| {
                ports
                    .into_iter()
                    .map(|port| CorePort {
                        name: Some(port.name).filter(|name| !name.is_empty()),
                        port: port.port,
                        protocol: Some(port.protocol),
                        app_protocol: port.app_protocol,
                    })
                    .collect()
            }),
        })
        .collect()
}

/// The content of one EndpointSlice: its ports and its endpoints.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SliceContent {
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

/// The slices the Service should have: one per distinct port set; a single empty slice when
/// no pod qualifies (as the EndpointSlice controller keeps a placeholder).
pub(crate) fn slice_contents(service: &Service, pods: &[Pod]) -> Vec<SliceContent> {
    let publish_not_ready = publishes_not_ready(service);
    let mut groups: BTreeMap<Vec<ResolvedPort>, Vec<Endpoint>> = BTreeMap::new();
    for endpoint in pod_endpoints(service, pods) {
        let serving = publish_not_ready || endpoint.pod_ready;
        let ready = publish_not_ready || (serving && !endpoint.terminating);
        groups
            .entry(endpoint.ports.clone())
            .or_default()
            .push(Endpoint {
                addresses: vec![endpoint.ip.clone()],
                conditions: Some(EndpointConditions {
                    ready: Some(ready),
                    serving: Some(serving),
                    terminating: Some(endpoint.terminating),
                }),
                hostname: endpoint.hostname.clone(),
                node_name: endpoint.node_name.clone(),
                target_ref: Some(endpoint.target.clone()),
                ..Endpoint::default()
            });
    }
    if groups.is_empty() {
        return vec![SliceContent {
            ports: Vec::new(),
            endpoints: Vec::new(),
        }];
    }
    groups
        .into_iter()
        .map(|(ports, endpoints)| SliceContent {
            ports: ports.into_iter().map(slice_port).collect(),
            endpoints,
        })
        .collect()
}

fn slice_port(port: ResolvedPort) -> EndpointPort {
    EndpointPort {
        name: Some(port.name),
        port: Some(port.port),
        protocol: Some(port.protocol),
        app_protocol: port.app_protocol,
    }
}

#[cfg(test)]
mod tests;
