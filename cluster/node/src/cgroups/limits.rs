//! A container's `resources` as cgroup values, converted as the kubelet converts them
//! (`pkg/kubelet/cm/helpers_linux.go`): CPU requests become shares (v1) or a weight (v2), CPU
//! limits a CFS quota over a 100 ms period, memory limits a hard limit.

use k8s_labs_quantity::Quantity;
use k8s_openapi::api::core::v1::Container;

/// The CFS period the kubelet uses, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kernel accepts, in microseconds.
const MIN_QUOTA_US: u64 = 1_000;
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;
const SHARES_PER_CPU: u64 = 1024;

/// The cgroup limits of one container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerLimits {
    /// `limits.memory`, in bytes.
    pub memory_bytes: Option<u64>,
    /// `limits.cpu`, in millicores.
    pub cpu_limit_millis: Option<u64>,
    /// `requests.cpu`, in millicores.
    pub cpu_request_millis: Option<u64>,
}

impl ContainerLimits {
    /// The limits a container's `resources` ask for. Quantities the API server accepted but
    /// that make no sense as a limit (zero) set none, as the kubelet sets none.
    pub fn of(container: &Container) -> ContainerLimits {
        let resources = container.resources.as_ref();
        let quantity = |map: Option<&std::collections::BTreeMap<String, _>>, name: &str| {
            map.and_then(|m| m.get(name))
                .and_then(
                    |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| {
                        Quantity::parse(&q.0)
                    },
                )
                .filter(|q| !q.is_zero())
        };
        let limits = resources.and_then(|r| r.limits.as_ref());
        let requests = resources.and_then(|r| r.requests.as_ref());
        let clamp = |value: u128| u64::try_from(value).unwrap_or(u64::MAX);
        ContainerLimits {
            memory_bytes: quantity(limits, "memory").map(|q| clamp(q.ceil())),
            cpu_limit_millis: quantity(limits, "cpu").map(|q| clamp(q.milli_ceil())),
            cpu_request_millis: quantity(requests, "cpu").map(|q| clamp(q.milli_ceil())),
        }
    }

    /// `cpu.shares` (v1): 1024 per requested CPU, at least 2 (also without a request).
    pub fn cpu_shares(&self) -> u64 {
        let millis = self.cpu_request_millis.unwrap_or(0);
        (millis.saturating_mul(SHARES_PER_CPU) / 1000).clamp(MIN_SHARES, MAX_SHARES)
    }

    /// `cpu.weight` (v2), from the shares as runc and the kubelet map them.
    pub fn cpu_weight(&self) -> u64 {
        1 + ((self.cpu_shares() - MIN_SHARES) * 9999) / (MAX_SHARES - MIN_SHARES)
    }

    /// The CFS quota per [`CPU_PERIOD_US`], in microseconds, when the CPU is limited.
    pub fn cpu_quota_us(&self) -> Option<u64> {
        self.cpu_limit_millis
            .map(|millis| (millis.saturating_mul(CPU_PERIOD_US) / 1000).max(MIN_QUOTA_US))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> ContainerLimits {
        let to_map = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            k8s_openapi::apimachinery::pkg::api::resource::Quantity(v.to_string()),
                        )
                    })
                    .collect(),
            )
        };
        ContainerLimits::of(&Container {
            resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
                requests: to_map(requests),
                limits: to_map(limits),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn values_are_the_kubelets() {
        let limited = limits(&[("cpu", "250m")], &[("cpu", "500m"), ("memory", "64Mi")]);
        assert_eq!(limited.memory_bytes, Some(64 << 20));
        assert_eq!(limited.cpu_quota_us(), Some(50_000));
        assert_eq!(limited.cpu_shares(), 256);
        assert_eq!(limited.cpu_weight(), 10);
        let unlimited = limits(&[], &[]);
        assert_eq!(unlimited, ContainerLimits::default());
        assert_eq!(unlimited.cpu_shares(), 2);
        assert_eq!(unlimited.cpu_weight(), 1);
        assert_eq!(unlimited.cpu_quota_us(), None);
        // A tiny limit still gets the kernel's smallest quota.
        assert_eq!(limits(&[], &[("cpu", "1m")]).cpu_quota_us(), Some(1_000));
        assert_eq!(limits(&[("cpu", "2")], &[]).cpu_shares(), 2048);
    }
}
