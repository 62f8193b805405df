//! From a query (name, type) and a snapshot of the cluster to the records of the answer.
//!
//! The answers follow CoreDNS's kubernetes plugin so that programs in pods see what they
//! would see on a real cluster:
//! - `<svc>.<ns>.svc.<zone>`: A/AAAA of the cluster IPs; for a headless Service the ready
//!   endpoints' addresses; SRV for every port; CNAME for an ExternalName Service.
//! - `<endpoint>.<svc>.<ns>.svc.<zone>`: the endpoint whose hostname (or dashed IP) matches.
//! - `_<port>._<proto>.<svc>.<ns>.svc.<zone>`: SRV (headless: one per endpoint, target the
//!   endpoint's name) with the targets' addresses in the additional section.
//! - `<a-b-c-d>.<ns>.pod.<zone>`: the address itself (CoreDNS's default `pods insecure`).
//! - reverse names of cluster IPs and endpoint addresses: PTR to the Service / endpoint name.
//!
//! A name that exists but has no record of the asked type is NODATA; a name in the zone that
//! does not exist is NXDOMAIN. Names outside the zone are left to [`Resolution::NotOurs`].

use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::cluster_view::{
    ClusterView, NamedPort, ServiceAddressing, ServiceEndpoint, service_addressing, service_ports,
};
use crate::names::{QueryName, ZoneName, classify};

/// The outcome of a lookup, before it becomes a DNS message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Resolution {
    /// The name exists in a zone we serve. Empty `answers` means NODATA.
    Found {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    /// The name is in the cluster zone and does not exist.
    NxDomain,
    /// Not a name this server is authoritative for (there is no upstream to ask).
    NotOurs,
}

/// The fixed parameters of the zone.
#[derive(Debug, Clone)]
pub(crate) struct Zone {
    /// The cluster domain as an absolute name (`cluster.local.`).
    pub origin: Name,
    /// TTL of every record, CoreDNS's default is 5 seconds.
    pub ttl: u32,
    /// SOA serial; CoreDNS uses the time of the last change, we use the start time.
    pub serial: u32,
}

impl Zone {
    /// CoreDNS's SOA: `ns.dns.<zone>. hostmaster.<zone>. serial 7200 1800 86400 ttl`.
    pub fn soa(&self) -> Record {
        let soa = SOA::new(
            self.name_in_zone(&["ns", "dns"]),
            self.name_in_zone(&["hostmaster"]),
            self.serial,
            7200,
            1800,
            86400,
            self.ttl,
        );
        Record::from_rdata(self.origin.clone(), self.ttl, RData::SOA(soa))
    }

    /// `labels` (leftmost first) followed by the zone; falls back to the zone on a bad label.
    fn name_in_zone(&self, labels: &[&str]) -> Name {
        Name::from_labels(labels.iter().map(|label| label.as_bytes()))
            .and_then(|relative| relative.append_domain(&self.origin))
            .unwrap_or_else(|_| self.origin.clone())
    }

    fn record(&self, name: &Name, rdata: RData) -> Record {
        Record::from_rdata(name.clone(), self.ttl, rdata)
    }
}

/// All records (of every type) that exist at one name, or `None` when the name does not exist.
struct RecordsAtName {
    records: Vec<Record>,
    /// Addresses of SRV targets, for the additional section.
    additionals: Vec<Record>,
}

impl RecordsAtName {
    fn empty() -> Self {
        Self {
            records: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

/// Answers `query_name`/`query_type` from `view`.
pub(crate) fn resolve(
    query_name: &Name,
    query_type: RecordType,
    view: &ClusterView,
    zone: &Zone,
) -> Resolution {
    let at_name = match classify(query_name, &zone.origin) {
        QueryName::Outside => return Resolution::NotOurs,
        QueryName::Reverse(address) => {
            let records = reverse_records(query_name, &address, view, zone);
            if records.is_empty() {
                // CoreDNS falls through to its upstream for unknown addresses.
                return Resolution::NotOurs;
            }
            Some(RecordsAtName {
                records,
                additionals: Vec::new(),
            })
        }
        QueryName::InZone(zone_name) => records_in_zone(query_name, &zone_name, view, zone),
    };
    let Some(at_name) = at_name else {
        return Resolution::NxDomain;
    };
    let (answers, additionals) = select_by_type(at_name, query_type);
    Resolution::Found {
        answers,
        additionals,
    }
}

/// Keeps the records of the asked type; a CNAME answers every type, as in any DNS server.
fn select_by_type(at_name: RecordsAtName, query_type: RecordType) -> (Vec<Record>, Vec<Record>) {
    let cname: Vec<Record> = at_name
        .records
        .iter()
        .filter(|record| record.record_type() == RecordType::CNAME)
        .cloned()
        .collect();
    if !cname.is_empty() {
        return (cname, Vec::new());
    }
    let answers: Vec<Record> = at_name
        .records
        .into_iter()
        .filter(|record| query_type == RecordType::ANY || record.record_type() == query_type)
        .collect();
    let has_srv = answers
        .iter()
        .any(|record| record.record_type() == RecordType::SRV);
    let additionals = if has_srv {
        at_name.additionals
    } else {
        Vec::new()
    };
    (answers, additionals)
}

fn records_in_zone(
    query_name: &Name,
    zone_name: &ZoneName,
    view: &ClusterView,
    zone: &Zone,
) -> Option<RecordsAtName> {
    match zone_name {
        ZoneName::Apex => Some(RecordsAtName {
            records: vec![
                zone.soa(),
                zone.record(query_name, RData::NS(NS(zone.name_in_zone(&["ns", "dns"])))),
            ],
            additionals: Vec::new(),
        }),
        ZoneName::EmptyNonTerminal => Some(RecordsAtName::empty()),
        ZoneName::Namespace { namespace } => {
            view.namespace_exists(namespace).then(RecordsAtName::empty)
        }
        ZoneName::Service { namespace, service } => {
            service_records(query_name, namespace, service, None, view, zone)
        }
        ZoneName::PortProtocol {
            namespace,
            service,
            port,
            protocol,
        } => service_records(
            query_name,
            namespace,
            service,
            Some((port, protocol)),
            view,
            zone,
        ),
        ZoneName::Endpoint {
            namespace,
            service,
            endpoint,
        } => {
            let found = view.service(namespace, service)?;
            let records: Vec<Record> = view
                .ready_endpoints(found)
                .iter()
                .filter(|candidate| candidate.dns_label == *endpoint)
                .map(|candidate| address_record(query_name, candidate.address, zone))
                .collect();
            (!records.is_empty()).then_some(RecordsAtName {
                records,
                additionals: Vec::new(),
            })
        }
        ZoneName::Pod { address } => Some(RecordsAtName {
            records: vec![address_record(query_name, *address, zone)],
            additionals: Vec::new(),
        }),
        ZoneName::Unknown => None,
    }
}

/// Records of a Service name, or of one of its `_port._proto` names when `port_filter` is set.
fn service_records(
    query_name: &Name,
    namespace: &str,
    service_name: &str,
    port_filter: Option<(&String, &String)>,
    view: &ClusterView,
    zone: &Zone,
) -> Option<RecordsAtName> {
    let service = view.service(namespace, service_name)?;
    let query = ServiceQuery {
        name: query_name,
        namespace,
        service_name,
        port_filter,
        zone,
    };
    match service_addressing(service) {
        ServiceAddressing::ExternalName(target) => {
            if port_filter.is_some() {
                return None;
            }
            let target = Name::from_ascii(&target).ok()?;
            let mut at_name = RecordsAtName::empty();
            at_name
                .records
                .push(zone.record(query_name, RData::CNAME(CNAME(target))));
            Some(at_name)
        }
        ServiceAddressing::ClusterIps(addresses) => {
            let ports: Vec<NamedPort> = service_ports(service)
                .into_iter()
                .filter(|port| query.port_matches(port))
                .collect();
            query.cluster_ip_records(&ports, addresses)
        }
        ServiceAddressing::Headless => query.headless_records(&view.ready_endpoints(service)),
    }
}

/// A query for a Service's name or one of its `_port._proto` names.
struct ServiceQuery<'a> {
    name: &'a Name,
    namespace: &'a str,
    service_name: &'a str,
    port_filter: Option<(&'a String, &'a String)>,
    zone: &'a Zone,
}

impl ServiceQuery<'_> {
    /// Whether `port` answers the query's `_port._proto` (any port without one).
    fn port_matches(&self, port: &NamedPort) -> bool {
        match self.port_filter {
            None => true,
            Some((name, protocol)) => {
                (name == "*" || *name == port.name)
                    && (protocol == "*" || *protocol == port.protocol)
            }
        }
    }

    /// A Service with cluster IPs: an SRV per matching port (to the Service's own name), and
    /// the addresses.
    fn cluster_ip_records(
        &self,
        ports: &[NamedPort],
        addresses: Vec<IpAddr>,
    ) -> Option<RecordsAtName> {
        if self.port_filter.is_some() && ports.is_empty() {
            return None;
        }
        let zone = self.zone;
        let service_fqdn = zone.name_in_zone(&[self.service_name, self.namespace, "svc"]);
        let mut at_name = RecordsAtName::empty();
        let weight = srv_weight(ports.len());
        for port in ports {
            let srv = SRV::new(0, weight, port.port, service_fqdn.clone());
            at_name
                .records
                .push(zone.record(self.name, RData::SRV(srv)));
        }
        for address in addresses {
            at_name
                .records
                .push(address_record(self.name, address, zone));
            if !ports.is_empty() {
                at_name
                    .additionals
                    .push(address_record(&service_fqdn, address, zone));
            }
        }
        Some(at_name)
    }

    /// A headless Service: per ready endpoint an SRV per matching port (to the endpoint's
    /// own name) and its address.
    fn headless_records(&self, endpoints: &[ServiceEndpoint]) -> Option<RecordsAtName> {
        let zone = self.zone;
        let mut at_name = RecordsAtName::empty();
        let srv_count: usize = endpoints
            .iter()
            .map(|endpoint| {
                endpoint
                    .ports
                    .iter()
                    .filter(|p| self.port_matches(p))
                    .count()
            })
            .sum();
        let weight = srv_weight(srv_count);
        for endpoint in endpoints {
            let ports: Vec<&NamedPort> = endpoint
                .ports
                .iter()
                .filter(|p| self.port_matches(p))
                .collect();
            if self.port_filter.is_some() && ports.is_empty() {
                continue;
            }
            let target = zone.name_in_zone(&[
                &endpoint.dns_label,
                self.service_name,
                self.namespace,
                "svc",
            ]);
            for port in &ports {
                let srv = SRV::new(0, weight, port.port, target.clone());
                at_name
                    .records
                    .push(zone.record(self.name, RData::SRV(srv)));
            }
            at_name
                .records
                .push(address_record(self.name, endpoint.address, zone));
            if !ports.is_empty() {
                at_name
                    .additionals
                    .push(address_record(&target, endpoint.address, zone));
            }
        }
        if self.port_filter.is_some() && at_name.records.is_empty() {
            return None;
        }
        Some(at_name)
    }
}

/// CoreDNS spreads the weight of equal-priority SRV records evenly over 100.
fn srv_weight(records: usize) -> u16 {
    u16::try_from(100 / records.max(1)).unwrap_or(100).max(1)
}

fn address_record(name: &Name, address: IpAddr, zone: &Zone) -> Record {
    match address {
        IpAddr::V4(v4) => zone.record(name, RData::A(A(v4))),
        IpAddr::V6(v6) => zone.record(name, RData::AAAA(AAAA(v6))),
    }
}

/// PTR records for an address: the Service owning it as a cluster IP, else every endpoint
/// carrying it (named by hostname or dashed IP), as CoreDNS answers.
fn reverse_records(
    query_name: &Name,
    address: &IpAddr,
    view: &ClusterView,
    zone: &Zone,
) -> Vec<Record> {
    let mut services = Vec::new();
    let mut endpoints = Vec::new();
    for service in &view.services {
        let (Some(namespace), Some(name)) = (
            service.metadata.namespace.as_deref(),
            service.metadata.name.as_deref(),
        ) else {
            continue;
        };
        match service_addressing(service) {
            ServiceAddressing::ClusterIps(addresses) if addresses.contains(address) => {
                services.push(zone.name_in_zone(&[name, namespace, "svc"]));
            }
            _ => {}
        }
        for endpoint in view.ready_endpoints(service) {
            if endpoint.address == *address {
                endpoints.push(zone.name_in_zone(&[&endpoint.dns_label, name, namespace, "svc"]));
            }
        }
    }
    let targets = if services.is_empty() {
        endpoints
    } else {
        services
    };
    targets
        .into_iter()
        .map(|target| zone.record(query_name, RData::PTR(PTR(target))))
        .collect()
}

#[cfg(test)]
mod tests;
