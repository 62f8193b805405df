//! Reading a workload object again once its pods have been listed.
//!
//! kube-runtime hands a reconcile the object as the watch cache held it when the reconcile was
//! scheduled, and the reconcile then lists the pods live. Between the two, a user can change
//! the template and delete the pods (`kubectl apply -f new.yaml; kubectl delete pod -l
//! app=x`): the live list shows the deletions, and replacements made from the cached object
//! would come from the old template, forever (a ReplicaSet never replaces a pod for its
//! template). kube-controller-manager narrows this window with informer caches and
//! expectations; here the object is read from the API server *after* the pod list, so every
//! pod change the list shows happened before the read, and the object the reconcile acts on
//! is at least as new as every event it acts on.

use std::fmt::Debug;

use anyhow::Context as _;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::{Api, Resource};

use crate::reconcile_error::ReconcileError;

/// The object `name` as the API server holds it now, or `None` when it is gone. Call it after
/// listing the pods that the reconcile will act on (see the module documentation).
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
