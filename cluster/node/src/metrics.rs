//! The node's resource metrics, what the kubelet's `/metrics/resource` gives metrics-server:
//! every [`MetricsStore::period`] the node samples the cgroup of each running container and
//! its own cgroup tree, and keeps each one's two latest samples. A reading is the CPU rate
//! between those two (CPU time is a cumulative counter) and the memory working set of the
//! latest, over the window between them; until a container has two samples its pod has no
//! reading, as with metrics-server on a fresh pod. Nothing is measured when asked: the API
//! server answers `kubectl top` from the latest samples, as metrics-server answers from its
//! last two scrapes.
//!
//! The node's own reading is its cgroup tree (`k8s-labs-<instance>`, see
//! [`crate::cgroups`]): the sum of all its pods. On kind, a node's reading is its node
//! container's whole cgroup, which holds the kubelet, containerd and the control plane's
//! static pods besides the pods; here those are parts of the process that started the
//! cluster, whose own cgroup is shared with whatever else runs on the machine (on a cgroup v1
//! machine it is often the root), so it would not measure the cluster. The pods' tree is
//! what the node runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use k8s_labs_node_api::{ContainerUsage, NodeMetrics, NodeUsage, PodUsage, Usage};

use crate::cgroups::CgroupUsage;
use crate::containers::ContainerKey;

/// How often the node samples by default: metrics-server's default `--metric-resolution`
/// (15 s), so that `kubectl top` answers within two periods of a pod's start, as it does on
/// a kind cluster with metrics-server.
pub const DEFAULT_METRICS_PERIOD: Duration = Duration::from_secs(15);

/// One reading of a cgroup, with when it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// For the window: the monotonic clock.
    pub(crate) at: Instant,
    /// For the reading's `timestamp`.
    pub(crate) wall: SystemTime,
    pub(crate) usage: CgroupUsage,
}

/// A cgroup's two latest samples.
#[derive(Debug, Clone, Copy, Default)]
struct Samples {
    previous: Option<Sample>,
    latest: Option<Sample>,
}

/// What two samples say: the CPU rate between them, the latest working set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reading {
    timestamp: SystemTime,
    window: Duration,
    usage: Usage,
}

impl Samples {
    fn push(&mut self, sample: Sample) {
        self.previous = self.latest.replace(sample);
    }

    /// The reading between the two latest samples; None until there are two, or when the
    /// counter went back (the cgroup was made anew).
    fn reading(&self) -> Option<Reading> {
        let (previous, latest) = (self.previous?, self.latest?);
        let window = latest.at.checked_duration_since(previous.at)?;
        Some(Reading {
            timestamp: latest.wall,
            window,
            usage: Usage {
                cpu_nanocores: cpu_rate(previous.usage.cpu_ns, latest.usage.cpu_ns, window)?,
                memory_bytes: latest.usage.working_set_bytes,
            },
        })
    }
}

/// CPU time used between two cumulative readings over `window`, in nanocores (nanoseconds
/// of CPU per second): metrics-server's `cpuUsageOverTime`.
fn cpu_rate(previous_ns: u64, latest_ns: u64, window: Duration) -> Option<u64> {
    let used = latest_ns.checked_sub(previous_ns)?;
    let window_ns = window.as_nanos();
    if window_ns == 0 {
        return None;
    }
    u64::try_from(u128::from(used) * 1_000_000_000 / window_ns).ok()
}

/// A container's name and its reading, if it has one yet.
type ContainerReading = (String, Option<Reading>);

/// The samples of one container attempt.
#[derive(Debug)]
struct ContainerSamples {
    /// The attempt sampled: a restarted container starts over.
    runc_id: String,
    samples: Samples,
}

#[derive(Debug, Default)]
struct State {
    containers: HashMap<ContainerKey, ContainerSamples>,
    node: Samples,
}

/// The node's samples, shared by the sampling task and the API server's calls.
#[derive(Debug)]
pub struct MetricsStore {
    period: Duration,
    state: Mutex<State>,
}

impl MetricsStore {
    pub fn new(period: Duration) -> MetricsStore {
        MetricsStore {
            period,
            state: Mutex::default(),
        }
    }

    /// How often the node samples.
    pub fn period(&self) -> Duration {
        self.period
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records this round's samples: each running container's (a container no longer
    /// running, or not sampled, is forgotten) and the node's.
    pub(crate) fn record(
        &self,
        containers: Vec<(ContainerKey, String, Sample)>,
        node: Option<Sample>,
    ) {
        let mut state = self.lock();
        let mut kept = HashMap::with_capacity(containers.len());
        for (key, runc_id, sample) in containers {
            let mut entry = match state.containers.remove(&key) {
                Some(entry) if entry.runc_id == runc_id => entry,
                _ => ContainerSamples {
                    runc_id,
                    samples: Samples::default(),
                },
            };
            entry.samples.push(sample);
            kept.insert(key, entry);
        }
        state.containers = kept;
        match node {
            Some(sample) => state.node.push(sample),
            None => state.node = Samples::default(),
        }
    }

    /// The readings of the node and of every pod whose containers all have one.
    pub fn snapshot(&self) -> NodeMetrics {
        let state = self.lock();
        let mut pods: BTreeMap<(String, String), Vec<ContainerReading>> = BTreeMap::new();
        for (key, entry) in &state.containers {
            pods.entry((key.namespace.clone(), key.pod.clone()))
                .or_default()
                .push((key.container.clone(), entry.samples.reading()));
        }
        let pods = pods
            .into_iter()
            .filter_map(|((namespace, name), containers)| pod_usage(namespace, name, containers))
            .collect();
        let node = state.node.reading().map(|reading| NodeUsage {
            timestamp: reading.timestamp,
            window: reading.window,
            usage: reading.usage,
        });
        NodeMetrics { node, pods }
    }
}

/// A pod's usage when every container has a reading (metrics-server's `allContainersPresent`),
/// stamped with the earliest of their timestamps and that reading's window.
fn pod_usage(
    namespace: String,
    name: String,
    mut containers: Vec<ContainerReading>,
) -> Option<PodUsage> {
    containers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut earliest: Option<Reading> = None;
    let mut usages = Vec::with_capacity(containers.len());
    for (container, reading) in containers {
        let reading = reading?;
        if earliest.is_none_or(|e| reading.timestamp < e.timestamp) {
            earliest = Some(reading);
        }
        usages.push(ContainerUsage {
            name: container,
            usage: reading.usage,
        });
    }
    let earliest = earliest?;
    Some(PodUsage {
        namespace,
        name,
        timestamp: earliest.timestamp,
        window: earliest.window,
        containers: usages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Instant, cpu_ns: u64, working_set_bytes: u64) -> Sample {
        Sample {
            at,
            wall: SystemTime::UNIX_EPOCH + at.duration_since(start()),
            usage: CgroupUsage {
                cpu_ns,
                working_set_bytes,
            },
        }
    }

    fn start() -> Instant {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *START.get_or_init(Instant::now)
    }

    fn key(pod: &str, container: &str) -> ContainerKey {
        ContainerKey {
            namespace: "default".into(),
            pod: pod.into(),
            container: container.into(),
        }
    }

    #[test]
    fn the_cpu_rate_is_cpu_time_over_the_window_in_nanocores() {
        let second = Duration::from_secs(1);
        // Half a CPU for two seconds.
        assert_eq!(cpu_rate(0, 1_000_000_000, 2 * second), Some(500_000_000));
        assert_eq!(cpu_rate(5_000, 5_000 + 1_234_567, second), Some(1_234_567));
        assert_eq!(cpu_rate(10, 5, second), None, "a counter that went back");
        assert_eq!(cpu_rate(0, 5, Duration::ZERO), None);
    }

    #[test]
    fn a_pod_has_a_reading_once_every_container_has_two_samples() {
        let store = MetricsStore::new(Duration::from_secs(1));
        let t0 = start();
        let t1 = t0 + Duration::from_secs(2);
        let t2 = t1 + Duration::from_secs(1);
        store.record(
            vec![(
                key("web-0", "nginx"),
                "web-0-a-nginx-0".into(),
                sample(t0, 0, 10),
            )],
            Some(sample(t0, 0, 100)),
        );
        assert_eq!(store.snapshot(), NodeMetrics::default());
        store.record(
            vec![
                (
                    key("web-0", "nginx"),
                    "web-0-a-nginx-0".into(),
                    sample(t1, 20_000_000, 4096),
                ),
                (
                    key("web-0", "sidecar"),
                    "web-0-a-sidecar-0".into(),
                    sample(t1, 0, 1),
                ),
            ],
            Some(sample(t1, 1_000_000_000, 8192)),
        );
        let metrics = store.snapshot();
        assert!(
            metrics.pods.is_empty(),
            "the sidecar has one sample: {metrics:?}"
        );
        let node = metrics.node.unwrap();
        assert_eq!(node.window, Duration::from_secs(2));
        assert_eq!(node.usage.cpu_nanocores, 500_000_000);
        assert_eq!(node.usage.memory_bytes, 8192);
        store.record(
            vec![
                (
                    key("web-0", "nginx"),
                    "web-0-a-nginx-0".into(),
                    sample(t2, 30_000_000, 4096),
                ),
                (
                    key("web-0", "sidecar"),
                    "web-0-a-sidecar-0".into(),
                    sample(t2, 250_000_000, 2048),
                ),
            ],
            Some(sample(t2, 1_500_000_000, 8192)),
        );
        let pods = store.snapshot().pods;
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].name, "web-0");
        assert_eq!(pods[0].window, Duration::from_secs(1));
        assert_eq!(
            pods[0].timestamp,
            SystemTime::UNIX_EPOCH + Duration::from_secs(3)
        );
        let usage: Vec<(&str, u64, u64)> = pods[0]
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.usage.cpu_nanocores, c.usage.memory_bytes))
            .collect();
        assert_eq!(
            usage,
            [("nginx", 10_000_000, 4096), ("sidecar", 250_000_000, 2048)]
        );
    }

    #[test]
    fn a_restarted_or_stopped_container_starts_over() {
        let store = MetricsStore::new(Duration::from_secs(1));
        let t0 = start();
        let t1 = t0 + Duration::from_secs(1);
        let t2 = t1 + Duration::from_secs(1);
        store.record(
            vec![(key("p", "c"), "p-c-0".into(), sample(t0, 0, 1))],
            None,
        );
        store.record(
            vec![(key("p", "c"), "p-c-0".into(), sample(t1, 10, 1))],
            None,
        );
        assert_eq!(store.snapshot().pods.len(), 1);
        // The next attempt: one sample of it, no reading.
        store.record(
            vec![(key("p", "c"), "p-c-1".into(), sample(t2, 5, 1))],
            None,
        );
        assert!(store.snapshot().pods.is_empty());
        // Not running any more: forgotten.
        store.record(Vec::new(), None);
        assert!(store.lock().containers.is_empty());
    }
}
