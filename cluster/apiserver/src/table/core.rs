//! Printers of the core resources (and EndpointSlices), ported from kube-apiserver's
//! pkg/printers/internalversion/printers.go.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::Doc::{Field, Text};
use super::{
    AGE, Column, NAME, Printed, age, array, column, format_labels, int, list_with_more, name,
    since, text, text_or, wide,
};

pub(super) const POD_COLUMNS: &[Column] = &[
    NAME,
    column(
        "Ready",
        "string",
        Text("The aggregate readiness state of this pod for accepting traffic."),
    ),
    column(
        "Status",
        "string",
        Text("The aggregate status of the containers in this pod."),
    ),
    column(
        "Restarts",
        "string",
        Text(
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
    ),
    AGE,
    wide("IP", "string", Field("PodStatus.podIP")),
    wide("Node", "string", Field("PodSpec.nodeName")),
    wide(
        "Nominated Node",
        "string",
        Field("PodStatus.nominatedNodeName"),
    ),
    wide("Readiness Gates", "string", Field("PodSpec.readinessGates")),
];

/// `printPod`: READY counts ready running containers, STATUS is the phase refined by the
/// most telling container state (waiting reason, termination reason, init progress).
pub(super) fn print_pod(pod: &Value, now: Timestamp) -> Printed {
    let status = &pod["status"];
    let phase = text(status, "/phase");
    let mut reason = text_or(status, "/reason", phase).to_string();
    let conditions = array(status, "/conditions");
    if conditions
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }
    let init_specs = array(pod, "/spec/initContainers");
    let restartable = |name: &str| {
        init_specs
            .iter()
            .any(|c| text(c, "/name") == name && text(c, "/restartPolicy") == "Always")
    };
    let total = array(pod, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| text(c, "/restartPolicy") == "Always")
            .count();
    let mut ready = 0;
    let (mut restarts, mut sidecar_restarts) = (0, 0);
    let (mut last_restart, mut last_sidecar_restart): (Option<Timestamp>, Option<Timestamp>) =
        (None, None);
    let finished = |c: &Value| super::timestamp(c, "/lastState/terminated/finishedAt");

    let mut initializing = false;
    let init_statuses = array(status, "/initContainerStatuses");
    for (i, container) in init_statuses.iter().enumerate() {
        let container_name = text(container, "/name");
        restarts += int(container, "/restartCount");
        last_restart = last_restart.max(finished(container));
        if restartable(container_name) {
            sidecar_restarts += int(container, "/restartCount");
            last_sidecar_restart = last_sidecar_restart.max(finished(container));
        }
        let terminated = container.pointer("/state/terminated");
        let waiting_reason = text(container, "/state/waiting/reason");
        if terminated.is_some() && int(container, "/state/terminated/exitCode") == 0 {
            continue;
        }
        if restartable(container_name) && container["started"].as_bool() == Some(true) {
            if container["ready"].as_bool() == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(terminated) = terminated {
            match text(terminated, "/reason") {
                "" if int(terminated, "/signal") != 0 => {
                    format!("Init:Signal:{}", int(terminated, "/signal"))
                }
                "" => format!("Init:ExitCode:{}", int(terminated, "/exitCode")),
                why => format!("Init:{why}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .any(|c| text(c, "/type") == "Initialized" && text(c, "/status") == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for container in array(status, "/containerStatuses").iter().rev() {
            restarts += int(container, "/restartCount");
            last_restart = last_restart.max(finished(container));
            let waiting = text(container, "/state/waiting/reason");
            let terminated = container.pointer("/state/terminated");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(terminated) = terminated {
                reason = match text(terminated, "/reason") {
                    "" if int(terminated, "/signal") != 0 => {
                        format!("Signal:{}", int(terminated, "/signal"))
                    }
                    "" => format!("ExitCode:{}", int(terminated, "/exitCode")),
                    why => why.to_string(),
                };
            } else if container["ready"].as_bool() == Some(true)
                && container.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| text(c, "/type") == "Ready" && text(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    let deleting = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    if deleting && text(status, "/reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_text = match last_restart {
        Some(when) if restarts != 0 => {
            format!(
                "{restarts} ({} ago)",
                super::human_duration(now.duration_since(when))
            )
        }
        _ => restarts.to_string(),
    };

    let pod_ip = array(status, "/podIPs")
        .first()
        .map(|ip| text(ip, "/ip"))
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| text_or(status, "/podIP", "<none>"));
    let gates = array(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let passed = gates
            .iter()
            .filter(|gate| {
                let wanted = text(gate, "/conditionType");
                conditions
                    .iter()
                    .find(|c| text(c, "/type") == wanted)
                    .is_some_and(|c| text(c, "/status") == "True")
            })
            .count();
        format!("{passed}/{}", gates.len())
    };
    let completed = match phase {
        "Succeeded" => vec![
            json!({"type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."}),
        ],
        "Failed" => vec![
            json!({"type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."}),
        ],
        _ => Vec::new(),
    };
    Printed {
        cells: vec![
            name(pod),
            json!(format!("{ready}/{total}")),
            json!(reason),
            json!(restarts_text),
            age(pod, now),
            json!(pod_ip),
            json!(text_or(pod, "/spec/nodeName", "<none>")),
            json!(text_or(status, "/nominatedNodeName", "<none>")),
            json!(readiness_gates),
        ],
        conditions: completed,
    }
}

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
