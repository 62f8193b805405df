//! ControllerRevisions: the recorded versions of a workload's template, as
//! kube-controller-manager's `pkg/controller/history` keeps them for StatefulSets (and
//! DaemonSets).
//!
//! A revision is named `<parent>-<hash>`, the hash being FNV-1 32 over its data and the
//! parent's collision count, encoded with `rand.SafeEncodeString`; two revisions are equal
//! when their data are. `kubectl rollout history` lists the revisions a parent controls, and
//! `kubectl rollout undo` patches the parent with a revision's data.

use std::collections::BTreeMap;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::PostParams;
use kube::{Api, ResourceExt as _};

use crate::merge_patch::MergePatch;
use crate::reconcile_error::{ReconcileError, is_already_exists};

/// The label holding a revision's hash (`ControllerRevisionHashLabel`).
pub(crate) const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// Longest name prefix kept before the hash (`ControllerRevisionName`).
const MAX_PREFIX: usize = 223;

/// `HashControllerRevision`: the hash of `data` (its JSON) and the collision count `probe`.
pub(crate) fn hash_revision(data: &serde_json::Value, probe: Option<i32>) -> String {
    let mut hash = Fnv1::new();
    // A Value always serializes; an empty write is what Go does for empty data.
    hash.write(&serde_json::to_vec(data).unwrap_or_default());
    if let Some(probe) = probe {
        hash.write(probe.to_string().as_bytes());
    }
    safe_encode(&hash.finish().to_string())
}

/// `ControllerRevisionName`: `<prefix>-<hash>`, the prefix cut to 223 characters.
pub(crate) fn revision_name(prefix: &str, hash: &str) -> String {
    let prefix: String = prefix.chars().take(MAX_PREFIX).collect();
    format!("{prefix}-{hash}")
}

/// `NewControllerRevision`: a revision of `data` owned by `owner`, labelled with `labels` and
/// the hash, named after the parent.
pub(crate) fn new_revision(
    owner: OwnerReference,
    namespace: &str,
    mut labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    data: serde_json::Value,
    revision: i64,
    collision_count: i32,
) -> ControllerRevision {
    let hash = hash_revision(&data, Some(collision_count));
    labels.insert(HASH_LABEL.into(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(&owner.name, &hash)),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// `SortControllerRevisions`: by revision number, then creation time, then name.
pub(crate) fn sort_revisions(revisions: &mut [ControllerRevision]) {
    revisions.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| {
                a.metadata
                    .creation_timestamp
                    .cmp(&b.metadata.creation_timestamp)
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// `FindEqualRevisions`: the revisions whose data equal `needle`'s.
pub(crate) fn equal_revisions<'a>(
    revisions: &'a [ControllerRevision],
    needle: &ControllerRevision,
) -> Vec<&'a ControllerRevision> {
    revisions
        .iter()
        .filter(|revision| revision.data == needle.data)
        .collect()
}

/// `nextRevision`: one more than the highest revision number (1 for the first).
pub(crate) fn next_revision(revisions: &[ControllerRevision]) -> i64 {
    revisions
        .iter()
        .map(|revision| revision.revision)
        .max()
        .unwrap_or(0)
        + 1
}

/// `CreateControllerRevision`: creates `revision` under its hashed name. A revision of that
/// name with equal data is returned as is; one with other data is a hash collision, so
/// `collision_count` is raised and the name hashed again.
pub(crate) async fn create_revision(
    api: &Api<ControllerRevision>,
    revision: &ControllerRevision,
    collision_count: &mut i32,
) -> Result<ControllerRevision, ReconcileError> {
    let data = revision
        .data
        .clone()
        .unwrap_or(RawExtension(serde_json::Value::Null));
    let owner = revision
        .owner_references()
        .first()
        .map(|owner| owner.name.clone())
        .unwrap_or_default();
    loop {
        let hash = hash_revision(&data.0, Some(*collision_count));
        let mut candidate = revision.clone();
        candidate.metadata.name = Some(revision_name(&owner, &hash));
        candidate
            .metadata
            .labels
            .get_or_insert_default()
            .insert(HASH_LABEL.into(), hash);
        match api.create(&PostParams::default(), &candidate).await {
            Ok(created) => return Ok(created),
            Err(error) if is_already_exists(&error) => {
                let existing = api
                    .get(&candidate.name_any())
                    .await
                    .context("reading a ControllerRevision that already exists")?;
                if existing.data.as_ref() == Some(&data) {
                    return Ok(existing);
                }
                *collision_count = collision_count.saturating_add(1);
            }
            Err(error) => {
                return Err(anyhow::Error::from(error)
                    .context("creating a ControllerRevision")
                    .into());
            }
        }
    }
}

/// `UpdateControllerRevision`: gives an existing revision a new revision number (a template
/// rolled back to becomes the newest revision again).
pub(crate) async fn renumber_revision(
    api: &Api<ControllerRevision>,
    revision: &ControllerRevision,
    number: i64,
) -> Result<ControllerRevision, ReconcileError> {
    let patch = serde_json::json!({ "revision": number });
    Ok(api
        .merge_patch(&revision.name_any(), &patch)
        .await
        .context("renumbering a ControllerRevision")?)
}

/// 32-bit FNV-1 (Go's `fnv.New32`).
struct Fnv1(u32);

impl Fnv1 {
    fn new() -> Self {
        Self(0x811c_9dc5)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.wrapping_mul(0x0100_0193) ^ u32::from(*byte);
        }
    }

    fn finish(&self) -> u32 {
        self.0
    }
}

/// Go's `rand.SafeEncodeString`: maps each byte onto an alphabet without vowels.
fn safe_encode(text: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    text.bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "StatefulSet".into(),
            name: "web".into(),
            uid: "uid".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn revision(data: serde_json::Value, number: i64, collisions: i32) -> ControllerRevision {
        new_revision(
            owner(),
            "default",
            BTreeMap::from([("app".to_string(), "nginx".to_string())]),
            BTreeMap::new(),
            data,
            number,
            collisions,
        )
    }

    #[test]
    fn fnv1_matches_reference_values() {
        // Go: fnv.New32() over "a" → 0x050c5d7e.
        let mut hash = Fnv1::new();
        hash.write(b"a");
        assert_eq!(hash.finish(), 0x050c_5d7e);
    }

    #[test]
    fn names_carry_the_hash_of_data_and_collision_count() {
        let first = revision(json!({"spec": {"template": {"x": 1}}}), 1, 0);
        let name = first.metadata.name.clone().unwrap();
        let hash = &first.metadata.labels.as_ref().unwrap()[HASH_LABEL];
        assert_eq!(name, format!("web-{hash}"));
        assert!(
            hash.bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
        );
        let collided = revision(json!({"spec": {"template": {"x": 1}}}), 1, 1);
        assert_ne!(collided.metadata.name, first.metadata.name);
        let other = revision(json!({"spec": {"template": {"x": 2}}}), 1, 0);
        assert_ne!(other.metadata.name, first.metadata.name);
        assert_eq!(revision_name(&"a".repeat(300), "h").len(), MAX_PREFIX + 2);
    }

    #[test]
    fn equal_revisions_compare_data_and_numbers_grow() {
        let mut revisions = vec![
            revision(json!({"v": 2}), 3, 0),
            revision(json!({"v": 1}), 1, 0),
        ];
        sort_revisions(&mut revisions);
        assert_eq!(revisions[0].revision, 1);
        assert_eq!(next_revision(&revisions), 4);
        assert_eq!(next_revision(&[]), 1);
        let needle = revision(json!({"v": 1}), 9, 0);
        let equal = equal_revisions(&revisions, &needle);
        assert_eq!(equal.len(), 1);
        assert_eq!(equal[0].revision, 1);
    }
}
