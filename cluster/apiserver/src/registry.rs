//! The resource table: which resources exist, in which group and version, and how they
//! behave (scope, subresources, names). Discovery, routing and the generic handlers are all
//! driven by this one table, so adding a resource is one entry here plus its defaults.

/// One REST resource the server serves.
#[derive(Debug)]
pub struct ResourceInfo {
    /// API group ("" for the core group).
    pub group: &'static str,
    pub version: &'static str,
    /// Plural path segment, e.g. "pods".
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Subresources served: "status", "scale", "exec", "attach", "log", "portforward", "proxy",
    /// "eviction", "finalize", "binding".
    pub subresources: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// "group/plural", the store's key for this resource.
    pub plural_key: &'static str,
}

impl ResourceInfo {
    /// `apiVersion` of the objects: "v1" or "apps/v1".
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The name used in error messages: "pods" for core, "statefulsets.apps" otherwise.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The key the store files these objects under (unique across groups). events.k8s.io
    /// Events share the core Events' key: they are the same objects (see `convert`).
    pub fn store_key(&self) -> &'static str {
        if self.group == "events.k8s.io" {
            "/events"
        } else {
            self.plural_key
        }
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.contains(&name)
    }

    /// The verbs discovery lists: the review resources are only created (answered, never
    /// stored), the Metrics API's only read; every other resource has them all.
    pub fn verbs(&self) -> &'static [&'static str] {
        if self.group == crate::reviews::GROUP {
            &["create"]
        } else if self.group == METRICS_GROUP {
            READ_VERBS
        } else {
            VERBS
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

/// The Metrics API's group and its one version (served by [`crate::metrics`]).
pub const METRICS_GROUP: &str = "metrics.k8s.io";
pub const METRICS_VERSION: &str = "v1beta1";

/// The verbs of read-only resources (the Metrics API's).
pub const READ_VERBS: &[&str] = &["get", "list"];

/// The standard verbs of every resource in this server.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

macro_rules! resource {
    ($group:expr, $version:expr, $plural:expr, $singular:expr, $kind:expr, $ns:expr, $short:expr, $subs:expr, $cats:expr) => {
        ResourceInfo {
            group: $group,
            version: $version,
            plural: $plural,
            singular: $singular,
            kind: $kind,
            namespaced: $ns,
            short_names: $short,
            subresources: $subs,
            categories: $cats,
            plural_key: concat!($group, "/", $plural),
        }
    };
}

/// Every resource served, in discovery order (alphabetical within a group, as the real
/// server lists them).
#[rustfmt::skip]
pub static RESOURCES: &[ResourceInfo] = &[
    resource!("", "v1", "configmaps", "configmap", "ConfigMap", true, &["cm"], NONE, NONE),
    resource!("", "v1", "endpoints", "endpoints", "Endpoints", true, &["ep"], NONE, NONE),
    resource!("", "v1", "events", "event", "Event", true, &["ev"], NONE, NONE),
    resource!("", "v1", "namespaces", "namespace", "Namespace", false, &["ns"], &["finalize", "status"], NONE),
    resource!("", "v1", "nodes", "node", "Node", false, &["no"], &["status"], NONE),
    resource!("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", true, &["pvc"], &["status"], NONE),
    resource!("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", false, &["pv"], &["status"], NONE),
    resource!("", "v1", "pods", "pod", "Pod", true, &["po"], &["attach", "binding", "eviction", "exec", "log", "portforward", "proxy", "status"], ALL),
    resource!("", "v1", "secrets", "secret", "Secret", true, NONE, NONE, NONE),
    resource!("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, &["sa"], NONE, NONE),
    resource!("", "v1", "services", "service", "Service", true, &["svc"], &["proxy", "status"], ALL),
    resource!("apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", true, NONE, NONE, NONE),
    resource!("apps", "v1", "deployments", "deployment", "Deployment", true, &["deploy"], &["scale", "status"], ALL),
    resource!("apps", "v1", "replicasets", "replicaset", "ReplicaSet", true, &["rs"], &["scale", "status"], ALL),
    resource!("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, &["sts"], &["scale", "status"], ALL),
    resource!("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview", false, NONE, NONE, NONE),
    resource!("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "selfsubjectrulesreview", "SelfSubjectRulesReview", false, NONE, NONE, NONE),
    resource!("batch", "v1", "cronjobs", "cronjob", "CronJob", true, &["cj"], &["status"], ALL),
    resource!("batch", "v1", "jobs", "job", "Job", true, NONE, &["status"], ALL),
    resource!("coordination.k8s.io", "v1", "leases", "lease", "Lease", true, NONE, NONE, NONE),
    resource!("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", true, NONE, NONE, NONE),
    resource!("events.k8s.io", "v1", "events", "event", "Event", true, &["ev"], NONE, NONE),
    resource!("networking.k8s.io", "v1", "ingressclasses", "ingressclass", "IngressClass", false, NONE, NONE, NONE),
    resource!("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", true, &["ing"], &["status"], NONE),
    resource!("networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", true, &["netpol"], NONE, NONE),
    // metrics-server's resources have no singular name (its GetSingularName is "").
    resource!("metrics.k8s.io", "v1beta1", "nodes", "", "NodeMetrics", false, NONE, NONE, NONE),
    resource!("metrics.k8s.io", "v1beta1", "pods", "", "PodMetrics", true, NONE, NONE, NONE),
    resource!("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", false, &["sc"], NONE, NONE),
];

/// The groups (other than core) in discovery order, each with its one version.
pub const GROUPS: &[(&str, &str)] = &[
    ("apps", "v1"),
    ("events.k8s.io", "v1"),
    ("authorization.k8s.io", "v1"),
    ("batch", "v1"),
    ("networking.k8s.io", "v1"),
    ("coordination.k8s.io", "v1"),
    ("discovery.k8s.io", "v1"),
    ("storage.k8s.io", "v1"),
    // An aggregated API on a real cluster (metrics-server's APIService): listed after the
    // built-in groups, as kube-apiserver lists it.
    (METRICS_GROUP, METRICS_VERSION),
];

/// The resource `plural` in `group`/`version`, if served.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resources of one group version.
pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceInfo> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Whether `group`/`version` is served at all.
pub fn serves_group_version(group: &str, version: &str) -> bool {
    in_group_version(group, version).next().is_some()
}

/// The kind and verbs that discovery lists for a subresource.
pub fn subresource_discovery(
    resource: &ResourceInfo,
    sub: &str,
) -> (&'static str, &'static str, String, &'static [&'static str]) {
    // (group, version, kind, verbs)
    match sub {
        "scale" => (
            "autoscaling",
            "v1",
            "Scale".to_string(),
            &["get", "patch", "update"],
        ),
        "exec" => ("", "", "PodExecOptions".to_string(), &["create", "get"]),
        "attach" => ("", "", "PodAttachOptions".to_string(), &["create", "get"]),
        "portforward" => (
            "",
            "",
            "PodPortForwardOptions".to_string(),
            &["create", "get"],
        ),
        "log" => ("", "", resource.kind.to_string(), &["get"]),
        "proxy" => (
            "",
            "",
            format!("{}ProxyOptions", resource.kind),
            &["create", "delete", "get", "patch", "update"],
        ),
        "binding" => ("", "", "Binding".to_string(), &["create"]),
        "eviction" => ("policy", "v1", "Eviction".to_string(), &["create"]),
        "finalize" => ("", "", resource.kind.to_string(), &["update"]),
        _ => (
            "",
            "",
            resource.kind.to_string(),
            &["get", "patch", "update"],
        ),
    }
}
