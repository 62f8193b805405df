//! Service ports, as kube-apiserver's `ValidateService` / `validateServicePort` check them:
//! a port number in 1–65535, a DNS-label name (required, and unique, when there are several
//! ports), a valid targetPort, and no two ports with the same protocol and number. The
//! cluster IP's immutability is in [`crate::services`], next to its allocation.

use serde_json::Value;

use super::field::{self, Cause, quote};
use super::names;

/// The problems of a Service's ports. Runs before the Service's defaults are filled in on
/// create (as validation runs after defaulting upstream), so an unset protocol is TCP here.
pub fn port_problems(object: &Value) -> Vec<Cause> {
    let null = Value::Null;
    let spec = object.get("spec").unwrap_or(&null);
    let ports: &[Value] = spec
        .get("ports")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let mut causes = Vec::new();
    let headless = field::str_of(spec, "clusterIP") == "None";
    if ports.is_empty() && !headless && field::str_of(spec, "type") != "ExternalName" {
        causes.push(field::required("spec.ports", ""));
    }
    let require_names = ports.len() > 1;
    let mut names_seen: Vec<&str> = Vec::new();
    for (index, port) in ports.iter().enumerate() {
        let at = format!("spec.ports[{index}]");
        let name = field::str_of(port, "name");
        if require_names && name.is_empty() {
            causes.push(field::required(format!("{at}.name"), ""));
        } else if !name.is_empty() {
            for problem in names::dns1123_label(name) {
                causes.push(field::invalid(format!("{at}.name"), &quote(name), &problem));
            }
            if names_seen.contains(&name) {
                causes.push(field::duplicate(format!("{at}.name"), &quote(name)));
            } else {
                names_seen.push(name);
            }
        }
        let number = field::int_of(port, "port");
        for problem in names::port_number(number) {
            causes.push(field::invalid(
                format!("{at}.port"),
                &number.to_string(),
                &problem,
            ));
        }
        let protocol = protocol(port);
        if !matches!(protocol, "TCP" | "UDP" | "SCTP") {
            causes.push(field::not_supported(
                format!("{at}.protocol"),
                &quote(protocol),
                &["SCTP", "TCP", "UDP"],
            ));
        }
        causes.extend(target_port_problems(port.get("targetPort"), &at));
    }
    causes.extend(duplicate_ports(ports));
    causes
}

fn protocol(port: &Value) -> &str {
    match field::str_of(port, "protocol") {
        "" => "TCP",
        other => other,
    }
}

/// `ValidatePortNumOrName`: a number in range, or an IANA service name.
fn target_port_problems(target: Option<&Value>, at: &str) -> Vec<Cause> {
    let path = format!("{at}.targetPort");
    match target {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or_default();
            names::port_number(n)
                .into_iter()
                .map(|problem| field::invalid(path.clone(), &n.to_string(), &problem))
                .collect()
        }
        Some(Value::String(name)) => names::port_name(name)
            .into_iter()
            .map(|problem| field::invalid(path.clone(), &quote(name), &problem))
            .collect(),
        _ => Vec::new(),
    }
}

/// Two ports with the same protocol and number; Go prints the `core.ServicePort` key of
/// only those two fields.
fn duplicate_ports(ports: &[Value]) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut seen: Vec<(&str, i64)> = Vec::new();
    for (index, port) in ports.iter().enumerate() {
        let key = (protocol(port), field::int_of(port, "port"));
        if seen.contains(&key) {
            let value = format!(
                "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                quote(key.0),
                key.1
            );
            causes.push(field::duplicate(format!("spec.ports[{index}]"), &value));
        } else {
            seen.push(key);
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(ports: Value) -> Value {
        json!({"metadata": {"name": "s"}, "spec": {"ports": ports}})
    }

    #[test]
    fn valid_ports_pass() {
        let ok = service(json!([{"name": "web", "port": 80, "targetPort": 8080},
            {"name": "metrics", "port": 9090, "targetPort": "metrics"}]));
        assert_eq!(port_problems(&ok), Vec::<Cause>::new());
        let headless = json!({"spec": {"clusterIP": "None"}});
        assert_eq!(port_problems(&headless), Vec::<Cause>::new());
    }

    #[test]
    fn ports_in_range_with_unique_label_names() {
        let bad = service(
            json!([{"name": "web", "port": 0}, {"name": "web", "port": 70000, "targetPort": "Web_Port"}]),
        );
        assert_eq!(
            port_problems(&bad),
            [
                ("spec.ports[0].port".to_string(), "Invalid value: 0: must be between 1 and 65535, inclusive".to_string()),
                ("spec.ports[1].name".to_string(), "Duplicate value: \"web\"".to_string()),
                ("spec.ports[1].port".to_string(), "Invalid value: 70000: must be between 1 and 65535, inclusive".to_string()),
                ("spec.ports[1].targetPort".to_string(), "Invalid value: \"Web_Port\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string()),
            ]
        );
        let unnamed = service(json!([{"port": 80}, {"name": "b", "port": 80}]));
        let causes = port_problems(&unnamed);
        assert_eq!(
            causes[0],
            (
                "spec.ports[0].name".to_string(),
                "Required value".to_string()
            )
        );
        assert_eq!(causes[1].0, "spec.ports[1]");
        assert!(
            causes[1]
                .1
                .starts_with("Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\"")
        );
        assert_eq!(
            port_problems(&json!({"spec": {}})),
            [("spec.ports".to_string(), "Required value".to_string())]
        );
    }
}
