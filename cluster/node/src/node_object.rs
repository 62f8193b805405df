//! The Node object the agent registers for itself, filled with what this machine really is
//! (kernel, OS image, runc version, CPUs, memory), as the kubelet fills it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

/// What goes into the Node object.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub node_name: String,
    pub internal_ip: Ipv4Addr,
    pub kubelet_version: String,
    pub pod_cidr: String,
}

/// Creates the Node, or updates it when it exists (a restarted agent), then writes its status.
pub async fn register_node(client: &Client, facts: &NodeFacts) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let node = node_object(facts);
    match api.get_opt(&facts.node_name).await? {
        None => {
            api.create(&PostParams::default(), &node)
                .await
                .with_context(|| format!("creating node {}", facts.node_name))?;
        }
        Some(existing) => {
            let mut updated = node.clone();
            updated.metadata.resource_version = existing.metadata.resource_version;
            updated.metadata.uid = existing.metadata.uid;
            api.replace(&facts.node_name, &PostParams::default(), &updated)
                .await
                .with_context(|| format!("updating node {}", facts.node_name))?;
        }
    }
    let status = serde_json::json!({ "status": node.status });
    api.patch_status(
        &facts.node_name,
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .with_context(|| format!("writing the status of node {}", facts.node_name))?;
    Ok(())
}

fn node_object(facts: &NodeFacts) -> Node {
    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu_count().to_string())),
        ("memory".to_string(), Quantity(memory_quantity())),
        ("pods".to_string(), Quantity("110".to_string())),
    ]);
    Node {
        metadata: ObjectMeta {
            name: Some(facts.node_name.clone()),
            labels: Some(node_labels(facts)),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(facts.pod_cidr.clone()),
            pod_cidrs: Some(vec![facts.pod_cidr.clone()]),
            ..NodeSpec::default()
        }),
        status: Some(NodeStatus {
            conditions: Some(healthy_conditions(Time(jiff::Timestamp::now()))),
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".to_string(),
                    address: facts.internal_ip.to_string(),
                },
                NodeAddress {
                    type_: "Hostname".to_string(),
                    address: facts.node_name.clone(),
                },
            ]),
            capacity: Some(resources.clone()),
            allocatable: Some(resources),
            node_info: Some(system_info(facts)),
            ..NodeStatus::default()
        }),
    }
}

/// The labels a kubelet gives its node (and kind's control-plane role).
fn node_labels(facts: &NodeFacts) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "kubernetes.io/hostname".to_string(),
            facts.node_name.clone(),
        ),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), architecture().to_string()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        (
            "beta.kubernetes.io/arch".to_string(),
            architecture().to_string(),
        ),
        (
            "node-role.kubernetes.io/control-plane".to_string(),
            String::new(),
        ),
    ])
}

/// A healthy kubelet's four conditions, in its words.
fn healthy_conditions(now: Time) -> Vec<NodeCondition> {
    let condition = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    };
    vec![
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
}

/// `status.nodeInfo`: this machine's kernel, OS and ids, runc's and the kubelet's versions.
fn system_info(facts: &NodeFacts) -> NodeSystemInfo {
    NodeSystemInfo {
        architecture: architecture().to_string(),
        operating_system: "linux".to_string(),
        kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
        os_image: os_image(),
        container_runtime_version: runc_version(),
        kubelet_version: facts.kubelet_version.clone(),
        kube_proxy_version: String::new(),
        machine_id: read_trimmed("/etc/machine-id"),
        system_uuid: read_trimmed("/etc/machine-id"),
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        ..NodeSystemInfo::default()
    }
}

/// Kubernetes' name of this machine's architecture.
fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `MemTotal` of `/proc/meminfo` as a quantity (`4025436Ki`).
fn memory_quantity() -> String {
    memory_total_kib().map_or_else(|| "0".to_string(), |kib| format!("{kib}Ki"))
}

fn memory_total_kib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// The machine's memory in bytes, what the Node reports as its capacity and allocatable
/// memory; `None` if `/proc/meminfo` cannot be read.
pub(crate) fn memory_total_bytes() -> Option<u64> {
    memory_total_kib().map(|kib| kib.saturating_mul(1024))
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .unwrap_or_default()
}

/// `PRETTY_NAME` of `/etc/os-release` (`Debian GNU/Linux 12 (bookworm)`).
fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))
        .map(|value| value.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".to_string())
}

/// `runc://1.1.5+ds1`, from `runc --version` (what `kubectl get nodes -o wide` shows as the
/// container runtime).
pub fn runc_version() -> String {
    let output = std::process::Command::new("runc").arg("--version").output();
    let version = output
        .ok()
        .and_then(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .next()
                .and_then(|line| line.strip_prefix("runc version "))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".to_string());
    format!("runc://{version}")
}
