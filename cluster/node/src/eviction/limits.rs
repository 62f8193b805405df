//! The storage limits of a pod, read from its spec as the kubelet's eviction manager reads
//! them: each disk-backed emptyDir's `sizeLimit`, the pod's total (`resourcehelper.PodLimits`:
//! the sum of its containers' `limits.ephemeral-storage`) and each container's own. Quantities
//! are printed as apimachinery's `Quantity.String()` prints them (`1Mi`, `1500k`), since the
//! messages quote them.

use k8s_labs_quantity::Quantity;
use k8s_openapi::api::core::v1::{Container, Pod};

use crate::empty_dir::Medium;

/// A limit: its value in bytes and how the kubelet prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub bytes: u64,
    /// As `Quantity.String()` prints it: what the messages quote.
    pub text: String,
}

impl Limit {
    fn of(value: Quantity, format: Format) -> Limit {
        Limit {
            bytes: u64::try_from(value.ceil()).unwrap_or(u64::MAX),
            text: canonical(value, format),
        }
    }

    /// A limit of `bytes`, printed in binary units (`1Gi`).
    pub fn binary(bytes: u64) -> Limit {
        let value = Quantity::parse(&bytes.to_string()).unwrap_or(Quantity::ZERO);
        Limit {
            bytes,
            text: canonical(value, Format::Binary),
        }
    }
}

/// What bounds the pod's ephemeral storage as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodLimit {
    /// The sum of the `limits.ephemeral-storage` of the containers that have one.
    Containers(Limit),
    /// No container has one: the node's default (see [`super::DEFAULT_POD_EPHEMERAL_STORAGE`]),
    /// over everything but the emptyDirs that have a `sizeLimit` of their own.
    Default(Limit),
}

/// A pod's storage limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageLimits {
    /// The disk-backed emptyDir volumes (a memory-backed one is bounded by its tmpfs), by
    /// name, with their `sizeLimit` when it is set and not zero.
    pub empty_dirs: Vec<(String, Option<Limit>)>,
    pub pod: PodLimit,
    /// Every container, by name, with its `limits.ephemeral-storage` when it is not zero.
    pub containers: Vec<(String, Option<Limit>)>,
}

impl StorageLimits {
    /// The limits of `pod`; `default_bytes` bounds a pod whose containers set none.
    pub fn of(pod: &Pod, default_bytes: u64) -> StorageLimits {
        let Some(spec) = pod.spec.as_ref() else {
            return StorageLimits {
                empty_dirs: Vec::new(),
                pod: PodLimit::Default(Limit::binary(default_bytes)),
                containers: Vec::new(),
            };
        };
        let empty_dirs = spec
            .volumes
            .iter()
            .flatten()
            .filter_map(|volume| {
                let source = volume.empty_dir.as_ref()?;
                // A medium the sandbox refused never gets this far.
                (Medium::of(source).ok()? == Medium::Disk).then(|| {
                    let limit = source.size_limit.as_ref().and_then(|q| parse(&q.0));
                    let limit = limit.filter(|(value, _)| !value.is_zero());
                    (volume.name.clone(), limit.map(|(v, f)| Limit::of(v, f)))
                })
            })
            .collect();
        let limits: Vec<Option<(Quantity, Format)>> =
            spec.containers.iter().map(ephemeral_storage).collect();
        // As `PodLimits`: the sum starts from the first container that has a limit, whose
        // format the sum keeps; a limit of zero counts (and so does any usage against it).
        let sum = limits.iter().flatten().fold(None, |sum, &(value, format)| {
            Some(match sum {
                None => (value, format),
                Some((total, first)) => (add(total, value), first),
            })
        });
        let pod_limit = match sum {
            Some((value, format)) => PodLimit::Containers(Limit::of(value, format)),
            None => PodLimit::Default(Limit::binary(default_bytes)),
        };
        let containers = spec
            .containers
            .iter()
            .zip(limits)
            .map(|(container, limit)| {
                let limit = limit.filter(|(value, _)| !value.is_zero());
                (container.name.clone(), limit.map(|(v, f)| Limit::of(v, f)))
            })
            .collect();
        StorageLimits {
            empty_dirs,
            pod: pod_limit,
            containers,
        }
    }
}

fn ephemeral_storage(container: &Container) -> Option<(Quantity, Format)> {
    let limits = container.resources.as_ref()?.limits.as_ref()?;
    parse(&limits.get("ephemeral-storage")?.0)
}

fn add(total: Quantity, value: Quantity) -> Quantity {
    total.checked_add(value).unwrap_or(total)
}

fn parse(text: &str) -> Option<(Quantity, Format)> {
    Some((Quantity::parse(text)?, Format::of(text)))
}

/// apimachinery's formats: what a quantity is printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `Ki`, `Mi`, … suffixes.
    Binary,
    /// `k`, `M`, … suffixes, `m` for thousandths, or none.
    Decimal,
    /// `e3`, `e6`, …
    Exponent,
}

impl Format {
    fn of(text: &str) -> Format {
        let suffix = text
            .trim()
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        if suffix.ends_with('i') {
            Format::Binary
        } else if suffix.len() > 1 && suffix.starts_with(['e', 'E']) {
            // `1E` alone is an exa, `1E3` an exponent.
            Format::Exponent
        } else {
            Format::Decimal
        }
    }
}

/// `Quantity.String()`: the largest unit that leaves a whole number, in the quantity's format;
/// a binary quantity below 1Ki is printed as a decimal one, and so is a fraction (in
/// thousandths).
fn canonical(value: Quantity, format: Format) -> String {
    let whole = value.ceil();
    if value.is_zero() {
        return "0".to_string();
    }
    if value.milli_ceil() != whole.saturating_mul(1000) {
        return format!("{}m", value.milli_ceil());
    }
    if format == Format::Binary && whole >= 1024 {
        let (mut number, mut power) = (whole, 0);
        while number % 1024 == 0 && power < 6 {
            number /= 1024;
            power += 1;
        }
        return format!(
            "{number}{}",
            ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power]
        );
    }
    let (mut number, mut power) = (whole, 0);
    while number % 1000 == 0 && power < 6 {
        number /= 1000;
        power += 1;
    }
    match (format, power) {
        (_, 0) => number.to_string(),
        (Format::Exponent, _) => format!("{number}e{}", 3 * power),
        _ => format!("{number}{}", ["", "k", "M", "G", "T", "P", "E"][power]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(quantity: &str) -> String {
        let (value, format) = parse(quantity).unwrap();
        canonical(value, format)
    }

    #[test]
    fn quantities_print_as_apimachinery_prints_them() {
        for (written, printed) in [
            ("1Mi", "1Mi"),
            ("1024Ki", "1Mi"),
            ("1.5Gi", "1536Mi"),
            ("1000Ki", "1000Ki"),
            ("512", "512"),
            ("0.5Ki", "512"),
            ("1000000", "1M"),
            ("1500k", "1500k"),
            ("2G", "2G"),
            ("1e3", "1e3"),
            ("1500e3", "1500e3"),
            ("1E", "1E"),
            ("0", "0"),
            ("0Mi", "0"),
            ("1500m", "1500m"),
        ] {
            assert_eq!(text(written), printed, "{written}");
        }
        assert_eq!(Limit::binary(1 << 30).text, "1Gi");
    }

    fn pod(volumes: serde_json::Value, limits: &[Option<&str>]) -> Pod {
        let containers: Vec<_> = limits
            .iter()
            .enumerate()
            .map(|(index, limit)| {
                let resources = limit.map_or_else(
                    || json!({}),
                    |limit| json!({"limits": {"ephemeral-storage": limit}}),
                );
                json!({"name": format!("c{index}"), "resources": resources})
            })
            .collect();
        serde_json::from_value(json!({"spec": {"containers": containers, "volumes": volumes}}))
            .unwrap()
    }

    fn limit(bytes: u64, text: &str) -> Option<Limit> {
        Some(Limit {
            bytes,
            text: text.to_string(),
        })
    }

    #[test]
    fn limits_are_read_as_the_eviction_manager_reads_them() {
        let volumes = json!([
            {"name": "cache", "emptyDir": {"sizeLimit": "1Mi"}},
            {"name": "plain", "emptyDir": {}},
            {"name": "zero", "emptyDir": {"sizeLimit": "0"}},
            {"name": "memory", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
            {"name": "host", "hostPath": {"path": "/data"}},
        ]);
        let limits = StorageLimits::of(&pod(volumes, &[Some("1Mi"), None, Some("512Ki")]), 7);
        assert_eq!(
            limits.empty_dirs,
            vec![
                ("cache".to_string(), limit(1 << 20, "1Mi")),
                ("plain".to_string(), None),
                ("zero".to_string(), None),
            ]
        );
        // The sum keeps the first limit's format.
        assert_eq!(limits.pod, PodLimit::Containers(Limit::binary(1536 << 10)));
        assert_eq!(
            limits.containers,
            vec![
                ("c0".to_string(), limit(1 << 20, "1Mi")),
                ("c1".to_string(), None),
                ("c2".to_string(), limit(512 << 10, "512Ki")),
            ]
        );
        let decimal = StorageLimits::of(&pod(json!([]), &[Some("1M"), Some("1Mi")]), 7);
        assert_eq!(
            decimal.pod.clone(),
            PodLimit::Containers(Limit {
                bytes: 2_048_576,
                text: "2048576".to_string(),
            })
        );
        let none = StorageLimits::of(&pod(json!([]), &[None, None]), 1 << 30);
        assert_eq!(none.pod, PodLimit::Default(Limit::binary(1 << 30)));
    }
}
