//! What the lab reads from claims, volumes and pods about storage, and how `kubectl get
//! pvc` / `kubectl get pv` print them.

use k8s_labs_harness::expect::Redactions;
use k8s_labs_harness::workload::pvc_phase;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::ResourceExt;

use crate::TEMPLATE;

/// The volume a claim is bound to.
pub(crate) fn volume_name(claim: &PersistentVolumeClaim) -> Option<String> {
    claim.spec.as_ref()?.volume_name.clone()
}

/// The claim a pod mounts as volume `www`.
pub(crate) fn claim_of(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()?
        .volumes
        .as_ref()?
        .iter()
        .find(|volume| volume.name == TEMPLATE)?
        .persistent_volume_claim
        .as_ref()
        .map(|claim| claim.claim_name.clone())
}

/// kubectl's short names of access modes (`RWO`).
fn access_modes(modes: Option<&Vec<String>>) -> String {
    let short: Vec<&str> = modes
        .map(|modes| modes.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|mode| match mode.as_str() {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    short.join(",")
}

/// Rows as kubectl prints them: each column as wide as its widest cell plus 3 spaces. Cells
/// are redacted first, so that a column of `pvc-<uid>` names is as wide as `pvc-[UUID]` and
/// the golden files stay readable.
fn columns(rows: &[Vec<String>], redactions: &Redactions) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| redactions.apply(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        for (index, cell) in row.iter().enumerate() {
            let width = cell.chars().count();
            match widths.get_mut(index) {
                Some(widest) => *widest = (*widest).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut text = String::new();
    for row in &rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}   "));
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `kubectl get pvc`: NAME STATUS VOLUME CAPACITY ACCESS MODES (the storage class differs
/// between clusters and has its own step).
pub(crate) fn claims_table(claims: &[PersistentVolumeClaim], redactions: &Redactions) -> String {
    let mut rows = vec![
        ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES"]
            .map(String::from)
            .to_vec(),
    ];
    for claim in claims {
        let status = claim.status.as_ref();
        let capacity = status
            .and_then(|status| status.capacity.as_ref())
            .and_then(|capacity| capacity.get("storage"))
            .map(|quantity| quantity.0.clone())
            .unwrap_or_default();
        rows.push(vec![
            claim.name_any(),
            pvc_phase(claim).to_string(),
            volume_name(claim).unwrap_or_default(),
            capacity,
            access_modes(status.and_then(|status| status.access_modes.as_ref())),
        ]);
    }
    columns(&rows, redactions)
}

/// `kubectl get pv`: NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM.
pub(crate) fn volumes_table(volumes: &[PersistentVolume], redactions: &Redactions) -> String {
    let mut rows = vec![
        [
            "NAME",
            "CAPACITY",
            "ACCESS MODES",
            "RECLAIM POLICY",
            "STATUS",
            "CLAIM",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for volume in volumes {
        let spec = volume.spec.as_ref();
        let capacity = spec
            .and_then(|spec| spec.capacity.as_ref())
            .and_then(|capacity| capacity.get("storage"))
            .map(|quantity| quantity.0.clone())
            .unwrap_or_default();
        let claim = spec
            .and_then(|spec| spec.claim_ref.as_ref())
            .map(|claim| {
                format!(
                    "{}/{}",
                    claim.namespace.as_deref().unwrap_or_default(),
                    claim.name.as_deref().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        rows.push(vec![
            volume.name_any(),
            capacity,
            access_modes(spec.and_then(|spec| spec.access_modes.as_ref())),
            spec.and_then(|spec| spec.persistent_volume_reclaim_policy.clone())
                .unwrap_or_default(),
            volume
                .status
                .as_ref()
                .and_then(|status| status.phase.clone())
                .unwrap_or_default(),
            claim,
        ]);
    }
    columns(&rows, redactions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, PersistentVolumeClaimStatus};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn the_claims_table_reads_like_kubectl_get_pvc_with_the_volume_redacted() {
        let mut claim = PersistentVolumeClaim::default();
        claim.metadata.name = Some("www-nginx-0".into());
        claim.spec = Some(PersistentVolumeClaimSpec {
            volume_name: Some("pvc-6f1c1a52-0c1e-4b8e-9d2a-3f4b5c6d7e8f".into()),
            ..Default::default()
        });
        claim.status = Some(PersistentVolumeClaimStatus {
            phase: Some("Bound".into()),
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            capacity: Some([("storage".to_string(), Quantity("1Gi".into()))].into()),
            ..Default::default()
        });
        assert_eq!(
            claims_table(&[claim], &Redactions::new()),
            "NAME          STATUS   VOLUME       CAPACITY   ACCESS MODES\n\
             www-nginx-0   Bound    pvc-[UUID]   1Gi        RWO\n"
        );
    }

    #[test]
    fn a_pod_without_the_template_volume_mounts_no_claim() {
        assert_eq!(claim_of(&Pod::default()), None);
    }
}
