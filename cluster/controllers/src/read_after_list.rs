//! Reading a workload object again once its pods have been taken from the pod cache.
//!
//! kube-runtime hands a reconcile the object as the controller's own watch cache held it when
//! the reconcile was scheduled, and the reconcile takes the pods from the shared pod
//! informer's cache, a different watch. The two caches lag independently: a user can change
//! the template and delete the pods (`kubectl apply -f new.yaml; kubectl delete pod -l
//! app=x`), and the pod cache can show the deletions while the object's cache still holds
//! the old template. Replacements made from the cached object would come from the old
//! template, forever: a ReplicaSet never replaces a pod for its template, and a StatefulSet
//! whose pod already carries the newest revision name (the revision is computed from the
//! object the pass holds) does not either.
//!
//! kube-controller-manager reads both from informers and lets the object's update trigger a
//! new pass. That pass comes, but it finds the right number of pods and does nothing: it
//! narrows the window, it does not close it. So here the object is read from the API server
//! *after* the pods are taken from the cache. A pod event reaches the cache only after the
//! API server committed it, and the GET returns the object as committed when it is served,
//! later; so every pod change the pass acts on happened before the read, and the object the
//! pass acts on is at least as new as every event it acts on (the same guarantee as when
//! each pass listed the pods live before the read). It costs one GET of one object per pass,
//! which does not grow with the pods as the pod LIST it replaces did.
//! (`tests/replicaset.rs` and `tests/statefulset.rs` hold the controller's watch of its kind
//! to make the object's cache stale while the pods are deleted, and check the replacements.)

use std::fmt::Debug;

use anyhow::Context as _;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::{Api, Resource};

use crate::reconcile_error::ReconcileError;

/// The object `name` as the API server holds it now, or `None` when it is gone. Call it after
/// taking the pods that the reconcile will act on (see the module documentation).
pub(crate) async fn read_after_list<K>(
    api: &Api<K>,
    name: &str,
) -> Result<Option<K>, ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let kind = K::kind(&());
    Ok(api
        .get_opt(name)
        .await
        .with_context(|| format!("reading {kind} {name} after listing its pods"))?)
}
