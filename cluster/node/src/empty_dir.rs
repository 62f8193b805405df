//! `emptyDir` volumes, as the kubelet's emptyDir plugin sets them up
//! (`pkg/volume/emptydir/empty_dir.go`): a directory of the pod's sandbox, on the node's disk
//! (bounded by its `sizeLimit` through the eviction check, see [`crate::eviction`]), or with
//! `medium: Memory` a tmpfs mounted there by the node, whose size is the kernel's bound.
//!
//! The tmpfs lives under the sandbox directory, so removing the sandbox unmounts it with
//! everything else there ([`crate::sandbox::remove_sandbox`]).

use std::path::Path;

use anyhow::{Context, Result, bail};
use k8s_labs_quantity::Quantity;
use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, Pod};
use nix::mount::{MsFlags, mount};

use crate::cgroups::ContainerLimits;

/// Where an emptyDir's files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// The node's disk (`medium: ""`, the default).
    Disk,
    /// A tmpfs (`medium: Memory`).
    Memory,
}

impl Medium {
    /// The medium a volume asks for. Huge pages are refused: this node has none to give.
    pub fn of(source: &EmptyDirVolumeSource) -> Result<Medium> {
        match source.medium.as_deref().unwrap_or_default() {
            "" => Ok(Medium::Disk),
            "Memory" => Ok(Medium::Memory),
            huge if huge.starts_with("HugePages") => {
                bail!("medium {huge} is not supported by this node")
            }
            other => bail!("unknown storage medium {other:?}"),
        }
    }
}

/// `sizeLimit` in bytes, when it is set and not zero.
pub fn size_limit(source: &EmptyDirVolumeSource) -> Option<u64> {
    source
        .size_limit
        .as_ref()
        .and_then(|limit| Quantity::parse(&limit.0))
        .filter(|limit| !limit.is_zero())
        .map(|limit| u64::try_from(limit.ceil()).unwrap_or(u64::MAX))
}

/// The pod's memory limit as its cgroup gets it (the kubelet's `ResourceConfigForPod`): the
/// sum of its containers' `limits.memory`, only when every container has one.
pub fn pod_memory_limit(pod: &Pod) -> Option<u64> {
    let containers = &pod.spec.as_ref()?.containers;
    if containers.is_empty() {
        return None;
    }
    containers.iter().try_fold(0u64, |sum, container| {
        let limit = ContainerLimits::of(container).memory_bytes?;
        Some(sum.saturating_add(limit))
    })
}

/// The size of a memory-backed emptyDir, as the kubelet's `calculateEmptyDirMemorySize`
/// works it out: the node's allocatable memory (here its total memory, which the Node
/// reports as allocatable), lowered to the pod's memory limit, lowered to the volume's
/// `sizeLimit`; each only when it is not larger than what it replaces. `None` when the
/// node's memory is unknown and neither limit is set: the kernel's default (half the RAM).
pub fn memory_size(
    pod: &Pod,
    source: &EmptyDirVolumeSource,
    node_memory: Option<u64>,
) -> Option<u64> {
    let lower = |size: Option<u64>, limit: Option<u64>| match (size, limit) {
        (Some(size), Some(limit)) if limit <= size => Some(limit),
        (None, limit) => limit,
        (size, _) => size,
    };
    let size = lower(node_memory, pod_memory_limit(pod));
    lower(size, size_limit(source))
}

/// Creates the emptyDir at `path` (a directory of the pod's sandbox); a memory-backed one
/// is a tmpfs of [`memory_size`] mounted there.
pub fn set_up(pod: &Pod, source: &EmptyDirVolumeSource, path: &Path) -> Result<()> {
    let medium = Medium::of(source)?;
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    if medium == Medium::Disk {
        return world_writable(path);
    }
    let size = memory_size(pod, source, crate::node_object::memory_total_bytes());
    let options = size.map(|bytes| format!("size={bytes}"));
    // nosuid and nodev as on the container's own tmpfs mounts: nothing in a scratch volume
    // needs either, and a pod's device nodes stay behind the device cgroup anyway.
    mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        options.as_deref(),
    )
    .with_context(|| format!("mounting a tmpfs at {}", path.display()))?;
    world_writable(path)
}

/// An emptyDir is writable by every user of the pod (mode 0777, as the kubelet's `setupDir`
/// leaves it), so that a container running as a non-root user can use it.
fn world_writable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
        .with_context(|| format!("making {} writable", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(limits: &[Option<&str>]) -> Pod {
        let containers: Vec<_> = limits
            .iter()
            .enumerate()
            .map(|(index, limit)| {
                let resources =
                    limit.map_or_else(|| json!({}), |memory| json!({"limits": {"memory": memory}}));
                json!({"name": format!("c{index}"), "resources": resources})
            })
            .collect();
        serde_json::from_value(json!({"spec": {"containers": containers}})).unwrap()
    }

    fn source(medium: &str, size_limit: Option<&str>) -> EmptyDirVolumeSource {
        serde_json::from_value(json!({"medium": medium, "sizeLimit": size_limit})).unwrap()
    }

    const GI: u64 = 1 << 30;
    const MI: u64 = 1 << 20;

    #[test]
    fn memory_size_is_the_kubelets() {
        let node = Some(16 * GI);
        let memory = source("Memory", None);
        // Nothing set: the node's memory.
        assert_eq!(memory_size(&pod(&[None]), &memory, node), node);
        // Every container limited: their sum.
        let limited = pod(&[Some("64Mi"), Some("32Mi")]);
        assert_eq!(memory_size(&limited, &memory, node), Some(96 * MI));
        // One container without a limit: the pod has none.
        let partly = pod(&[Some("64Mi"), None]);
        assert_eq!(memory_size(&partly, &memory, node), node);
        // sizeLimit below the pod's limit wins, above it does not.
        let small = source("Memory", Some("8Mi"));
        assert_eq!(memory_size(&limited, &small, node), Some(8 * MI));
        let large = source("Memory", Some("1Gi"));
        assert_eq!(memory_size(&limited, &large, node), Some(96 * MI));
        // Limits above the node's memory are ignored; sizeLimit 0 is no limit.
        let huge = source("Memory", Some("64Gi"));
        assert_eq!(memory_size(&pod(&[Some("32Gi")]), &huge, node), node);
        let zero = source("Memory", Some("0"));
        assert_eq!(memory_size(&pod(&[None]), &zero, node), node);
        // The node's memory unknown: whatever limit there is, else the kernel's default.
        assert_eq!(memory_size(&pod(&[None]), &small, None), Some(8 * MI));
        assert_eq!(memory_size(&pod(&[None]), &memory, None), None);
    }

    #[test]
    fn media() {
        assert_eq!(Medium::of(&source("", None)).unwrap(), Medium::Disk);
        assert_eq!(
            Medium::of(&EmptyDirVolumeSource::default()).unwrap(),
            Medium::Disk
        );
        assert_eq!(Medium::of(&source("Memory", None)).unwrap(), Medium::Memory);
        let huge = Medium::of(&source("HugePages-2Mi", None)).unwrap_err();
        assert_eq!(
            huge.to_string(),
            "medium HugePages-2Mi is not supported by this node"
        );
        assert!(Medium::of(&source("Tape", None)).is_err());
    }
}
