//! Pure helpers over Deployments and their ReplicaSets, as kube-controller-manager's
//! `pkg/controller/deployment/util/deployment_util.go` has them: the pod-template hash, the
//! fenceposts of a rolling update, which ReplicaSet is the new one, and the annotations that
//! record revisions and sizes.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The label that tells the ReplicaSets (and pods) of one template from another's.
pub(crate) const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The revision of a ReplicaSet's template, and of the Deployment's current one.
pub(crate) const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions a ReplicaSet had before a rollback made it the new one again.
pub(crate) const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's `replicas` when the ReplicaSet was last scaled.
pub(crate) const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `replicas + maxSurge` of the Deployment when the ReplicaSet was last scaled.
pub(crate) const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Longest `revision-history` kept (`--deployment-controller-…` default).
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// Annotations of the Deployment that are not copied to its ReplicaSets
/// (`skipCopyAnnotation`).
const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// A Deployment's `replicas` (default 1).
pub(crate) fn deployment_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// A ReplicaSet's `spec.replicas` (default 1).
pub(crate) fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// A ReplicaSet's `status.availableReplicas`.
pub(crate) fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// Sum of `spec.replicas` (`GetReplicaCountForReplicaSets`).
pub(crate) fn replica_count<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    sets.into_iter().map(rs_replicas).sum()
}

/// Sum of `status.availableReplicas` (`GetAvailableReplicaCountForReplicaSets`).
pub(crate) fn available_count<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    sets.into_iter().map(rs_available).sum()
}

/// Whether the Deployment uses the Recreate strategy (anything else rolls).
pub(crate) fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

/// `GetScaledValueFromIntOrPercent`: an int as is, `N%` of `total` rounded up or down.
pub(crate) fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(text) => {
            let percent: i64 = text
                .strip_suffix('%')
                .and_then(|digits| digits.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {text:?}"))?;
            let product = percent * i64::from(total);
            let scaled = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            Ok(i32::try_from(scaled).unwrap_or(i32::MAX))
        }
    }
}

/// `ResolveFenceposts`: (maxSurge, maxUnavailable) of a rolling update to `desired`
/// replicas; both zero would never progress, so maxUnavailable becomes 1.
pub(crate) fn fenceposts(d: &Deployment) -> Result<(i32, i32), String> {
    let desired = deployment_replicas(d);
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let quarter = IntOrString::String("25%".into());
    let surge = rolling
        .and_then(|r| r.max_surge.as_ref())
        .unwrap_or(&quarter);
    let unavailable = rolling
        .and_then(|r| r.max_unavailable.as_ref())
        .unwrap_or(&quarter);
    let surge = scaled_value(surge, desired, true)?;
    let unavailable = scaled_value(unavailable, desired, false)?;
    Ok(if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    })
}

/// `MaxSurge`: 0 for Recreate.
pub(crate) fn max_surge(d: &Deployment) -> Result<i32, String> {
    if is_recreate(d) {
        return Ok(0);
    }
    Ok(fenceposts(d)?.0)
}

/// `MaxUnavailable`: 0 for Recreate or no replicas, never more than `replicas`.
pub(crate) fn max_unavailable(d: &Deployment) -> Result<i32, String> {
    let desired = deployment_replicas(d);
    if is_recreate(d) || desired == 0 {
        return Ok(0);
    }
    Ok(fenceposts(d)?.1.min(desired))
}

/// 32-bit FNV-1a.
fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261_u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(16_777_619)
    })
}

/// `rand.SafeEncodeString`: each byte mapped onto letters and digits that never spell words.
fn safe_encode(text: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjkmnpqrstvwxz2456789";
    text.bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// `ComputeHash`: FNV-1a over the template (its JSON here; upstream hashes Go's printed
/// struct) and, once there has been a collision, the collision count as 8 little-endian
/// bytes, printed in decimal and safe-encoded.
pub(crate) fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(count) = collision_count {
        let mut le = [0u8; 8];
        le[..4].copy_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(&le);
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// The template without the pod-template-hash label (and no label map if that was its only
/// label), for comparing a ReplicaSet's template with a Deployment's.
fn without_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut copy = template.clone();
    if let Some(meta) = copy.metadata.as_mut()
        && let Some(labels) = meta.labels.as_mut()
    {
        labels.remove(POD_TEMPLATE_HASH);
        if labels.is_empty() {
            meta.labels = None;
        }
    }
    copy
}

/// `EqualIgnoreHash`: the two templates are the same but for the pod-template-hash label.
pub(crate) fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

/// The Deployment's template.
pub(crate) fn template(d: &Deployment) -> PodTemplateSpec {
    d.spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

fn rs_template(rs: &ReplicaSet) -> Option<&PodTemplateSpec> {
    rs.spec.as_ref().and_then(|s| s.template.as_ref())
}

/// Orders by creation time, then name (`ReplicaSetsByCreationTimestamp`).
pub(crate) fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> std::cmp::Ordering {
    let created = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    created(a)
        .cmp(&created(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// `FindNewReplicaSet`: the oldest ReplicaSet whose template is the Deployment's.
pub(crate) fn find_new(d: &Deployment, sets: &[ReplicaSet]) -> Option<usize> {
    let wanted = template(d);
    let mut indices: Vec<usize> = (0..sets.len()).collect();
    indices.sort_by(|a, b| by_creation(&sets[*a], &sets[*b]));
    indices
        .into_iter()
        .find(|i| rs_template(&sets[*i]).is_some_and(|t| equal_ignore_hash(t, &wanted)))
}

/// An annotation of a ReplicaSet.
pub(crate) fn annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The revision of a ReplicaSet (0 when missing or malformed).
pub(crate) fn revision(rs: &ReplicaSet) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// `MaxRevision` of the ReplicaSets.
pub(crate) fn max_revision<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    sets.into_iter().map(revision).max().unwrap_or(0)
}

/// `SetReplicasAnnotations`; true if they changed.
pub(crate) fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let value = value.to_string();
        if annotations.get(key) != Some(&value) {
            annotations.insert(key.to_string(), value);
            changed = true;
        }
    }
    changed
}

/// `ReplicasAnnotationsNeedUpdate`.
pub(crate) fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(rs, DESIRED_REPLICAS) != Some(desired.to_string().as_str())
        || annotation(rs, MAX_REPLICAS) != Some(max.to_string().as_str())
}

/// An int annotation (desired-replicas, max-replicas) of a ReplicaSet.
pub(crate) fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    annotation(rs, key).and_then(|v| v.parse().ok())
}

/// `copyDeploymentAnnotationsToReplicaSet` (user annotations such as
/// `kubernetes.io/change-cause` follow the template to its ReplicaSet); true if any changed.
fn copy_deployment_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in d.metadata.annotations.iter().flatten() {
        if NOT_COPIED.contains(&key.as_str()) || annotations.get(key) == Some(value) {
            continue;
        }
        annotations.insert(key.clone(), value.clone());
        changed = true;
    }
    changed
}

/// `SetNewReplicaSetAnnotations`: the Deployment's annotations, the revision `new_revision`
/// unless the set already has a higher one (a set brought back by a rollback keeps its old
/// revisions in `revision-history`), and for a set about to be created its replicas
/// annotations. True if anything changed.
pub(crate) fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> Result<bool, String> {
    let mut changed = copy_deployment_annotations(d, rs);
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let old = annotations.get(REVISION).cloned();
    let old_revision = match old.as_deref() {
        None | Some("") => 0,
        Some(text) => match text.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return Ok(false),
        },
    };
    if old_revision < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = annotations
                .get(REVISION_HISTORY)
                .cloned()
                .unwrap_or_default();
            if let Some(history) = appended_history(&history, &old) {
                annotations.insert(REVISION_HISTORY.into(), history);
            }
        }
    }
    if !exists {
        let desired = deployment_replicas(d);
        changed |= set_replicas_annotations(rs, desired, desired + max_surge(d)?);
    }
    Ok(changed)
}

/// `history` with `old` appended, dropping the oldest entries to stay under the limit.
fn appended_history(history: &str, old: &str) -> Option<String> {
    if history.is_empty() {
        return Some(old.to_string());
    }
    let mut revisions: Vec<&str> = history.split(',').collect();
    let mut total = history.len() + old.len() + 1;
    while total > MAX_REVISION_HISTORY_CHARS && !revisions.is_empty() {
        total -= revisions.remove(0).len() + 1;
    }
    (total <= MAX_REVISION_HISTORY_CHARS).then(|| {
        revisions.push(old);
        revisions.join(",")
    })
}

#[cfg(test)]
pub(crate) mod tests;
