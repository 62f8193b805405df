//! The Endpoints and EndpointSlice controllers (run as one: both follow Services and pods).
//!
//! A Service is reconciled when it changes, when a pod it selects changes (the mapping uses
//! the controller's own Service store), and when its Endpoints or EndpointSlices change (so
//! a hand edit is put back). Objects are written only when their content differs, so the
//! controller's own writes do not start a loop.

mod desired;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, Resource as _, ResourceExt as _};

use crate::controller_loop::{Context, FailureLog, controller_of_all, run_controller};
use crate::reconcile_error::{ReconcileError, is_already_exists, is_not_found};
use desired::{
    HEADLESS_LABEL, SliceContent, endpoints_subsets, is_headless, selector, selects, slice_contents,
};

/// Ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Marks the slices this controller manages (others, e.g. hand-made ones, are left alone).
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// Runs the controller (and the clean-up of deleted Services) until `shutdown` resolves.
pub(crate) async fn run(
    client: Client,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = controller_of_all::<Service>(&client);
    let services = controller.store();
    // The slices as they are now, to find the Services a pod used to be an endpoint of
    // (after its labels change, the selector no longer leads there).
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let slices_reflector = reflector::reflector(
        slices_writer,
        watcher(
            Api::<EndpointSlice>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .for_each(|_| async {});
    let controller = controller
        .watches(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default(),
            move |pod: Pod| services_of_pod(&services, &slices, &pod),
        )
        .watches(
            Api::<Endpoints>::all(client.clone()),
            watcher::Config::default(),
            |endpoints: Endpoints| same_named_service(&endpoints.metadata),
        )
        .owns(
            Api::<EndpointSlice>::all(client.clone()),
            watcher::Config::default(),
        );
    let context = Arc::new(Context {
        client: client.clone(),
    });
    let reconciling = run_controller(
        controller,
        reconcile,
        context,
        shutdown,
        "endpoints controller",
        FailureLog::Trace,
    );
    let cleanup = remove_endpoints_of_deleted_services(client);
    // The clean-up watch never ends on its own; the controller ends at shutdown.
    tokio::select! {
        () = reconciling => {}
        () = cleanup => {}
        () = slices_reflector => {}
    }
}

/// The Services a pod change concerns: those selecting it now, and those whose slices
/// still list it.
fn services_of_pod(
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
    pod: &Pod,
) -> Vec<ObjectRef<Service>> {
    let mut affected: Vec<ObjectRef<Service>> = services
        .state()
        .into_iter()
        .filter(|service| selects(service, pod))
        .map(|service| ObjectRef::from_obj(service.as_ref()))
        .collect();
    let (Some(uid), Some(namespace)) = (
        pod.metadata.uid.as_deref(),
        pod.metadata.namespace.as_deref(),
    ) else {
        return affected;
    };
    for slice in slices.state() {
        let lists_pod = slice.metadata.namespace.as_deref() == Some(namespace)
            && slice.endpoints.iter().any(|endpoint| {
                endpoint
                    .target_ref
                    .as_ref()
                    .and_then(|target| target.uid.as_deref())
                    == Some(uid)
            });
        let service_name = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(SERVICE_NAME_LABEL));
        if let (true, Some(service_name)) = (lists_pod, service_name) {
            let reference = ObjectRef::new(service_name).within(namespace);
            if !affected.contains(&reference) {
                affected.push(reference);
            }
        }
    }
    affected
}

fn same_named_service(metadata: &ObjectMeta) -> Option<ObjectRef<Service>> {
    Some(ObjectRef::new(metadata.name.as_deref()?).within(metadata.namespace.as_deref()?))
}

async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if selector(&service).is_none() || service.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = service.namespace().context("Service without namespace")?;
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &namespace)
        .list(&ListParams::default())
        .await
        .context("listing pods")?
        .items;
    sync_endpoints(&ctx.client, &service, &namespace, &pods).await?;
    sync_slices(&ctx.client, &service, &namespace, &pods).await?;
    Ok(Action::await_change())
}

/// The labels both objects carry: the Service's own, plus the headless marker.
fn common_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.labels().clone();
    if is_headless(service) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels
}

async fn sync_endpoints(
    client: &Client,
    service: &Service,
    namespace: &str,
    pods: &[Pod],
) -> Result<(), ReconcileError> {
    let api = Api::<Endpoints>::namespaced(client.clone(), namespace);
    let name = service.name_any();
    let subsets = endpoints_subsets(service, pods);
    let subsets = (!subsets.is_empty()).then_some(subsets);
    let labels = common_labels(service);
    match api.get_opt(&name).await.context("reading Endpoints")? {
        None => {
            let endpoints = Endpoints {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.to_string()),
                    labels: Some(labels),
                    ..ObjectMeta::default()
                },
                subsets,
            };
            match api.create(&PostParams::default(), &endpoints).await {
                Ok(_) => Ok(()),
                Err(error) if is_already_exists(&error) => {
                    Err(anyhow::anyhow!("Endpoints {name} appeared meanwhile").into())
                }
                Err(error) => Err(anyhow::Error::from(error)
                    .context("creating Endpoints")
                    .into()),
            }
        }
        Some(mut current) => {
            let same_subsets =
                current.subsets.as_ref().filter(|s| !s.is_empty()) == subsets.as_ref();
            if same_subsets && current.metadata.labels.clone().unwrap_or_default() == labels {
                return Ok(());
            }
            current.subsets = subsets;
            current.metadata.labels = Some(labels);
            api.replace(&name, &PostParams::default(), &current)
                .await
                .context("updating Endpoints")?;
            Ok(())
        }
    }
}

fn slice_owner(service: &Service) -> Result<OwnerReference, ReconcileError> {
    Ok(OwnerReference {
        api_version: Service::api_version(&()).into_owned(),
        kind: Service::kind(&()).into_owned(),
        name: service.name_any(),
        uid: service.uid().context("Service without uid")?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = common_labels(service);
    labels.insert(SERVICE_NAME_LABEL.into(), service.name_any());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels
}

fn content_of(slice: &EndpointSlice) -> SliceContent {
    SliceContent {
        ports: slice.ports.clone().unwrap_or_default(),
        endpoints: slice.endpoints.clone(),
    }
}

/// Brings the managed slices to `slice_contents`: slices whose ports match are kept (and
/// updated if their endpoints differ), missing ones created, extra ones deleted.
async fn sync_slices(
    client: &Client,
    service: &Service,
    namespace: &str,
    pods: &[Pod],
) -> Result<(), ReconcileError> {
    let api = Api::<EndpointSlice>::namespaced(client.clone(), namespace);
    let selector = format!(
        "{SERVICE_NAME_LABEL}={},{MANAGED_BY_LABEL}={MANAGED_BY}",
        service.name_any()
    );
    let mut existing = api
        .list(&ListParams::default().labels(&selector))
        .await
        .context("listing EndpointSlices")?
        .items;
    let labels = slice_labels(service);
    let owner = slice_owner(service)?;
    let up_to_date = |slice: &EndpointSlice, content: &SliceContent| {
        content_of(slice) == *content
            && slice.address_type == "IPv4"
            && slice.metadata.labels.as_ref() == Some(&labels)
            && slice.metadata.owner_references.as_deref() == Some(std::slice::from_ref(&owner))
    };

    let mut unplaced = Vec::new();
    for content in slice_contents(service, pods) {
        match existing
            .iter()
            .position(|slice| slice.ports.clone().unwrap_or_default() == content.ports)
        {
            Some(index) => {
                let slice = existing.swap_remove(index);
                if !up_to_date(&slice, &content) {
                    write_slice(&api, Some(slice), &content, &labels, &owner, service).await?;
                }
            }
            None => unplaced.push(content),
        }
    }
    for content in unplaced {
        // Reuse a slice whose ports no longer occur before creating a new one.
        let reused = existing.pop();
        write_slice(&api, reused, &content, &labels, &owner, service).await?;
    }
    for extra in existing {
        match api
            .delete(&extra.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

async fn write_slice(
    api: &Api<EndpointSlice>,
    current: Option<EndpointSlice>,
    content: &SliceContent,
    labels: &BTreeMap<String, String>,
    owner: &OwnerReference,
    service: &Service,
) -> Result<(), ReconcileError> {
    let ports = (!content.ports.is_empty()).then(|| content.ports.clone());
    match current {
        Some(mut slice) => {
            slice.ports = ports;
            slice.endpoints = content.endpoints.clone();
            slice.address_type = "IPv4".into();
            slice.metadata.labels = Some(labels.clone());
            slice.metadata.owner_references = Some(vec![owner.clone()]);
            api.replace(&slice.name_any(), &PostParams::default(), &slice)
                .await
                .context("updating an EndpointSlice")?;
        }
        None => {
            let slice = EndpointSlice {
                metadata: ObjectMeta {
                    generate_name: Some(format!("{}-", service.name_any())),
                    namespace: service.namespace(),
                    labels: Some(labels.clone()),
                    owner_references: Some(vec![owner.clone()]),
                    ..ObjectMeta::default()
                },
                address_type: "IPv4".into(),
                endpoints: content.endpoints.clone(),
                ports,
            };
            api.create(&PostParams::default(), &slice)
                .await
                .context("creating an EndpointSlice")?;
        }
    }
    Ok(())
}

/// Endpoints have no owner reference (as in Kubernetes), so the controller removes them when
/// their Service goes; the managed slices go with it too rather than waiting for the GC.
async fn remove_endpoints_of_deleted_services(client: Client) {
    let deletions = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    futures::pin_mut!(deletions);
    while let Some(event) = deletions.next().await {
        let Ok(watcher::Event::Delete(service)) = event else {
            continue;
        };
        if let Err(error) = remove_endpoints_of(&client, &service).await {
            tracing::debug!(%error, "removing the endpoints of a deleted Service");
        }
    }
}

async fn remove_endpoints_of(client: &Client, service: &Service) -> anyhow::Result<()> {
    let namespace = service.namespace().context("Service without namespace")?;
    let name = service.name_any();
    if Api::<Service>::namespaced(client.clone(), &namespace)
        .get_opt(&name)
        .await?
        .is_some()
    {
        return Ok(()); // recreated meanwhile: the controller owns its endpoints now
    }
    let endpoints = Api::<Endpoints>::namespaced(client.clone(), &namespace);
    match endpoints.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(error) if is_not_found(&error) => {}
        Err(error) => return Err(error.into()),
    }
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), &namespace);
    let selector = format!("{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}");
    for slice in slices
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
    {
        match slices
            .delete(&slice.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}
