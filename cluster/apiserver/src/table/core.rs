//! Printers of the core resources (and EndpointSlices), ported from kube-apiserver's
//! pkg/printers/internalversion/printers.go.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::Doc::{Field, Text};
use super::{
    AGE, Column, NAME, Printed, age, array, column, format_labels, int, list_with_more, name,
    since, text, text_or, wide,
};

pub(super) const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    column("Type", "string", Field("ServiceSpec.type")),
    column("Cluster-IP", "string", Field("ServiceSpec.clusterIP")),
    column("External-IP", "string", Field("ServiceSpec.externalIPs")),
    column("Port(s)", "string", Field("ServiceSpec.ports")),
    AGE,
    wide("Selector", "string", Field("ServiceSpec.selector")),
];

pub(super) fn print_service(service: &Value, now: Timestamp) -> Printed {
    let spec = &service["spec"];
    let service_type = text_or(spec, "/type", "ClusterIP");
    let cluster_ip = array(spec, "/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or_else(|| text_or(spec, "/clusterIP", "<none>"));
    let external_ips: Vec<&str> = array(spec, "/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external_ip = match service_type {
        "ClusterIP" | "NodePort" if external_ips.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external_ips.join(","),
        "LoadBalancer" => {
            let mut balancers: Vec<&str> = array(service, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| text_or(i, "/ip", text(i, "/hostname")))
                .filter(|s| !s.is_empty())
                .collect();
            balancers.sort_unstable();
            balancers.dedup();
            balancers.extend(external_ips);
            if balancers.is_empty() {
                "<pending>".to_string()
            } else {
                balancers.join(",")
            }
        }
        "ExternalName" => text(spec, "/externalName").to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = array(spec, "/ports")
        .iter()
        .map(|p| {
            let protocol = text_or(p, "/protocol", "TCP");
            match int(p, "/nodePort") {
                0 => format!("{}/{protocol}", int(p, "/port")),
                node_port => format!("{}:{node_port}/{protocol}", int(p, "/port")),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        name(service),
        json!(service_type),
        json!(cluster_ip),
        json!(external_ip),
        json!(ports),
        age(service, now),
        json!(format_labels(spec.get("selector"))),
    ]
    .into()
}

pub(super) const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    column("Endpoints", "string", Field("Endpoints.subsets")),
    AGE,
];

/// `formatEndpoints`: `ip:port` for every address and port, three at most.
pub(super) fn print_endpoints(endpoints: &Value, now: Timestamp) -> Printed {
    let subsets = array(endpoints, "/subsets");
    let mut items = Vec::new();
    for subset in subsets {
        let addresses: Vec<&str> = array(subset, "/addresses")
            .iter()
            .map(|a| text(a, "/ip"))
            .collect();
        let ports = array(subset, "/ports");
        if ports.is_empty() {
            items.extend(addresses.iter().map(|ip| ip.to_string()));
        }
        for port in ports {
            for ip in &addresses {
                let port = int(port, "/port");
                items.push(if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                });
            }
        }
    }
    let cell = if subsets.is_empty() {
        "<none>".to_string()
    } else {
        list_with_more(&items, "")
    };
    vec![name(endpoints), json!(cell), age(endpoints, now)].into()
}

pub(super) const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    column("AddressType", "string", Field("EndpointSlice.addressType")),
    column("Ports", "string", Field("EndpointSlice.ports")),
    column("Endpoints", "string", Field("EndpointSlice.endpoints")),
    AGE,
];

pub(super) fn print_endpoint_slice(slice: &Value, now: Timestamp) -> Printed {
    let ports: Vec<String> = array(slice, "/ports")
        .iter()
        .map(
            |p| match (p.get("port").and_then(Value::as_i64), p.get("name")) {
                (Some(port), _) => port.to_string(),
                (None, Some(Value::String(name))) => name.clone(),
                _ => "*".to_string(),
            },
        )
        .collect();
    let addresses: Vec<String> = array(slice, "/endpoints")
        .iter()
        .flat_map(|e| {
            array(e, "/addresses")
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
        })
        .collect();
    vec![
        name(slice),
        json!(text(slice, "/addressType")),
        json!(list_with_more(&ports, "<unset>")),
        json!(list_with_more(&addresses, "<unset>")),
        age(slice, now),
    ]
    .into()
}

pub(super) const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    column("Status", "string", Text("The status of the namespace")),
    AGE,
];

pub(super) fn print_namespace(namespace: &Value, now: Timestamp) -> Printed {
    vec![
        name(namespace),
        json!(text(namespace, "/status/phase")),
        age(namespace, now),
    ]
    .into()
}

pub(super) const NODE_COLUMNS: &[Column] = &[
    NAME,
    column("Status", "string", Text("The status of the node")),
    column("Roles", "string", Text("The roles of the node")),
    AGE,
    column("Version", "string", Field("NodeSystemInfo.kubeletVersion")),
    wide("Internal-IP", "string", Field("NodeStatus.addresses")),
    wide("External-IP", "string", Field("NodeStatus.addresses")),
    wide("OS-Image", "string", Field("NodeSystemInfo.osImage")),
    wide(
        "Kernel-Version",
        "string",
        Field("NodeSystemInfo.kernelVersion"),
    ),
    wide(
        "Container-Runtime",
        "string",
        Field("NodeSystemInfo.containerRuntimeVersion"),
    ),
];

pub(super) fn print_node(node: &Value, now: Timestamp) -> Printed {
    let mut status: Vec<&str> = array(node, "/status/conditions")
        .iter()
        .filter(|c| text(c, "/type") == "Ready")
        .take(1)
        .map(|c| {
            if text(c, "/status") == "True" {
                "Ready"
            } else {
                "NotReady"
            }
        })
        .collect();
    if status.is_empty() {
        status.push("Unknown");
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<&str> = node["metadata"]["labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .filter_map(
                    |(key, value)| match key.strip_prefix("node-role.kubernetes.io/") {
                        Some(role) if !role.is_empty() => Some(role),
                        Some(_) => None,
                        None if key == "kubernetes.io/role" => {
                            value.as_str().filter(|v| !v.is_empty())
                        }
                        None => None,
                    },
                )
                .collect()
        })
        .unwrap_or_default();
    roles.sort_unstable();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |kind: &str| {
        array(node, "/status/addresses")
            .iter()
            .find(|a| text(a, "/type") == kind)
            .map(|a| text(a, "/address"))
            .unwrap_or("<none>")
    };
    let info = &node["status"]["nodeInfo"];
    vec![
        name(node),
        json!(status.join(",")),
        json!(roles),
        age(node, now),
        json!(text(info, "/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(text_or(info, "/osImage", "<unknown>")),
        json!(text_or(info, "/kernelVersion", "<unknown>")),
        json!(text_or(info, "/containerRuntimeVersion", "<unknown>")),
    ]
    .into()
}

pub(super) const EVENT_COLUMNS: &[Column] = &[
    column("Last Seen", "string", Field("Event.lastTimestamp")),
    column("Type", "string", Field("Event.type")),
    column("Reason", "string", Field("Event.reason")),
    column("Object", "string", Field("Event.involvedObject")),
    wide("Subobject", "string", Field("ObjectReference.fieldPath")),
    wide("Source", "string", Field("Event.source")),
    column("Message", "string", Field("Event.message")),
    wide("First Seen", "string", Field("Event.firstTimestamp")),
    wide("Count", "string", Field("Event.count")),
    Column {
        priority: 1,
        ..NAME
    },
];

pub(super) fn print_event(event: &Value, now: Timestamp) -> Printed {
    let set = |pointer: &str| event.pointer(pointer).is_some_and(|v| !v.is_null());
    let first_seen = if set("/firstTimestamp") {
        since(event, "/firstTimestamp", now)
    } else {
        since(event, "/eventTime", now)
    };
    let mut last_seen = if set("/lastTimestamp") {
        since(event, "/lastTimestamp", now)
    } else {
        first_seen.clone()
    };
    let mut count = int(event, "/count");
    if set("/series") {
        last_seen = since(event, "/series/lastObservedTime", now);
        count = int(event, "/series/count");
    } else if count == 0 {
        count = 1;
    }
    let object = &event["involvedObject"];
    let kind = text(object, "/kind").to_lowercase();
    let target = match text(object, "/name") {
        "" => kind,
        object_name => format!("{kind}/{object_name}"),
    };
    let component = text_or(
        event,
        "/source/component",
        text(event, "/reportingComponent"),
    );
    let instance = text_or(event, "/source/host", text(event, "/reportingInstance"));
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last_seen),
        json!(text(event, "/type")),
        json!(text(event, "/reason")),
        json!(target),
        json!(text(object, "/fieldPath")),
        json!(source),
        json!(text(event, "/message").trim()),
        json!(first_seen),
        json!(count),
        name(event),
    ]
    .into()
}

pub(super) const CONFIG_MAP_COLUMNS: &[Column] =
    &[NAME, column("Data", "string", Field("ConfigMap.data")), AGE];

pub(super) fn print_config_map(config_map: &Value, now: Timestamp) -> Printed {
    let entries = |key: &str| {
        config_map
            .get(key)
            .and_then(Value::as_object)
            .map_or(0, |m| m.len())
    };
    let count = entries("data") + entries("binaryData");
    vec![name(config_map), json!(count), age(config_map, now)].into()
}

pub(super) const SECRET_COLUMNS: &[Column] = &[
    NAME,
    column("Type", "string", Field("Secret.type")),
    column("Data", "string", Field("Secret.data")),
    AGE,
];

pub(super) fn print_secret(secret: &Value, now: Timestamp) -> Printed {
    let count = secret
        .get("data")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    vec![
        name(secret),
        json!(text(secret, "/type")),
        json!(count),
        age(secret, now),
    ]
    .into()
}

pub(super) const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    column("Secrets", "string", Field("ServiceAccount.secrets")),
    AGE,
];

pub(super) fn print_service_account(account: &Value, now: Timestamp) -> Printed {
    let count = array(account, "/secrets").len();
    vec![name(account), json!(count), age(account, now)].into()
}
