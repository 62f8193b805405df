//! Printers of Ingresses, IngressClasses and NetworkPolicies, ported from kube-apiserver's
//! printers.go.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::Doc::{Field, Text};
use super::{AGE, Column, NAME, Printed, age, array, column, format_label_selector, name, text};

pub(super) const INGRESS_COLUMNS: &[Column] = &[
    NAME,
    column(
        "Class",
        "string",
        Text(
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
    ),
    column(
        "Hosts",
        "string",
        Text("Hosts that incoming requests are matched against before the ingress rule"),
    ),
    column(
        "Address",
        "string",
        Text("Address is a list containing ingress points for the load-balancer"),
    ),
    column(
        "Ports",
        "string",
        Text("Ports of TLS configurations that open"),
    ),
    AGE,
];

/// `formatHosts`: the first three hosts, "+ N more..." for the other rules, "*" for none.
fn hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = text(rule, "/host");
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - MAX)
    } else {
        joined
    }
}

/// `ingressLoadBalancerStatusStringer` (wide, as the server prints): the IPs or hostnames,
/// sorted and unique.
fn addresses(ingress: &Value) -> String {
    let mut found: Vec<&str> = array(ingress, "/status/loadBalancer/ingress")
        .iter()
        .map(|point| match text(point, "/ip") {
            "" => text(point, "/hostname"),
            ip => ip,
        })
        .filter(|address| !address.is_empty())
        .collect();
    found.sort_unstable();
    found.dedup();
    found.join(",")
}

pub(super) fn print_ingress(ingress: &Value, now: Timestamp) -> Printed {
    let class = match ingress.pointer("/spec/ingressClassName") {
        Some(Value::String(class)) => class.as_str(),
        _ => "<none>",
    };
    // `formatPorts`: TLS opens 443 beside 80.
    let ports = if array(ingress, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(ingress),
        json!(class),
        json!(hosts(array(ingress, "/spec/rules"))),
        json!(addresses(ingress)),
        json!(ports),
        age(ingress, now),
    ]
    .into()
}

pub(super) const INGRESS_CLASS_COLUMNS: &[Column] = &[
    NAME,
    column(
        "Controller",
        "string",
        Text("Controller that is responsible for handling this class"),
    ),
    column(
        "Parameters",
        "string",
        Text("A reference to a resource with additional parameters"),
    ),
    AGE,
];

pub(super) fn print_ingress_class(class: &Value, now: Timestamp) -> Printed {
    let parameters = match class.pointer("/spec/parameters") {
        Some(reference) if reference.is_object() => {
            let mut kind = text(reference, "/kind").to_string();
            if let Some(Value::String(group)) = reference.get("apiGroup") {
                kind = format!("{kind}.{group}");
            }
            format!("{kind}/{}", text(reference, "/name"))
        }
        _ => "<none>".to_string(),
    };
    vec![
        name(class),
        json!(text(class, "/spec/controller")),
        json!(parameters),
        age(class, now),
    ]
    .into()
}

pub(super) const NETWORK_POLICY_COLUMNS: &[Column] = &[
    NAME,
    column(
        "Pod-Selector",
        "string",
        Field("NetworkPolicySpec.podSelector"),
    ),
    AGE,
];

pub(super) fn print_network_policy(policy: &Value, now: Timestamp) -> Printed {
    let selector = format_label_selector(policy.pointer("/spec/podSelector"));
    vec![name(policy), json!(selector), age(policy, now)].into()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::table_at;

    /// The cells of `object`'s row, a minute after it was created.
    fn row(resource: &str, mut object: Value) -> Value {
        let now = "2024-05-01T12:00:00Z".parse().unwrap();
        object["metadata"] = json!({ "name": "x", "creationTimestamp": "2024-05-01T11:59:00Z" });
        table_at(resource, &[object], "1", None, now)["rows"][0]["cells"].clone()
    }

    #[test]
    fn ingresses_show_three_hosts_the_addresses_sorted_and_the_tls_port() {
        let rules: Vec<Value> = ["a.io", "", "b.io", "c.io", "d.io"]
            .iter()
            .map(|host| json!({ "host": host }))
            .collect();
        let ingress = json!({
            "spec": { "ingressClassName": "nginx", "rules": rules, "tls": [{}] },
            "status": { "loadBalancer": { "ingress": [
                { "ip": "10.0.0.2" }, { "hostname": "lb.example.com" }, { "ip": "10.0.0.2" },
            ] } },
        });
        assert_eq!(
            row("ingresses", ingress),
            json!([
                "x",
                "nginx",
                "a.io,b.io,c.io + 2 more...",
                "10.0.0.2,lb.example.com",
                "80, 443",
                "60s"
            ])
        );
        let bare = json!({ "spec": { "defaultBackend": {} } });
        assert_eq!(
            row("ingresses", bare),
            json!(["x", "<none>", "*", "", "80", "60s"])
        );
    }

    #[test]
    fn ingress_classes_name_their_parameters_and_policies_their_selector() {
        let parameters = json!({ "kind": "IngressParameters", "apiGroup": "k8s.example.com",
            "name": "external-lb" });
        let class = json!({ "spec": { "controller": "example.com/ic", "parameters": parameters } });
        assert_eq!(
            row("ingressclasses", class),
            json!([
                "x",
                "example.com/ic",
                "IngressParameters.k8s.example.com/external-lb",
                "60s"
            ])
        );
        let all = json!({ "spec": { "podSelector": {} } });
        assert_eq!(row("networkpolicies", all), json!(["x", "<none>", "60s"]));
    }
}
