//! Persistent volumes: the default StorageClass, a provisioner and the PV/PVC binder.
//!
//! What kube-controller-manager's PersistentVolume controller and an external provisioner
//! (kind's local-path-provisioner) do together, as two kube-runtime controllers:
//! - `claims`: defaults a claim's class, binds claims to volumes, provisions volumes;
//! - `volumes`: keeps volume phases and deletes released volumes of reclaim policy Delete.
//!
//! The provisioner's name is `k8s-labs.io/local-path`; its volumes are `hostPath`
//! directories `<volume dir>/pvc-<claim uid>` (type `DirectoryOrCreate`) that the node agent
//! creates when it mounts them; the controllers never touch the filesystem.

mod binding;
mod claims;
mod provision;
mod quantity;
mod storage_class;
mod volumes;

use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::reconcile_error::is_already_exists;

pub(crate) use claims::ClaimContext;
pub(crate) use claims::run as run_claims;
pub(crate) use volumes::run as run_volumes;

/// Creates StorageClass `standard` unless it exists (a class of that name that the user made
/// is left as it is, as with `kubectl apply` of kind's provisioner manifest).
pub(crate) async fn ensure_default_storage_class(client: &Client) -> anyhow::Result<()> {
    let classes = Api::<StorageClass>::all(client.clone());
    match classes
        .create(
            &PostParams::default(),
            &storage_class::default_storage_class(),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if is_already_exists(&error) => Ok(()),
        Err(error) => Err(anyhow::Error::from(error).context("creating the default StorageClass")),
    }
}
