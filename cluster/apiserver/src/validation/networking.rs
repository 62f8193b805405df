//! networking.k8s.io/v1 specs, as kube-apiserver's pkg/apis/networking/validation checks
//! them: an Ingress's rules, paths and backends, an IngressClass's controller, and a
//! NetworkPolicy's policy types, ports and peers.

use serde_json::Value;

use super::field::{self, Cause, quote, str_of};
use super::names;

/// Go's rendering of the nil rule list `field.Invalid` quotes when an Ingress has none.
const NO_RULES: &str = "[]networking.IngressRule(nil)";

/// The elements of the array at `key` of `object` (none when absent).
fn items<'a>(object: &'a Value, key: &str) -> &'a [Value] {
    object
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn present(object: &Value, key: &str) -> bool {
    object.get(key).is_some_and(|v| !v.is_null())
}

/// `ValidateIngressSpec`.
pub fn ingress_problems(object: &Value) -> Vec<Cause> {
    let null = Value::Null;
    let spec = object.get("spec").unwrap_or(&null);
    let mut causes = Vec::new();
    let rules = items(spec, "rules");
    if rules.is_empty() && !present(spec, "defaultBackend") {
        let detail = "either `defaultBackend` or `rules` must be specified";
        causes.push(field::invalid("spec", NO_RULES, detail));
    }
    if let Some(backend) = spec.get("defaultBackend").filter(|b| !b.is_null()) {
        causes.extend(backend_problems(backend, "spec.defaultBackend"));
    }
    for (index, rule) in rules.iter().enumerate() {
        causes.extend(rule_problems(rule, &format!("spec.rules[{index}]")));
    }
    if let Some(class) = spec.get("ingressClassName").and_then(Value::as_str) {
        for message in names::dns1123_subdomain(class) {
            causes.push(field::invalid(
                "spec.ingressClassName",
                &quote(class),
                &message,
            ));
        }
    }
    causes
}

/// `validateIngressRules` for one rule: a DNS name for host (a leading `*.` allowed), and
/// its HTTP paths.
fn rule_problems(rule: &Value, at: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let host = str_of(rule, "host");
    if !host.is_empty() {
        if host.parse::<std::net::IpAddr>().is_ok() {
            causes.push(field::invalid(
                format!("{at}.host"),
                &quote(host),
                "must be a DNS name, not an IP address",
            ));
        }
        let name = host.strip_prefix("*.").unwrap_or(host);
        for message in names::dns1123_subdomain(name) {
            causes.push(field::invalid(format!("{at}.host"), &quote(host), &message));
        }
    }
    let Some(http) = rule.get("http").filter(|h| !h.is_null()) else {
        return causes;
    };
    let paths = items(http, "paths");
    if paths.is_empty() {
        causes.push(field::required(format!("{at}.http.paths"), ""));
    }
    for (index, path) in paths.iter().enumerate() {
        causes.extend(path_problems(path, &format!("{at}.http.paths[{index}]")));
    }
    causes
}

/// `validateHTTPIngressPath`.
fn path_problems(path: &Value, at: &str) -> Vec<Cause> {
    let Some(path_type) = path.get("pathType").and_then(Value::as_str) else {
        return vec![field::required(
            format!("{at}.pathType"),
            "pathType must be specified",
        )];
    };
    let mut causes = Vec::new();
    let text = str_of(path, "path");
    let field_path = format!("{at}.path");
    let not_absolute = || field::invalid(&field_path, &quote(text), "must be an absolute path");
    match path_type {
        "Exact" | "Prefix" => {
            if !text.starts_with('/') {
                causes.push(not_absolute());
            }
            for bad in ["//", "/./", "/../", "%2f", "%2F"] {
                if text.contains(bad) {
                    let detail = format!("must not contain '{bad}'");
                    causes.push(field::invalid(&field_path, &quote(text), &detail));
                }
            }
            for bad in ["/..", "/."] {
                if text.ends_with(bad) {
                    let detail = format!("cannot end with '{bad}'");
                    causes.push(field::invalid(&field_path, &quote(text), &detail));
                }
            }
        }
        "ImplementationSpecific" => {
            if !text.is_empty() && !text.starts_with('/') {
                causes.push(not_absolute());
            }
        }
        other => causes.push(field::not_supported(
            format!("{at}.pathType"),
            &quote(other),
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    let null = Value::Null;
    let backend = path.get("backend").unwrap_or(&null);
    causes.extend(backend_problems(backend, &format!("{at}.backend")));
    causes
}

/// `validateIngressBackend`: a service (DNS-1035 name, a port name or number) or a resource.
fn backend_problems(backend: &Value, at: &str) -> Vec<Cause> {
    let service = backend.get("service").filter(|s| !s.is_null());
    let resource = present(backend, "resource");
    let Some(service) = service else {
        if resource {
            return Vec::new();
        }
        return vec![field::invalid(
            at,
            "\"\"",
            "resource or service backend is required",
        )];
    };
    if resource {
        let detail = "cannot set both resource and service backends";
        return vec![field::invalid(at, "\"\"", detail)];
    }
    let mut causes = Vec::new();
    let name = str_of(service, "name");
    if name.is_empty() {
        causes.push(field::required(format!("{at}.service.name"), ""));
    }
    if !name.is_empty() {
        for message in names::dns1035_label(name) {
            causes.push(field::invalid(
                format!("{at}.service.name"),
                &quote(name),
                &message,
            ));
        }
    }
    let null = Value::Null;
    let port = service.get("port").unwrap_or(&null);
    let (port_name, number) = (str_of(port, "name"), field::int_of(port, "number"));
    match (port_name.is_empty(), number == 0) {
        (false, false) => {
            let detail = "cannot set both port name & port number";
            causes.push(field::invalid(at, "\"\"", detail));
        }
        (false, true) => {
            for message in names::port_name(port_name) {
                let at = format!("{at}.service.port.name");
                causes.push(field::invalid(at, &quote(port_name), &message));
            }
        }
        (true, false) => {
            for message in names::port_number(number) {
                let at = format!("{at}.service.port.number");
                causes.push(field::invalid(at, &number.to_string(), &message));
            }
        }
        (true, true) => causes.push(field::required(at, "port name or number is required")),
    }
    causes
}

/// `validateIngressClassSpec`: the controller is a domain-prefixed path of at most 250 bytes.
pub fn ingress_class_problems(object: &Value) -> Vec<Cause> {
    let controller = object
        .pointer("/spec/controller")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let at = "spec.controller";
    if controller.len() > 250 {
        return vec![field::too_long(at, 250)];
    }
    if controller.is_empty() {
        return vec![field::required(at, "")];
    }
    let Some((host, _)) = controller.split_once('/') else {
        let detail = "must be a domain-prefixed path (such as \"acme.io/foo\")";
        return vec![field::invalid(at, &quote(controller), detail)];
    };
    names::dns1123_subdomain(host)
        .into_iter()
        .map(|message| field::invalid(at, &quote(host), &message))
        .collect()
}

/// `ValidateNetworkPolicySpec`: the policy types, and each rule's ports and peers.
pub fn network_policy_problems(object: &Value) -> Vec<Cause> {
    let null = Value::Null;
    let spec = object.get("spec").unwrap_or(&null);
    let mut causes = Vec::new();
    for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
        for (index, rule) in items(spec, direction).iter().enumerate() {
            let at = format!("spec.{direction}[{index}]");
            for (p, port) in items(rule, "ports").iter().enumerate() {
                causes.extend(port_problems(port, &format!("{at}.ports[{p}]")));
            }
            for (p, peer) in items(rule, peers).iter().enumerate() {
                causes.extend(peer_problems(peer, &format!("{at}.{peers}[{p}]")));
            }
        }
    }
    let types = items(spec, "policyTypes");
    for (index, kind) in types.iter().enumerate() {
        let kind = kind.as_str().unwrap_or_default();
        if !matches!(kind, "Ingress" | "Egress") {
            let at = format!("spec.policyTypes[{index}]");
            causes.push(field::not_supported(
                at,
                &quote(kind),
                &["Egress", "Ingress"],
            ));
        }
    }
    if types.len() > 2 {
        let listed: Vec<String> = types
            .iter()
            .map(|t| quote(t.as_str().unwrap_or_default()))
            .collect();
        let value = format!("&[]networking.PolicyType{{{}}}", listed.join(", "));
        let detail = "may not specify more than two policyTypes";
        causes.push(field::invalid("spec.policyTypes", &value, detail));
    }
    causes
}

/// `ValidateNetworkPolicyPort`: a known protocol and a valid number or name.
fn port_problems(port: &Value, at: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(protocol) = port.get("protocol").and_then(Value::as_str)
        && !matches!(protocol, "TCP" | "UDP" | "SCTP")
    {
        let at = format!("{at}.protocol");
        causes.push(field::not_supported(
            at,
            &quote(protocol),
            &["TCP", "UDP", "SCTP"],
        ));
    }
    match port.get("port") {
        Some(Value::Number(number)) => {
            let number = number.as_i64().unwrap_or_default();
            for message in names::port_number(number) {
                causes.push(field::invalid(
                    format!("{at}.port"),
                    &number.to_string(),
                    &message,
                ));
            }
        }
        Some(Value::String(name)) => {
            for message in names::port_name(name) {
                causes.push(field::invalid(format!("{at}.port"), &quote(name), &message));
            }
        }
        _ => {}
    }
    causes
}

/// `ValidateNetworkPolicyPeer`: at least one selector or an ipBlock, and an ipBlock alone.
fn peer_problems(peer: &Value, at: &str) -> Vec<Cause> {
    let selectors = ["podSelector", "namespaceSelector"]
        .iter()
        .filter(|key| present(peer, key))
        .count();
    match (selectors, present(peer, "ipBlock")) {
        (0, false) => vec![field::required(at, "must specify a peer")],
        (1.., true) => vec![field::forbidden(
            at,
            "may not specify both ipBlock and another peer",
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ingress(path: Value) -> Value {
        json!({ "spec": { "rules": [{ "host": "foo.com", "http": { "paths": [path] } }] } })
    }

    #[test]
    fn an_ingress_needs_rules_or_a_default_backend() {
        let causes = ingress_problems(&json!({ "spec": {} }));
        assert_eq!(
            causes,
            [(
                "spec".to_string(),
                "Invalid value: []networking.IngressRule(nil): either `defaultBackend` or \
                 `rules` must be specified"
                    .to_string()
            )]
        );
    }

    #[test]
    fn ingress_paths_need_a_type_an_absolute_path_and_a_backend_port() {
        let good = json!({ "path": "/bar", "pathType": "Exact",
            "backend": { "service": { "name": "svc1", "port": { "number": 8080 } } } });
        assert!(ingress_problems(&ingress(good)).is_empty());
        let untyped = json!({ "path": "/bar", "backend": { "service": { "name": "svc1" } } });
        assert_eq!(
            ingress_problems(&ingress(untyped))[0],
            (
                "spec.rules[0].http.paths[0].pathType".to_string(),
                "Required value: pathType must be specified".to_string()
            )
        );
        let relative = json!({ "path": "bar", "pathType": "Prefix",
            "backend": { "service": { "name": "svc1", "port": {} } } });
        let causes = ingress_problems(&ingress(relative));
        assert_eq!(
            causes,
            [
                (
                    "spec.rules[0].http.paths[0].path".to_string(),
                    "Invalid value: \"bar\": must be an absolute path".to_string()
                ),
                (
                    "spec.rules[0].http.paths[0].backend".to_string(),
                    "Required value: port name or number is required".to_string()
                ),
            ]
        );
    }

    #[test]
    fn an_ingress_class_names_its_controller_by_a_domain_prefixed_path() {
        let class = |controller: &str| json!({ "spec": { "controller": controller } });
        assert!(ingress_class_problems(&class("k8s.io/ingress-nginx")).is_empty());
        assert_eq!(ingress_class_problems(&class(""))[0].1, "Required value");
        assert!(
            ingress_class_problems(&class("nginx"))[0]
                .1
                .contains("domain-prefixed path")
        );
    }

    #[test]
    fn network_policies_check_types_protocols_and_peers() {
        let policy = json!({ "spec": {
            "policyTypes": ["Ingress", "Sideways"],
            "ingress": [{ "ports": [{ "protocol": "ICMP", "port": 80 }], "from": [{}] }],
        } });
        let fields: Vec<String> = network_policy_problems(&policy)
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.ingress[0].ports[0].protocol",
                "spec.ingress[0].from[0]",
                "spec.policyTypes[1]"
            ]
        );
    }
}
