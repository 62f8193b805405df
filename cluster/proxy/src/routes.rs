//! What the proxy forwards: from each proxied Service port (`clusterIP:port`) to the ready
//! endpoints at their resolved target ports, computed from Services and EndpointSlices.
//!
//! Pure functions of the objects, so the routing rules are tested without any network.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label that ties an EndpointSlice to its Service (set by the EndpointSlice controller).
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Where one Service port sends its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRoute {
    /// Namespace of the Service.
    pub namespace: String,
    /// Name of the Service.
    pub name: String,
    /// The Service port's name ("" when unnamed): EndpointSlice ports are matched by it.
    pub port_name: String,
    /// Ready endpoints at the resolved target port, sorted; empty means "reject".
    pub endpoints: Vec<SocketAddrV4>,
}

/// Every proxied `clusterIP:port` (TCP) and its route.
pub type RouteTable = BTreeMap<SocketAddrV4, ServiceRoute>;

/// Services never proxied whatever the caller says: `default/kubernetes`, whose endpoints
/// are the API server on the host's loopback. Forwarding to it would mean a connection to
/// the host from the node namespace, which the cluster never makes (the labs reach the API
/// server through kubectl on the host, not from pods).
pub const ALWAYS_SKIPPED: [(&str, &str); 1] = [("default", "kubernetes")];

/// The route table for `services`, except the `skip`ped (namespace, name) pairs.
///
/// A Service is proxied when it has an IPv4 cluster IP (not `None`: headless Services are
/// DNS only) and is not of type ExternalName; NodePort and LoadBalancer Services get their
/// cluster IP proxied too, as kube-proxy does (no node ports). Only TCP ports are proxied.
pub fn route_table(
    services: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
    skip: &[(String, String)],
) -> RouteTable {
    let mut table = RouteTable::new();
    for service in services {
        let (Some(namespace), Some(name)) = (
            service.metadata.namespace.as_deref(),
            service.metadata.name.as_deref(),
        ) else {
            continue;
        };
        let skipped = ALWAYS_SKIPPED
            .iter()
            .any(|(ns, n)| *ns == namespace && *n == name)
            || skip.iter().any(|(ns, n)| ns == namespace && n == name);
        if skipped {
            continue;
        }
        let Some(cluster_ip) = cluster_ip(service) else {
            continue;
        };
        let service_slices: Vec<&EndpointSlice> = slices
            .iter()
            .map(Arc::as_ref)
            .filter(|slice| belongs_to(slice, namespace, name))
            .collect();
        for port in service
            .spec
            .iter()
            .flat_map(|spec| spec.ports.iter().flatten())
        {
            if !is_tcp(port.protocol.as_deref()) {
                continue;
            }
            let Ok(port_number) = u16::try_from(port.port) else {
                continue;
            };
            let port_name = port.name.clone().unwrap_or_default();
            table.insert(
                SocketAddrV4::new(cluster_ip, port_number),
                ServiceRoute {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    endpoints: ready_endpoints(&service_slices, &port_name),
                    port_name,
                },
            );
        }
    }
    table
}

/// The Service's IPv4 cluster IP, if it is one the proxy serves.
fn cluster_ip(service: &Service) -> Option<Ipv4Addr> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    let ip: Ipv4Addr = spec.cluster_ip.as_deref()?.parse().ok()?;
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

fn is_tcp(protocol: Option<&str>) -> bool {
    protocol.is_none_or(|protocol| protocol.eq_ignore_ascii_case("TCP"))
}

fn belongs_to(slice: &EndpointSlice, namespace: &str, service: &str) -> bool {
    slice.metadata.namespace.as_deref() == Some(namespace)
        && slice.address_type == "IPv4"
        && slice
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
            .is_some_and(|label| label == service)
}

/// Ready endpoints of the slices at the port named `port_name` (the EndpointSlice controller
/// has already resolved named and numeric target ports into these port numbers). An endpoint
/// without a `ready` condition counts as ready, as the EndpointSlice API says consumers
/// should; loopback and unspecified addresses are never endpoints.
fn ready_endpoints(slices: &[&EndpointSlice], port_name: &str) -> Vec<SocketAddrV4> {
    let mut endpoints = BTreeSet::new();
    for slice in slices {
        let Some(target_port) = slice.ports.iter().flatten().find_map(|port| {
            let same_name = port.name.as_deref().unwrap_or_default() == port_name;
            (same_name && is_tcp(port.protocol.as_deref()))
                .then(|| port.port.and_then(|number| u16::try_from(number).ok()))
                .flatten()
        }) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            if !k8s_labs_informers::is_ready(endpoint) {
                continue;
            }
            for address in &endpoint.addresses {
                let Ok(ip) = address.parse::<Ipv4Addr>() else {
                    continue;
                };
                if ip.is_loopback() || ip.is_unspecified() {
                    continue;
                }
                endpoints.insert(SocketAddrV4::new(ip, target_port));
            }
        }
    }
    endpoints.into_iter().collect()
}

#[cfg(test)]
mod tests;
