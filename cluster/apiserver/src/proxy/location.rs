//! Where a proxy request goes: a pod's IP and port, read from the stored pod
//! (`pod.ResourceLocation`) or from a ready address of the Service's Endpoints
//! (`service.ResourceLocation`), with kube-apiserver's error texts.

use std::net::{Ipv4Addr, SocketAddrV4};

use serde_json::Value;

use crate::errors::ApiError;

/// The target of one proxy request: the pod's node and the address to dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub node_name: String,
    pub address: SocketAddrV4,
}

/// `name`, `name:port` or `scheme:name:port` (`utilnet.SplitSchemeNamePort`): the scheme, the
/// name and the port ("" when not given); `None` for any other shape.
pub fn split_scheme_name_port(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    (!name.is_empty() && matches!(scheme, "" | "http" | "https")).then_some((scheme, name, port))
}

/// The pod's address for `port` ("" is the first declared container port, else 80).
pub fn pod_backend(pod: &Value, port: &str) -> Result<Backend, ApiError> {
    let declared = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|c| c["ports"][0]["containerPort"].as_u64());
    let ip = pod["status"]["podIPs"][0]["ip"]
        .as_str()
        .or_else(|| pod["status"]["podIP"].as_str())
        .unwrap_or_default();
    let ip = proxyable(ip)?;
    let port = match (port, declared) {
        ("", Some(declared)) => {
            u16::try_from(declared).map_err(|_| unknown_port(&declared.to_string()))
        }
        ("", None) => Ok(80),
        (port, _) => port.parse().map_err(|_| unknown_port(port)),
    }?;
    Ok(Backend {
        node_name: pod["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        address: SocketAddrV4::new(ip, port),
    })
}

/// A ready address of the Service's Endpoints that serves `port` (a port name, a port number
/// of the Service, or "" for its unnamed port) and whose pod still has that IP; the subsets
/// and addresses are tried from a random start, as upstream does. `pod_of` reads a pod by
/// name in the Service's namespace.
pub fn service_backend(
    service: &Value,
    endpoints: &Value,
    id: &str,
    port: &str,
    pod_of: impl Fn(&str) -> Option<Value>,
) -> Result<Backend, ApiError> {
    let name = service["metadata"]["name"].as_str().unwrap_or_default();
    let port_name = match port.parse::<i64>() {
        Ok(number) => service["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["port"].as_i64() == Some(number))
            .map(|p| p["name"].as_str().unwrap_or_default().to_string())
            .ok_or_else(|| {
                ApiError::service_unavailable(format!(
                    "no service port {number} found for service \"{name}\""
                ))
            })?,
        Err(_) => port.to_string(),
    };
    let subsets = endpoints["subsets"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if subsets.is_empty() {
        return Err(ApiError::service_unavailable(format!(
            "no endpoints available for service \"{name}\""
        )));
    }
    let start = rand::random_range(0..subsets.len());
    for subset in subsets.iter().cycle().skip(start).take(subsets.len()) {
        let addresses = subset["addresses"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        let Some(port) = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str().unwrap_or_default() == port_name)
            .and_then(|p| p["port"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        if addresses.is_empty() {
            continue;
        }
        let first = rand::random_range(0..addresses.len());
        for address in addresses.iter().cycle().skip(first).take(addresses.len()) {
            if let Some(backend) = valid_address(address, port, &pod_of) {
                return Ok(backend);
            }
        }
    }
    Err(ApiError::service_unavailable(format!(
        "no endpoints available for service \"{id}\""
    )))
}

/// The address as a backend when its target pod exists and has that IP (`isValidAddress`).
fn valid_address(
    address: &Value,
    port: u16,
    pod_of: &impl Fn(&str) -> Option<Value>,
) -> Option<Backend> {
    let target = &address["targetRef"];
    if target["kind"].as_str() != Some("Pod") {
        return None;
    }
    let pod = pod_of(target["name"].as_str()?)?;
    let ip_text = address["ip"].as_str()?;
    let ip: Ipv4Addr = ip_text.parse().ok()?;
    let has_ip = pod["status"]["podIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| p["ip"].as_str() == Some(ip_text));
    has_ip.then(|| Backend {
        node_name: pod["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        address: SocketAddrV4::new(ip, port),
    })
}

/// The IP when the proxy may dial it (`proxyutil.IsProxyableIP`: a global unicast address).
fn proxyable(ip: &str) -> Result<Ipv4Addr, ApiError> {
    ip.parse::<Ipv4Addr>()
        .ok()
        .filter(|ip| !(ip.is_loopback() || ip.is_link_local() || ip.is_unspecified()))
        .filter(|ip| !(ip.is_broadcast() || ip.is_multicast()))
        .ok_or_else(|| ApiError::bad_request("address not allowed"))
}

/// A port that is no number (Go's dialer looks it up as a service name; this server knows
/// none) or out of range: refused before any connection, in Go's words.
fn unknown_port(port: &str) -> ApiError {
    ApiError::service_unavailable(format!(
        "error trying to reach service: dial tcp: lookup tcp/{port}: unknown port"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ip: Option<&str>, ports: &[u16]) -> Value {
        let ports: Vec<Value> = ports.iter().map(|p| json!({"containerPort": p})).collect();
        let mut pod = json!({
            "metadata": {"name": "web-0"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "ports": ports}]},
            "status": {},
        });
        if let Some(ip) = ip {
            pod["status"]["podIP"] = json!(ip);
            pod["status"]["podIPs"] = json!([{"ip": ip}]);
        }
        pod
    }

    #[test]
    fn ids_split_as_upstream_splits_them() {
        assert_eq!(split_scheme_name_port("web"), Some(("", "web", "")));
        assert_eq!(split_scheme_name_port("web:80"), Some(("", "web", "80")));
        assert_eq!(
            split_scheme_name_port("https:web:443"),
            Some(("https", "web", "443"))
        );
        assert_eq!(split_scheme_name_port("ftp:web:21"), None);
        assert_eq!(split_scheme_name_port(":80"), None);
        assert_eq!(split_scheme_name_port("a:b:c:d"), None);
    }

    #[test]
    fn a_pod_is_reached_on_the_port_asked_or_its_first_declared_one_or_80() {
        let addr = |pod: &Value, port| pod_backend(pod, port).unwrap().address.to_string();
        assert_eq!(
            addr(&pod(Some("10.244.0.5"), &[8080, 9090]), ""),
            "10.244.0.5:8080"
        );
        assert_eq!(
            addr(&pod(Some("10.244.0.5"), &[8080]), "81"),
            "10.244.0.5:81"
        );
        assert_eq!(addr(&pod(Some("10.244.0.5"), &[]), ""), "10.244.0.5:80");
        assert_eq!(
            pod_backend(&pod(Some("10.244.0.5"), &[]), "")
                .unwrap()
                .node_name,
            "node-1"
        );
        let error = pod_backend(&pod(Some("10.244.0.5"), &[80]), "abc").unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (
                503,
                "error trying to reach service: dial tcp: lookup tcp/abc: unknown port"
            )
        );
    }

    #[test]
    fn a_pod_without_a_proxyable_ip_is_refused_as_upstream_refuses_it() {
        for ip in [
            None,
            Some("127.0.0.1"),
            Some("169.254.1.1"),
            Some("0.0.0.0"),
        ] {
            let error = pod_backend(&pod(ip, &[80]), "").unwrap_err();
            assert_eq!(
                (error.code, error.message.as_str()),
                (400, "address not allowed")
            );
        }
    }

    fn service(ports: Value) -> Value {
        json!({"metadata": {"name": "nginx"}, "spec": {"ports": ports}})
    }

    fn endpoints(addresses: &[(&str, &str)], ports: Value) -> Value {
        let addresses: Vec<Value> = addresses
            .iter()
            .map(|(ip, pod)| json!({"ip": ip, "targetRef": {"kind": "Pod", "name": pod}}))
            .collect();
        json!({"subsets": [{"addresses": addresses, "ports": ports}]})
    }

    fn pods(name: &str) -> Option<Value> {
        match name {
            "web-0" => Some(pod(Some("10.244.0.2"), &[80])),
            "web-1" => Some(pod(Some("10.244.0.3"), &[80])),
            _ => None,
        }
    }

    #[test]
    fn a_service_port_number_or_name_picks_the_endpoint_port_of_that_name() {
        let svc = service(json!([{"name": "web", "port": 8080, "targetPort": 80}]));
        let eps = endpoints(
            &[("10.244.0.2", "web-0")],
            json!([{"name": "web", "port": 80}]),
        );
        for port in ["8080", "web"] {
            let backend = service_backend(&svc, &eps, "nginx", port, pods).unwrap();
            assert_eq!(backend.address.to_string(), "10.244.0.2:80");
        }
        let error = service_backend(&svc, &eps, "nginx:81", "81", pods).unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (503, "no service port 81 found for service \"nginx\"")
        );
    }

    #[test]
    fn only_addresses_whose_pod_still_has_the_ip_are_used() {
        let svc = service(json!([{"port": 80}]));
        let stale = endpoints(
            &[("10.244.0.9", "web-0"), ("10.244.0.7", "gone")],
            json!([{"port": 80}]),
        );
        let error = service_backend(&svc, &stale, "nginx", "", pods).unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (503, "no endpoints available for service \"nginx\"")
        );
        let good = endpoints(
            &[("10.244.0.9", "web-0"), ("10.244.0.3", "web-1")],
            json!([{"port": 80}]),
        );
        for _ in 0..20 {
            let backend = service_backend(&svc, &good, "nginx", "", pods).unwrap();
            assert_eq!(backend.address.to_string(), "10.244.0.3:80");
        }
    }

    #[test]
    fn a_service_without_endpoints_is_unavailable() {
        let svc = service(json!([{"port": 80}]));
        let error = service_backend(&svc, &json!({}), "nginx", "", pods).unwrap_err();
        assert_eq!(
            (error.code, error.reason, error.message.as_str()),
            (
                503,
                "ServiceUnavailable",
                "no endpoints available for service \"nginx\""
            )
        );
    }
}
