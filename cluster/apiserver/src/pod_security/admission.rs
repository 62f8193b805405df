//! The PodSecurity admission plugin's decisions for one write, as kube-apiserver makes them
//! (`admission/admission.go` of pod-security-admission, with the plugin's Create and Update
//! operations and no exemptions configured):
//!
//! - a pod whose namespace enforces a level it violates is refused (403, `violates
//!   PodSecurity "baseline:latest": …`); one that violates the warn level gets a warning;
//!   updates are checked only when they change an image or the containers;
//! - workloads with a pod template (StatefulSet, ReplicaSet, Deployment, …) are never
//!   refused: their templates get the warn level's warnings;
//! - a namespace's labels must parse (422 otherwise); a namespace whose enforce level becomes
//!   stricter answers with warnings naming its existing pods that violate it.
//!
//! The namespace's labels are read before the store transaction ([`Admission::prepare`]),
//! because the store is locked while an update decides; its existing pods are read after it
//! ([`Review::into_warnings`]), as the result changes only warnings.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::checks::{evaluate, forbidden_detail, forbidden_reason};
use super::level::{Level, LevelVersion, policy_from_labels};
use super::pod_fields;
use crate::context::{Target, str_at};
use crate::errors::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use crate::store::Store;

/// Upstream's cap on the pods checked when a namespace's enforce level changes.
const MAX_PODS_TO_CHECK: usize = 3000;

/// Where a resource keeps the pod (template) it is checked as.
enum Subject {
    Pod,
    /// A workload; the pointers are its template's metadata and spec.
    Controller {
        metadata: &'static str,
        spec: &'static str,
    },
    Namespace,
}

/// The resources the plugin admits, as upstream's `DefaultPodSpecExtractor` lists them (those
/// this server does not serve simply never match).
fn subject(resource: &ResourceInfo) -> Option<Subject> {
    const TEMPLATE: Subject = Subject::Controller {
        metadata: "/spec/template/metadata",
        spec: "/spec/template/spec",
    };
    match (resource.group, resource.plural) {
        ("", "pods") => Some(Subject::Pod),
        ("", "namespaces") => Some(Subject::Namespace),
        ("", "replicationcontrollers")
        | ("apps", "replicasets" | "deployments" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => Some(TEMPLATE),
        ("", "podtemplates") => Some(Subject::Controller {
            metadata: "/template/metadata",
            spec: "/template/spec",
        }),
        ("batch", "cronjobs") => Some(Subject::Controller {
            metadata: "/spec/jobTemplate/spec/template/metadata",
            spec: "/spec/jobTemplate/spec/template/spec",
        }),
        _ => None,
    }
}

/// Pod Security admission for one write, prepared before the store transaction.
pub struct Admission {
    resource: &'static ResourceInfo,
    subject: Option<Subject>,
    /// The labels of the namespace the object is in (pods and workloads), or the error of
    /// looking the namespace up.
    namespace_labels: Result<Option<Value>, String>,
}

/// What admission decided beyond "allowed": warnings now, and perhaps a namespace whose
/// existing pods are to be checked once the write is done.
#[derive(Debug, Default)]
pub struct Review {
    warnings: Vec<String>,
    check_pods: Option<(String, LevelVersion)>,
}

impl Admission {
    /// Reads what the admission of a write to `target` needs from the store: the labels of
    /// the namespace, for pods and workloads. Subresources (`status`, `scale`, `binding`,
    /// `finalize`) are not admitted, as upstream ignores them.
    pub fn prepare(store: &Store, target: &Target) -> Admission {
        let resource = target.resource;
        let subject = subject(resource).filter(|_| target.subresource.is_none());
        let namespace_labels = match subject {
            Some(Subject::Pod | Subject::Controller { .. }) => {
                let namespace = target.store_namespace();
                store
                    .get("/namespaces", "", namespace)
                    .map(|ns| ns.pointer("/metadata/labels").cloned())
                    .ok_or_else(|| format!("failed to lookup namespace {namespace:?}"))
            }
            _ => Ok(None),
        };
        Admission {
            resource,
            subject,
            namespace_labels,
        }
    }

    /// Admits writing `new` (over `old` for an update): the error that refuses it, or what
    /// to tell the client.
    pub fn review(&self, old: Option<&Value>, new: &Value) -> ApiResult<Review> {
        match &self.subject {
            None => Ok(Review::default()),
            Some(Subject::Pod) => self.review_pod(old, new),
            Some(Subject::Controller { metadata, spec }) => {
                Ok(self.review_controller(new, metadata, spec))
            }
            Some(Subject::Namespace) => review_namespace(old, new),
        }
    }

    /// Upstream's `ValidatePod` then `EvaluatePod` with enforce.
    fn review_pod(&self, old: Option<&Value>, new: &Value) -> ApiResult<Review> {
        let labels = self
            .namespace_labels
            .as_ref()
            .map_err(|problem| ApiError::internal(format!("Internal error occurred: {problem}")))?;
        let (policy, errors) = policy_from_labels(labels.as_ref());
        if errors.is_empty() && policy.fully_privileged() {
            return Ok(Review::default());
        }
        if old.is_some_and(|old| !is_significant_pod_update(new, old)) {
            return Ok(Review::default());
        }
        let metadata = new.get("metadata").unwrap_or(&Value::Null);
        let spec = new.get("spec").unwrap_or(&Value::Null);
        let enforced = evaluate(policy.enforce.level, metadata, spec);
        if !enforced.is_empty() {
            let name = str_at(new, "/metadata/name").unwrap_or_default();
            return Err(ApiError::forbidden(
                &self.resource.qualified_plural(),
                name,
                format!(
                    "violates PodSecurity \"{}\": {}",
                    policy.enforce,
                    forbidden_detail(&enforced)
                ),
            ));
        }
        Ok(Review {
            warnings: warn(policy.warn, metadata, spec),
            check_pods: None,
        })
    }

    /// Upstream's `ValidatePodController`: warnings only, never a refusal (the controller's
    /// pods are refused when it creates them).
    fn review_controller(&self, new: &Value, metadata: &str, spec: &str) -> Review {
        // Upstream allows the write when the namespace cannot be read.
        let Ok(labels) = &self.namespace_labels else {
            return Review::default();
        };
        let (policy, errors) = policy_from_labels(labels.as_ref());
        if errors.is_empty()
            && policy.warn.level == Level::Privileged
            && policy.audit.level == Level::Privileged
        {
            return Review::default();
        }
        let metadata = new.pointer(metadata).unwrap_or(&Value::Null);
        let spec = new.pointer(spec).unwrap_or(&Value::Null);
        Review {
            warnings: warn(policy.warn, metadata, spec),
            check_pods: None,
        }
    }
}

/// The warning for a pod (template) that violates the warn level, if it does.
fn warn(level: LevelVersion, metadata: &Value, spec: &Value) -> Vec<String> {
    let violations = evaluate(level.level, metadata, spec);
    if violations.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "would violate PodSecurity \"{level}\": {}",
        forbidden_detail(&violations)
    )]
}

/// Upstream's `ValidateNamespace`: labels must parse on create, and on an update that changes
/// their errors; a stricter enforce level has the existing pods checked.
fn review_namespace(old: Option<&Value>, new: &Value) -> ApiResult<Review> {
    let name = str_at(new, "/metadata/name").unwrap_or_default();
    let (policy, errors) = policy_from_labels(new.pointer("/metadata/labels"));
    let invalid = || ApiError::invalid("Namespace", name, &errors);
    let Some(old) = old else {
        return if errors.is_empty() {
            Ok(Review::default())
        } else {
            Err(invalid())
        };
    };
    let (old_policy, old_errors) = policy_from_labels(old.pointer("/metadata/labels"));
    // A namespace that already had these same bad labels can still be updated otherwise.
    if !errors.is_empty() && (old_errors.is_empty() || errors != old_errors) {
        return Err(invalid());
    }
    let (enforce, previous) = (policy.enforce, old_policy.enforce);
    let unchanged = enforce == previous;
    let relaxed = enforce.version == previous.version && enforce.level <= previous.level;
    if unchanged || enforce.level == Level::Privileged || relaxed {
        return Ok(Review::default());
    }
    Ok(Review {
        warnings: Vec::new(),
        check_pods: Some((name.to_string(), enforce)),
    })
}

/// Upstream's `isSignificantPodUpdate`: a change of the containers' number or images, or a
/// new or changed ephemeral container, is checked again; metadata and status updates are not,
/// so that they are never blocked by a policy set after the pod was created.
///
/// Upstream can stop there because kube-apiserver's validation refuses every other change to
/// a pod's spec. This server does not refuse them yet, so a change to any other part of the
/// spec than those pod updates may change (images, `activeDeadlineSeconds`, `tolerations`,
/// `terminationGracePeriodSeconds`, `schedulingGates`) counts too: otherwise a PATCH adding a
/// hostPath volume to a compliant pod would slip past enforcement.
fn is_significant_pod_update(new: &Value, old: &Value) -> bool {
    let list = |pod: &Value, key: &str| -> Vec<Value> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let image = |c: &Value| c.get("image").and_then(Value::as_str).map(String::from);
    for key in ["containers", "initContainers"] {
        let (new_list, old_list) = (list(new, key), list(old, key));
        if new_list.len() != old_list.len() {
            return true;
        }
        if new_list
            .iter()
            .zip(&old_list)
            .any(|(n, o)| image(n) != image(o))
        {
            return true;
        }
    }
    let old_ephemeral = list(old, "ephemeralContainers");
    let ephemeral_changed = list(new, "ephemeralContainers").iter().any(|c| {
        let same_name = old_ephemeral
            .iter()
            .find(|o| pod_fields::name(o) == pod_fields::name(c));
        same_name.is_none_or(|o| image(o) != image(c))
    });
    ephemeral_changed || fixed_spec(new) != fixed_spec(old)
}

/// A pod's spec without what a pod update may change in kube-apiserver (and without the
/// ephemeral containers, compared above).
fn fixed_spec(pod: &Value) -> Value {
    let mut spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    if let Some(map) = spec.as_object_mut() {
        for mutable in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
            "schedulingGates",
            "ephemeralContainers",
        ] {
            map.remove(mutable);
        }
        for key in ["containers", "initContainers"] {
            let containers = map.get_mut(key).and_then(Value::as_array_mut);
            for container in containers.into_iter().flatten() {
                if let Some(c) = container.as_object_mut() {
                    c.remove("image");
                }
            }
        }
    }
    spec
}

impl Review {
    /// The warnings to send back, after the write: for a namespace whose enforce level became
    /// stricter, upstream's `EvaluatePodsInNamespace` on its pods as stored now.
    pub fn into_warnings(self, store: &Store) -> Vec<String> {
        let mut warnings = self.warnings;
        if let Some((namespace, enforce)) = self.check_pods {
            let (pods, _) = store.list("/pods", Some(&namespace));
            warnings.extend(existing_pod_warnings(&namespace, enforce, pods));
        }
        warnings
    }
}

/// The warnings about a namespace's existing pods under a new enforce level: one saying that
/// some violate it, then one per distinct set of reasons, prefixed by the first pod's name
/// (and how many others share it), sorted.
fn existing_pod_warnings(namespace: &str, enforce: LevelVersion, pods: Vec<Value>) -> Vec<String> {
    let total = pods.len();
    let mut pods = prioritize(pods);
    pods.truncate(MAX_PODS_TO_CHECK);
    let checked = pods.len();
    // reason -> (lexically first pod name, pod count), in order of first appearance.
    let mut seen: HashMap<String, (String, usize)> = HashMap::new();
    let mut reasons = Vec::new();
    for pod in &pods {
        let metadata = pod.get("metadata").unwrap_or(&Value::Null);
        let spec = pod.get("spec").unwrap_or(&Value::Null);
        let violations = evaluate(enforce.level, metadata, spec);
        if violations.is_empty() {
            continue;
        }
        let reason = forbidden_reason(&violations);
        let name = str_at(pod, "/metadata/name").unwrap_or_default();
        let entry = seen.entry(reason.clone()).or_insert_with(|| {
            reasons.push(reason);
            (name.to_string(), 0)
        });
        if name < entry.0.as_str() {
            entry.0 = name.to_string();
        }
        entry.1 += 1;
    }
    let mut warnings = Vec::new();
    if checked < total {
        warnings.push(format!(
            "new PodSecurity enforce level only checked against the first {checked} of {total} existing pods"
        ));
    }
    if !reasons.is_empty() {
        warnings.push(format!(
            "existing pods in namespace \"{namespace}\" violate the new PodSecurity enforce level \"{enforce}\""
        ));
    }
    let mut per_pod: Vec<String> = reasons
        .into_iter()
        .map(|reason| {
            let (name, count) = &seen[&reason];
            match count {
                1 => format!("{name}: {reason}"),
                2 => format!("{name} (and 1 other pod): {reason}"),
                n => format!("{name} (and {} other pods): {reason}", n - 1),
            }
        })
        .collect();
    per_pod.sort();
    warnings.extend(per_pod);
    warnings
}

/// Upstream's `prioritizePods`: pods without a controller and the first pod of each
/// controller first, the other replicas after, so that a capped check sees every controller.
fn prioritize(pods: Vec<Value>) -> Vec<Value> {
    let mut first = Vec::new();
    let mut replicas = Vec::new();
    let mut controllers = HashSet::new();
    for pod in pods {
        let owners = pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array);
        let controller = owners
            .into_iter()
            .flatten()
            .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            .map(|r| str_at(r, "/uid").unwrap_or_default().to_string());
        // `insert` is false for a controller already seen.
        if controller.is_some_and(|uid| !controllers.insert(uid)) {
            replicas.push(pod);
        } else {
            first.push(pod);
        }
    }
    first.extend(replicas);
    first
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
