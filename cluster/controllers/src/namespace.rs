//! The namespace controller: empties a namespace being deleted, then lets it go.
//!
//! When a namespace has a deletionTimestamp, every namespaced object in it is deleted (the
//! resources come from discovery: everything with `list` and `delete` verbs, pods first and
//! gracefully, so the node agent stops them), and once nothing is left the `kubernetes`
//! finalizer is removed through `PUT /api/v1/namespaces/{name}/finalize`, after which the API
//! server removes the namespace — the same protocol as kube-controller-manager's.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{Discovery, Scope, verbs};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt as _};

use crate::controller_loop::{Context, FailureLog, controller_of_all, run_controller};
use crate::reconcile_error::{ReconcileError, is_not_found};

/// The finalizer the API server puts on every namespace and this controller removes.
const KUBERNETES_FINALIZER: &str = "kubernetes";
/// Objects other than pods that outlive their delete call (they carry finalizers of other
/// controllers) have no watch here; look again after this long, as the upstream controller
/// does with its estimate.
const RECHECK_LINGERING_OBJECTS: Duration = Duration::from_secs(1);

/// Objects appeared after the delete pass (the API server refuses new ones in a terminating
/// namespace, but events and objects created just before can still show up): delete again.
const DELETE_AGAIN: Duration = Duration::from_millis(50);

/// Runs the controller until `shutdown` resolves.
pub(crate) async fn run(
    client: Client,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = controller_of_all::<Namespace>(&client)
        // A pod going away may be the last thing a terminating namespace waits for.
        .watches(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default(),
            |pod: Pod| {
                pod.metadata
                    .namespace
                    .map(|namespace| ObjectRef::<Namespace>::new(&namespace))
            },
        );
    let context = Arc::new(Context { client });
    run_controller(
        controller,
        reconcile,
        context,
        shutdown,
        "namespace controller",
        FailureLog::Trace,
    )
    .await;
}

fn has_kubernetes_finalizer(namespace: &Namespace) -> bool {
    namespace
        .spec
        .as_ref()
        .and_then(|spec| spec.finalizers.as_ref())
        .is_some_and(|finalizers| finalizers.iter().any(|f| f == KUBERNETES_FINALIZER))
}

async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if namespace.metadata.deletion_timestamp.is_none() || !has_kubernetes_finalizer(&namespace) {
        return Ok(Action::await_change());
    }
    let name = namespace.name_any();
    let resources = namespaced_resources(&ctx.client).await?;

    for resource in &resources {
        delete_all(&ctx.client, &name, resource).await?;
    }
    // Count what is still there: pods finishing their graceful termination, objects held
    // by finalizers, and objects created after the pass above (e.g. events about the pods).
    let mut remaining_pods = 0;
    let mut lingering_others = 0;
    let mut created_meanwhile = 0;
    for resource in &resources {
        for item in list(&ctx.client, &name, resource).await? {
            if item.metadata.deletion_timestamp.is_none() {
                created_meanwhile += 1;
            } else if is_pods(resource) {
                remaining_pods += 1;
            } else {
                lingering_others += 1;
            }
        }
    }
    if created_meanwhile > 0 {
        return Ok(Action::requeue(DELETE_AGAIN));
    }
    if lingering_others > 0 {
        return Ok(Action::requeue(RECHECK_LINGERING_OBJECTS));
    }
    if remaining_pods > 0 {
        return Ok(Action::await_change()); // the pod watch brings us back
    }
    finalize(&ctx.client, &namespace).await?;
    Ok(Action::await_change())
}

fn is_pods(resource: &ApiResource) -> bool {
    resource.group.is_empty() && resource.plural == "pods"
}

async fn list(
    client: &Client,
    namespace: &str,
    resource: &ApiResource,
) -> Result<Vec<DynamicObject>, ReconcileError> {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, resource);
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list.items),
        Err(error) if is_not_found(&error) => Ok(Vec::new()),
        Err(error) => Err(anyhow::Error::from(error)
            .context(format!("listing {}", resource.plural))
            .into()),
    }
}

/// Deletes every object of `resource` in the namespace that is not being deleted already.
async fn delete_all(
    client: &Client,
    namespace: &str,
    resource: &ApiResource,
) -> Result<(), ReconcileError> {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, resource);
    // Pods are deleted gracefully (the node agent stops them and finishes the deletion);
    // everything else goes at once, its dependents in the background.
    let params = if is_pods(resource) {
        DeleteParams::default()
    } else {
        DeleteParams::background()
    };
    for item in list(client, namespace, resource).await? {
        if item.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match api.delete(&item.name_any(), &params).await {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => {
                return Err(anyhow::Error::from(error)
                    .context(format!("deleting {} {}", resource.plural, item.name_any()))
                    .into());
            }
        }
    }
    Ok(())
}

/// Every namespaced resource that can be listed and deleted, pods first.
async fn namespaced_resources(client: &Client) -> Result<Vec<ApiResource>, ReconcileError> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .context("discovering the API resources")?;
    let mut resources: Vec<ApiResource> = discovery
        .groups()
        .flat_map(|group| group.recommended_resources())
        .filter(|(_, capabilities)| {
            capabilities.scope == Scope::Namespaced
                && capabilities.supports_operation(verbs::LIST)
                && capabilities.supports_operation(verbs::DELETE)
        })
        .map(|(resource, _)| resource)
        .collect();
    resources.sort_by_key(|resource| !is_pods(resource));
    Ok(resources)
}

/// Removes the `kubernetes` finalizer through the finalize subresource.
async fn finalize(client: &Client, namespace: &Namespace) -> Result<(), ReconcileError> {
    let mut finalized = namespace.clone();
    if let Some(spec) = finalized.spec.as_mut() {
        spec.finalizers = spec.finalizers.take().map(|finalizers| {
            finalizers
                .into_iter()
                .filter(|f| f != KUBERNETES_FINALIZER)
                .collect()
        });
    }
    let api = Api::<Namespace>::all(client.clone());
    match api
        .replace_subresource(
            "finalize",
            &namespace.name_any(),
            &PostParams::default(),
            &finalized,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if is_not_found(&error) => Ok(()),
        Err(error) => Err(anyhow::Error::from(error)
            .context("finalizing the namespace")
            .into()),
    }
}
