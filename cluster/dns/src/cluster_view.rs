//! The cluster objects DNS answers from: Services and their EndpointSlices.
//!
//! A `ClusterView` is a snapshot (cheap `Arc` clones out of the reflector stores) taken per
//! query, so one answer is always computed from one consistent set of objects.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::names::dashed_address;

/// The label that ties an EndpointSlice to its Service (set by the EndpointSlice controller).
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Services and EndpointSlices, as the reflectors currently see them.
#[derive(Debug, Default, Clone)]
pub(crate) struct ClusterView {
    pub services: Vec<Arc<Service>>,
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
}

/// A port as DNS sees it: SRV records are named after `name` and `protocol`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct NamedPort {
    /// Lower-case port name ("" for an unnamed port).
    pub name: String,
    /// Lower-case protocol ("tcp", "udp", "sctp").
    pub protocol: String,
    pub port: u16,
}

impl NamedPort {
    /// A port of a Service or an EndpointSlice as DNS names it: the protocol defaults to TCP
    /// as the API does; a number outside 0..=65535 is no port.
    fn new(name: Option<&str>, protocol: Option<&str>, port: i32) -> Option<NamedPort> {
        Some(NamedPort {
            name: name.unwrap_or_default().to_ascii_lowercase(),
            protocol: protocol.unwrap_or("TCP").to_ascii_lowercase(),
            port: u16::try_from(port).ok()?,
        })
    }
}

/// One ready address of a Service, with the name DNS gives it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ServiceEndpoint {
    pub address: IpAddr,
    /// The first label of the endpoint's DNS name: its hostname, or its dashed address.
    pub dns_label: String,
    pub ports: Vec<NamedPort>,
}

/// What kind of answer a Service's own name gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServiceAddressing {
    /// ClusterIP / NodePort / LoadBalancer: the cluster IPs.
    ClusterIps(Vec<IpAddr>),
    /// `clusterIP: None`: the ready endpoints' addresses.
    Headless,
    /// `type: ExternalName`: a CNAME to this (absolute) name.
    ExternalName(String),
}

impl ClusterView {
    /// The Service `namespace/name`, if it exists (names are compared without case).
    pub fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        self.services.iter().map(Arc::as_ref).find(|service| {
            service
                .metadata
                .namespace
                .as_deref()
                .is_some_and(|ns| ns.eq_ignore_ascii_case(namespace))
                && service
                    .metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }

    /// Whether DNS treats the namespace as existing (it has at least one Service).
    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.services.iter().any(|service| {
            service
                .metadata
                .namespace
                .as_deref()
                .is_some_and(|ns| ns.eq_ignore_ascii_case(namespace))
        })
    }

    /// The ready endpoints of a Service, from all of its EndpointSlices, deduplicated and sorted.
    ///
    /// Like CoreDNS, an endpoint counts as ready unless its `ready` condition says false.
    pub fn ready_endpoints(&self, service: &Service) -> Vec<ServiceEndpoint> {
        let (Some(namespace), Some(name)) = (
            service.metadata.namespace.as_deref(),
            service.metadata.name.as_deref(),
        ) else {
            return Vec::new();
        };
        let mut endpoints = BTreeSet::new();
        for slice in self.endpoint_slices.iter().filter(|slice| {
            slice.metadata.namespace.as_deref() == Some(namespace)
                && slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
                    .is_some_and(|svc| svc == name)
        }) {
            if slice.address_type != "IPv4" && slice.address_type != "IPv6" {
                continue;
            }
            let ports: Vec<NamedPort> = slice
                .ports
                .iter()
                .flatten()
                .filter_map(|port| {
                    NamedPort::new(port.name.as_deref(), port.protocol.as_deref(), port.port?)
                })
                .collect();
            for endpoint in &slice.endpoints {
                if !k8s_labs_informers::is_ready(endpoint) {
                    continue;
                }
                for address in &endpoint.addresses {
                    let Ok(address) = address.parse::<IpAddr>() else {
                        continue;
                    };
                    let dns_label = match endpoint.hostname.as_deref() {
                        Some(hostname) if !hostname.is_empty() => hostname.to_ascii_lowercase(),
                        _ => dashed_address(&address),
                    };
                    endpoints.insert(ServiceEndpoint {
                        address,
                        dns_label,
                        ports: ports.clone(),
                    });
                }
            }
        }
        endpoints.into_iter().collect()
    }
}

/// How the Service's own name is answered.
pub(crate) fn service_addressing(service: &Service) -> ServiceAddressing {
    let Some(spec) = service.spec.as_ref() else {
        return ServiceAddressing::ClusterIps(Vec::new());
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        let target = spec.external_name.clone().unwrap_or_default();
        let absolute = if target.ends_with('.') {
            target
        } else {
            format!("{target}.")
        };
        return ServiceAddressing::ExternalName(absolute);
    }
    if spec.cluster_ip.as_deref() == Some("None") {
        return ServiceAddressing::Headless;
    }
    let mut addresses: Vec<IpAddr> = spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .filter_map(|ip| ip.parse().ok())
        .collect();
    addresses.sort();
    addresses.dedup();
    ServiceAddressing::ClusterIps(addresses)
}

/// The Service's own ports, as SRV records of a ClusterIP Service name them.
pub(crate) fn service_ports(service: &Service) -> Vec<NamedPort> {
    service
        .spec
        .iter()
        .flat_map(|spec| spec.ports.iter().flatten())
        .filter_map(|port| {
            NamedPort::new(port.name.as_deref(), port.protocol.as_deref(), port.port)
        })
        .collect()
}
