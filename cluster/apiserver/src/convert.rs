//! Resources that are another view of stored objects. In Kubernetes, events.k8s.io/v1 Events
//! and core v1 Events are the same objects in two shapes: kube-rs's event recorder writes the
//! former, `kubectl get events` and `kubectl describe` read the latter. They are stored once,
//! in the core shape, and converted on the way in and out (the field renames of
//! k8s.io/kubernetes pkg/apis/events/v1 conversion).

use serde_json::{Map, Value};

use crate::registry::{self, ResourceInfo};

/// (events.k8s.io/v1 field, core/v1 field)
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn is_events_view(resource: &ResourceInfo) -> bool {
    resource.group == "events.k8s.io"
}

/// The resource whose objects are stored for `resource` (itself, unless it is a view).
pub fn storage(resource: &'static ResourceInfo) -> &'static ResourceInfo {
    if is_events_view(resource) {
        registry::find("", "v1", "events").unwrap_or(resource)
    } else {
        resource
    }
}

fn rename(
    object: Value,
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
    api_version: &str,
) -> Value {
    let Value::Object(mut map) = object else {
        return object;
    };
    let mut renamed = Map::new();
    for (from, to) in pairs {
        if let Some(v) = map.remove(from) {
            renamed.insert(to.to_string(), v);
        }
    }
    map.extend(renamed);
    map.insert("apiVersion".into(), Value::String(api_version.to_string()));
    map.insert("kind".into(), Value::String("Event".into()));
    Value::Object(map)
}

/// A stored object as the client of `resource` sees it.
pub fn to_view(resource: &ResourceInfo, stored: Value) -> Value {
    if !is_events_view(resource) {
        return stored;
    }
    rename(
        stored,
        EVENT_FIELDS.iter().map(|(view, core)| (*core, *view)),
        "events.k8s.io/v1",
    )
}

/// An object sent by a client of `resource`, in the stored shape.
pub fn to_storage(resource: &ResourceInfo, view: Value) -> Value {
    if !is_events_view(resource) {
        return view;
    }
    rename(view, EVENT_FIELDS.iter().copied(), "v1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip_between_the_two_shapes() {
        let view = registry::find("events.k8s.io", "v1", "events").unwrap();
        let new_style = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "pulled", "reason": "Pulled", "type": "Normal",
            "reportingController": "kubelet", "eventTime": "2025-01-01T00:00:00.000000Z"});
        let core = to_storage(view, new_style.clone());
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "pulled");
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(to_view(view, core), new_style);
    }
}
