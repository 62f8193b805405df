//! A valid object of every served kind: the fuzzer's starting points. The test creates one
//! fixture of each (so that updates and patches have a target) and so checks they are valid.

use serde_json::{Value, json};

use super::Rng;

/// The namespace of the namespaced fixtures.
pub const NAMESPACE: &str = "fuzz";

/// One served resource and a valid body for it.
pub struct Seed {
    pub group: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// The name of its fixture (events.k8s.io Events are core Events: a name of their own).
    pub fixture: &'static str,
    /// The kind's own fields (everything but apiVersion, kind and metadata).
    body: fn() -> Value,
}

impl Seed {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            "v1".into()
        } else {
            format!("{}/v1", self.group)
        }
    }

    /// The collection's path.
    pub fn collection(&self) -> String {
        let prefix = if self.group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}/v1", self.group)
        };
        if self.namespaced {
            format!("{prefix}/namespaces/{NAMESPACE}/{}", self.plural)
        } else {
            format!("{prefix}/{}", self.plural)
        }
    }

    /// The fixture's path.
    pub fn item(&self) -> String {
        format!("{}/{}", self.collection(), self.fixture)
    }

    /// A valid object named `name`, with a label and an annotation to mutate.
    pub fn object(&self, name: &str) -> Value {
        let mut object = json!({
            "apiVersion": self.api_version(),
            "kind": self.kind,
            "metadata": {"name": name, "labels": {"app": "web"}, "annotations": {"note": "n"}},
        });
        if let (Some(map), Value::Object(fields)) = (object.as_object_mut(), (self.body)()) {
            map.extend(fields);
        }
        object
    }
}

fn template() -> Value {
    json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    })
}

fn workload() -> Value {
    json!({"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template()}})
}

fn involved() -> Value {
    json!({"kind": "Pod", "name": "p", "namespace": NAMESPACE, "apiVersion": "v1"})
}

#[rustfmt::skip]
pub static SEEDS: &[Seed] = &[
    // First: the namespace the other fixtures live in.
    Seed { group: "", plural: "namespaces", kind: "Namespace", namespaced: false, fixture: "fuzz",
        body: || json!({}) },
    Seed { group: "", plural: "configmaps", kind: "ConfigMap", namespaced: true, fixture: "fuzz-a",
        body: || json!({"data": {"a": "1", "b": "two"}}) },
    Seed { group: "", plural: "endpoints", kind: "Endpoints", namespaced: true, fixture: "fuzz-a",
        body: || json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}) },
    Seed { group: "", plural: "events", kind: "Event", namespaced: true, fixture: "fuzz-a",
        body: || json!({"involvedObject": involved(), "reason": "Test", "message": "m",
            "type": "Normal", "source": {"component": "fuzz"}}) },
    Seed { group: "", plural: "nodes", kind: "Node", namespaced: false, fixture: "fuzz-a",
        body: || json!({"spec": {"podCIDR": "10.244.0.0/24"}}) },
    Seed { group: "", plural: "persistentvolumeclaims", kind: "PersistentVolumeClaim", namespaced: true,
        fixture: "fuzz-a",
        body: || json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}) },
    Seed { group: "", plural: "persistentvolumes", kind: "PersistentVolume", namespaced: false, fixture: "fuzz-a",
        body: || json!({"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/fuzz"}}}) },
    Seed { group: "", plural: "pods", kind: "Pod", namespaced: true, fixture: "fuzz-a",
        body: || json!({"spec": {"containers": [{"name": "c", "image": "nginx",
            "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}]}]}}) },
    Seed { group: "", plural: "secrets", kind: "Secret", namespaced: true, fixture: "fuzz-a",
        body: || json!({"data": {"a": "MQ=="}, "type": "Opaque"}) },
    Seed { group: "", plural: "serviceaccounts", kind: "ServiceAccount", namespaced: true, fixture: "fuzz-a",
        body: || json!({}) },
    Seed { group: "", plural: "services", kind: "Service", namespaced: true, fixture: "fuzz-a",
        body: || json!({"spec": {"ports": [{"name": "http", "port": 80}], "selector": {"app": "web"}}}) },
    Seed { group: "apps", plural: "controllerrevisions", kind: "ControllerRevision", namespaced: true,
        fixture: "fuzz-a", body: || json!({"revision": 1, "data": {"spec": {}}}) },
    Seed { group: "apps", plural: "deployments", kind: "Deployment", namespaced: true, fixture: "fuzz-a",
        body: workload },
    Seed { group: "apps", plural: "replicasets", kind: "ReplicaSet", namespaced: true, fixture: "fuzz-a",
        body: workload },
    Seed { group: "apps", plural: "statefulsets", kind: "StatefulSet", namespaced: true, fixture: "fuzz-a",
        body: || { let mut w = workload(); w["spec"]["serviceName"] = json!("web"); w } },
    Seed { group: "coordination.k8s.io", plural: "leases", kind: "Lease", namespaced: true, fixture: "fuzz-a",
        body: || json!({"spec": {"holderIdentity": "fuzz", "leaseDurationSeconds": 15}}) },
    Seed { group: "discovery.k8s.io", plural: "endpointslices", kind: "EndpointSlice", namespaced: true,
        fixture: "fuzz-a",
        body: || json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]}) },
    Seed { group: "events.k8s.io", plural: "events", kind: "Event", namespaced: true, fixture: "fuzz-b",
        body: || json!({"eventTime": "2025-01-01T00:00:00.000000Z", "reportingController": "fuzz",
            "reportingInstance": "fuzz-1", "action": "Test", "reason": "Test", "type": "Normal",
            "regarding": involved(), "note": "n"}) },
    Seed { group: "storage.k8s.io", plural: "storageclasses", kind: "StorageClass", namespaced: false,
        fixture: "fuzz-a", body: || json!({"provisioner": "example.com/fuzz"}) },
];

/// A random served resource.
pub fn pick(rng: &mut Rng) -> &'static Seed {
    rng.pick(SEEDS)
}
