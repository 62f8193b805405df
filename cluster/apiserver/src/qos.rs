//! A pod's quality-of-service class and the resource defaulting it depends on, as
//! kube-apiserver computes them (`SetDefaults_Pod`, `qos.GetPodQOS`): requests default to
//! limits; a pod is `Guaranteed` when every container limits both cpu and memory and the
//! requests equal the limits, `BestEffort` when no container requests or limits either, and
//! `Burstable` otherwise.

use std::collections::BTreeMap;

use k8s_labs_quantity::Quantity;
use serde_json::Value;

/// The resources that count for the QoS class.
const QOS_RESOURCES: [&str; 2] = ["cpu", "memory"];

/// Sets each container's missing requests to its limits (containers and init containers).
pub fn default_requests_to_limits(spec: &mut Value) {
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers {
            let Some(limits) = container
                .pointer("/resources/limits")
                .and_then(Value::as_object)
                .cloned()
            else {
                continue;
            };
            let Some(resources) = container
                .get_mut("resources")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let requests = resources
                .entry("requests")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(requests) = requests.as_object_mut() {
                for (name, value) in limits {
                    requests.entry(name).or_insert(value);
                }
            }
        }
    }
}

/// `Guaranteed`, `Burstable` or `BestEffort` for a (defaulted) pod spec.
pub fn qos_class(spec: &Value) -> &'static str {
    let mut requests: BTreeMap<&str, Option<Quantity>> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Option<Quantity>> = BTreeMap::new();
    let mut guaranteed = true;
    let containers = ["initContainers", "containers"]
        .iter()
        .filter_map(|list| spec.get(*list).and_then(Value::as_array))
        .flatten();
    for container in containers {
        let mut limited = 0;
        for (section, totals) in [("requests", &mut requests), ("limits", &mut limits)] {
            for name in QOS_RESOURCES {
                let quantity = container
                    .pointer(&format!("/resources/{section}/{name}"))
                    .and_then(quantity);
                if let Some(quantity) = quantity.filter(|q| !q.is_zero()) {
                    // `None` once a sum no longer fits, which then matches nothing.
                    let total = totals.entry(name).or_insert(Some(Quantity::ZERO));
                    *total = total.and_then(|sum| sum.checked_add(quantity));
                    if section == "limits" {
                        limited += 1;
                    }
                }
            }
        }
        if limited < QOS_RESOURCES.len() {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    // The sums over all containers, per resource, as upstream compares them.
    let overflowed = requests
        .values()
        .chain(limits.values())
        .any(Option::is_none);
    if guaranteed && !overflowed && requests == limits {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn quantity(value: &Value) -> Option<Quantity> {
    match value {
        Value::String(text) => Quantity::parse(text),
        Value::Number(number) => Quantity::parse(&number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(containers: Value) -> &'static str {
        let mut spec = json!({ "containers": containers });
        default_requests_to_limits(&mut spec);
        qos_class(&spec)
    }

    #[test]
    fn classes_as_kubernetes_computes_them() {
        assert_eq!(class(json!([{"name": "a"}])), "BestEffort");
        assert_eq!(
            class(json!([{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}}])),
            "Guaranteed",
            "requests default to limits"
        );
        assert_eq!(
            class(json!([{"name": "a", "resources": {
                "requests": {"cpu": "1000m", "memory": "67108864"},
                "limits": {"cpu": "1", "memory": "64Mi"}}}])),
            "Guaranteed",
            "equal in other units"
        );
        assert_eq!(
            class(json!([{"name": "a", "resources": {
                "requests": {"cpu": "500m", "memory": "64Mi"},
                "limits": {"cpu": "1", "memory": "64Mi"}}}])),
            "Burstable"
        );
        assert_eq!(
            class(json!([{"name": "a", "resources": {"limits": {"memory": "64Mi"}}}])),
            "Burstable",
            "no cpu limit"
        );
        assert_eq!(
            class(json!([
                {"name": "a", "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}},
                {"name": "b"}])),
            "Burstable",
            "one container without limits"
        );
    }
}
