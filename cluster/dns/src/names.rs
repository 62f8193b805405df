//! What a query name means to the cluster DNS, before any object is looked at.
//!
//! The layout follows the Kubernetes DNS specification and CoreDNS's kubernetes plugin:
//! `<svc>.<ns>.svc.<zone>`, `<endpoint>.<svc>.<ns>.svc.<zone>`,
//! `_<port>._<proto>.<svc>.<ns>.svc.<zone>`, `<a-b-c-d>.<ns>.pod.<zone>` and reverse names
//! under `in-addr.arpa.` / `ip6.arpa.`. Parsing is kept apart from the lookup so that the
//! mapping from names to records can be read (and tested) on its own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

/// A query name, classified relative to the cluster zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueryName {
    /// A name inside the cluster zone; all labels are lower-case.
    InZone(ZoneName),
    /// A reverse-lookup name (`4.3.2.1.in-addr.arpa.`) for one complete address.
    Reverse(IpAddr),
    /// Anything else: names outside the cluster zone, partial reverse names.
    Outside,
}

/// A name inside the cluster zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ZoneName {
    /// The zone itself (`cluster.local.`): carries the SOA and NS records.
    Apex,
    /// `svc.<zone>` or `pod.<zone>`: exists (it has names below it) but holds no records.
    EmptyNonTerminal,
    /// `<ns>.svc.<zone>` or `<ns>.pod.<zone>`: exists when the namespace has Services.
    Namespace { namespace: String },
    /// `<svc>.<ns>.svc.<zone>`.
    Service { namespace: String, service: String },
    /// `<endpoint>.<svc>.<ns>.svc.<zone>`: an endpoint's hostname or its dashed IP.
    Endpoint {
        namespace: String,
        service: String,
        endpoint: String,
    },
    /// `_<port>._<proto>.<svc>.<ns>.svc.<zone>`: named port and protocol, without underscores.
    PortProtocol {
        namespace: String,
        service: String,
        port: String,
        protocol: String,
    },
    /// `<a-b-c-d>.<ns>.pod.<zone>`: answered from the name itself ("pods insecure").
    Pod { address: IpAddr },
    /// A name in the zone that has no meaning in the Kubernetes DNS schema.
    Unknown,
}

/// Classifies `name` (any case) relative to `zone` (e.g. `cluster.local.`).
pub(crate) fn classify(name: &Name, zone: &Name) -> QueryName {
    let name = name.to_lowercase();
    let zone = zone.to_lowercase();
    if zone.zone_of(&name) {
        let relative: Vec<String> = name
            .iter()
            .take(usize::from(name.num_labels() - zone.num_labels()))
            .map(|label| String::from_utf8_lossy(label).into_owned())
            .collect();
        return QueryName::InZone(classify_in_zone(relative));
    }
    match reverse_address(&name) {
        Some(address) => QueryName::Reverse(address),
        None => QueryName::Outside,
    }
}

/// `relative` are the labels left of the zone, leftmost first.
fn classify_in_zone(mut relative: Vec<String>) -> ZoneName {
    relative.reverse();
    let labels: Vec<&str> = relative.iter().map(String::as_str).collect();
    match labels.as_slice() {
        [] => ZoneName::Apex,
        ["svc"] | ["pod"] => ZoneName::EmptyNonTerminal,
        ["svc" | "pod", namespace] => ZoneName::Namespace {
            namespace: namespace.to_string(),
        },
        ["svc", namespace, service] => ZoneName::Service {
            namespace: namespace.to_string(),
            service: service.to_string(),
        },
        ["svc", namespace, service, endpoint] => ZoneName::Endpoint {
            namespace: namespace.to_string(),
            service: service.to_string(),
            endpoint: endpoint.to_string(),
        },
        ["svc", namespace, service, protocol, port] => {
            match (protocol.strip_prefix('_'), port.strip_prefix('_')) {
                (Some(protocol), Some(port)) => ZoneName::PortProtocol {
                    namespace: namespace.to_string(),
                    service: service.to_string(),
                    port: port.to_string(),
                    protocol: protocol.to_string(),
                },
                _ => ZoneName::Unknown,
            }
        }
        ["pod", _namespace, dashed] => match address_from_dashed(dashed) {
            Some(address) => ZoneName::Pod { address },
            None => ZoneName::Unknown,
        },
        _ => ZoneName::Unknown,
    }
}

/// `10-244-0-2` → 10.244.0.2; `fd00--1` → fd00::1 (the pod-record and endpoint-name form).
pub(crate) fn address_from_dashed(dashed: &str) -> Option<IpAddr> {
    if let Ok(v4) = dashed.replace('-', ".").parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    dashed
        .replace('-', ":")
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// 10.244.0.2 → `10-244-0-2`: the name CoreDNS gives an endpoint without a hostname.
pub(crate) fn dashed_address(address: &IpAddr) -> String {
    address.to_string().replace(['.', ':'], "-")
}

/// The address named by a complete reverse name (`2.0.244.10.in-addr.arpa.`).
fn reverse_address(name: &Name) -> Option<IpAddr> {
    let network = name.parse_arpa_name().ok()?;
    let full_length = if network.addr().is_ipv4() { 32 } else { 128 };
    (network.prefix_len() == full_length).then(|| network.addr())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Name {
        Name::from_ascii("cluster.local.").unwrap()
    }

    fn classify_str(name: &str) -> QueryName {
        classify(&Name::from_ascii(name).unwrap(), &zone())
    }

    #[test]
    fn service_and_endpoint_names_are_lower_cased() {
        assert_eq!(
            classify_str("Web-1.NGINX.Default.svc.Cluster.Local."),
            QueryName::InZone(ZoneName::Endpoint {
                namespace: "default".into(),
                service: "nginx".into(),
                endpoint: "web-1".into(),
            })
        );
        assert_eq!(
            classify_str("nginx.default.svc.cluster.local."),
            QueryName::InZone(ZoneName::Service {
                namespace: "default".into(),
                service: "nginx".into(),
            })
        );
    }

    #[test]
    fn srv_names_need_underscores() {
        assert_eq!(
            classify_str("_http._tcp.nginx.default.svc.cluster.local."),
            QueryName::InZone(ZoneName::PortProtocol {
                namespace: "default".into(),
                service: "nginx".into(),
                port: "http".into(),
                protocol: "tcp".into(),
            })
        );
        assert_eq!(
            classify_str("http.tcp.nginx.default.svc.cluster.local."),
            QueryName::InZone(ZoneName::Unknown)
        );
    }

    #[test]
    fn apex_and_structural_names() {
        assert_eq!(
            classify_str("cluster.local."),
            QueryName::InZone(ZoneName::Apex)
        );
        assert_eq!(
            classify_str("svc.cluster.local."),
            QueryName::InZone(ZoneName::EmptyNonTerminal)
        );
        assert_eq!(
            classify_str("default.svc.cluster.local."),
            QueryName::InZone(ZoneName::Namespace {
                namespace: "default".into()
            })
        );
        assert_eq!(
            classify_str("x.cluster.local."),
            QueryName::InZone(ZoneName::Unknown)
        );
    }

    #[test]
    fn pod_names_carry_their_address() {
        assert_eq!(
            classify_str("10-244-0-7.default.pod.cluster.local."),
            QueryName::InZone(ZoneName::Pod {
                address: "10.244.0.7".parse().unwrap()
            })
        );
        assert_eq!(
            classify_str("not-an-ip.default.pod.cluster.local."),
            QueryName::InZone(ZoneName::Unknown)
        );
    }

    #[test]
    fn bare_and_foreign_names_are_outside() {
        assert_eq!(classify_str("web-0.nginx."), QueryName::Outside);
        assert_eq!(classify_str("example.com."), QueryName::Outside);
        assert_eq!(classify_str("local."), QueryName::Outside);
        assert_eq!(classify_str("10.in-addr.arpa."), QueryName::Outside);
    }

    #[test]
    fn reverse_names_parse_to_addresses() {
        assert_eq!(
            classify_str("7.0.244.10.in-addr.arpa."),
            QueryName::Reverse("10.244.0.7".parse().unwrap())
        );
    }

    #[test]
    fn dashed_addresses_round_trip() {
        let v4: IpAddr = "10.244.0.2".parse().unwrap();
        assert_eq!(dashed_address(&v4), "10-244-0-2");
        assert_eq!(address_from_dashed("10-244-0-2"), Some(v4));
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(address_from_dashed(&dashed_address(&v6)), Some(v6));
    }
}
