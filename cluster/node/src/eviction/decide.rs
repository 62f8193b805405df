//! Whether a pod's measured usage breaks one of its limits, and the kubelet's message when it
//! does (`localStorageEviction` in `pkg/kubelet/eviction/eviction_manager.go`, formats from
//! `helpers.go`): emptyDirs first, then the pod's total, then each container, the first
//! breach wins. Usage must exceed a limit, not just reach it.

use std::collections::BTreeMap;

use super::limits::{PodLimit, StorageLimits};

/// What a pod uses of the node's disk, in bytes, as the kubelet's stats count it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodUsage {
    /// Each disk-backed emptyDir, by volume name.
    pub volumes: BTreeMap<String, u64>,
    /// Each container's writable layer and logs, by container name.
    pub containers: BTreeMap<String, u64>,
    /// The files the node writes for the pod (`/etc/hosts`, `/etc/resolv.conf`,
    /// `/etc/hostname`; the kubelet counts its `etc-hosts`).
    pub node_files: u64,
}

impl PodUsage {
    /// The pod's ephemeral storage: the kubelet's `calcEphemeralStorage`.
    pub fn total(&self) -> u64 {
        let volumes: u64 = self.volumes.values().sum();
        let containers: u64 = self.containers.values().sum();
        volumes + containers + self.node_files
    }
}

/// `emptyDirMessageFmt`.
pub fn empty_dir_message(volume: &str, limit: &str) -> String {
    format!("Usage of EmptyDir volume {volume:?} exceeds the limit {limit:?}. ")
}

/// `podEphemeralStorageMessageFmt`.
pub fn pod_message(limit: &str) -> String {
    format!("Pod ephemeral local storage usage exceeds the total limit of containers {limit}. ")
}

/// `containerEphemeralStorageMessageFmt`.
pub fn container_message(container: &str, limit: &str) -> String {
    format!("Container {container} exceeded its local ephemeral storage limit {limit:?}. ")
}

/// This node's own: a pod without any `ephemeral-storage` limit over the node's default
/// (no kubelet has one; the words follow the kubelet's).
pub fn default_message(limit: &str) -> String {
    format!(
        "Pod ephemeral local storage usage exceeds the node's default limit {limit} for pods \
         without an ephemeral-storage limit. "
    )
}

/// Why the pod must be evicted, if it must.
pub fn eviction_message(limits: &StorageLimits, usage: &PodUsage) -> Option<String> {
    let used = |map: &BTreeMap<String, u64>, name: &str| map.get(name).copied().unwrap_or(0);
    for (volume, limit) in &limits.empty_dirs {
        if let Some(limit) = limit
            && used(&usage.volumes, volume) > limit.bytes
        {
            return Some(empty_dir_message(volume, &limit.text));
        }
    }
    match &limits.pod {
        PodLimit::Containers(limit) if usage.total() > limit.bytes => {
            return Some(pod_message(&limit.text));
        }
        PodLimit::Default(limit) => {
            // An emptyDir with a sizeLimit is bounded by it (above), not by the default.
            let bounded: u64 = limits
                .empty_dirs
                .iter()
                .filter(|(_, limit)| limit.is_some())
                .map(|(volume, _)| used(&usage.volumes, volume))
                .sum();
            if usage.total().saturating_sub(bounded) > limit.bytes {
                return Some(default_message(&limit.text));
            }
        }
        PodLimit::Containers(_) => {}
    }
    for (container, limit) in &limits.containers {
        if let Some(limit) = limit
            && used(&usage.containers, container) > limit.bytes
        {
            return Some(container_message(container, &limit.text));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::limits::Limit;
    use super::*;

    const MI: u64 = 1 << 20;

    fn limits(
        empty_dirs: &[(&str, Option<u64>)],
        pod: PodLimit,
        containers: &[(&str, Option<u64>)],
    ) -> StorageLimits {
        let named = |items: &[(&str, Option<u64>)]| {
            items
                .iter()
                .map(|(name, bytes)| (name.to_string(), bytes.map(Limit::binary)))
                .collect()
        };
        StorageLimits {
            empty_dirs: named(empty_dirs),
            pod,
            containers: named(containers),
        }
    }

    fn usage(volumes: &[(&str, u64)], containers: &[(&str, u64)]) -> PodUsage {
        let named = |items: &[(&str, u64)]| {
            items
                .iter()
                .map(|(name, bytes)| (name.to_string(), *bytes))
                .collect()
        };
        PodUsage {
            volumes: named(volumes),
            containers: named(containers),
            node_files: 12 << 10,
        }
    }

    #[test]
    fn messages_are_the_kubelets() {
        assert_eq!(
            empty_dir_message("cache", "1Mi"),
            "Usage of EmptyDir volume \"cache\" exceeds the limit \"1Mi\". "
        );
        assert_eq!(
            pod_message("10Mi"),
            "Pod ephemeral local storage usage exceeds the total limit of containers 10Mi. "
        );
        assert_eq!(
            container_message("c", "10Mi"),
            "Container c exceeded its local ephemeral storage limit \"10Mi\". "
        );
    }

    #[test]
    fn an_empty_dir_over_its_size_limit_comes_first() {
        let pod = PodLimit::Containers(Limit::binary(2 * MI));
        let limits = limits(&[("cache", Some(MI))], pod, &[("c", Some(2 * MI))]);
        let over_all = usage(&[("cache", 4 * MI)], &[("c", 4 * MI)]);
        assert_eq!(
            eviction_message(&limits, &over_all),
            Some(empty_dir_message("cache", "1Mi"))
        );
        // Reaching a limit is not exceeding it.
        let at_limit = usage(&[("cache", MI)], &[("c", 0)]);
        assert_eq!(eviction_message(&limits, &at_limit), None);
    }

    #[test]
    fn the_pods_total_comes_before_its_containers() {
        let pod = PodLimit::Containers(Limit::binary(12 * MI));
        let limits = limits(&[("plain", None)], pod, &[("a", Some(2 * MI)), ("b", None)]);
        // a is over its own limit, but the total (a, b, the volume, /etc/hosts) is first.
        let total = usage(&[("plain", 8 * MI)], &[("a", 3 * MI), ("b", 2 * MI)]);
        assert_eq!(eviction_message(&limits, &total), Some(pod_message("12Mi")));
        let one = usage(&[("plain", 0)], &[("a", 3 * MI), ("b", 0)]);
        assert_eq!(
            eviction_message(&limits, &one),
            Some(container_message("a", "2Mi"))
        );
        let within = usage(&[("plain", MI)], &[("a", MI), ("b", 5 * MI)]);
        assert_eq!(eviction_message(&limits, &within), None);
    }

    #[test]
    fn the_default_leaves_out_empty_dirs_with_a_size_limit() {
        let pod = PodLimit::Default(Limit::binary(10 * MI));
        let limits = limits(
            &[("big", Some(100 * MI)), ("plain", None)],
            pod,
            &[("c", None)],
        );
        let in_bounded_volume = usage(&[("big", 50 * MI), ("plain", 0)], &[("c", MI)]);
        assert_eq!(eviction_message(&limits, &in_bounded_volume), None);
        let spread = usage(&[("big", 0), ("plain", 6 * MI)], &[("c", 5 * MI)]);
        assert_eq!(
            eviction_message(&limits, &spread),
            Some(default_message("10Mi"))
        );
    }
}
