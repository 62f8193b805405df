//! The Job controller: runs a Job's pods to completion, as kube-controller-manager's
//! `pkg/controller/job` does for NonIndexed Jobs: `parallelism` pods at a time until
//! `completions` have succeeded (`SuccessCriteriaMet`, then `Complete`), or until more than
//! `backoffLimit` have failed or `activeDeadlineSeconds` has passed (`FailureTarget`, the
//! running pods deleted, then `Failed`). A failed pod is replaced after a backoff of 10s,
//! doubled per failure since the last success. A finished Job with
//! `ttlSecondsAfterFinished` is deleted once that has passed, as the TTL-after-finished
//! controller does (foreground propagation: the pods go first).
//!
//! Each pass lists the Job's pods live and then reads the Job again (see
//! [`crate::read_after_list`]); the decisions are in [`plan`], the API writes here.

mod plan;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions, PropagationPolicy};
use kube::core::{Selector, SelectorExt as _};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource as _, ResourceExt as _};

use crate::controller_loop::{Context, FailureLog, controller_of_all, run_controller};
use crate::controller_ref::{apply_claim, claim, controller_of};
use crate::events::{Note, record};
use crate::read_after_list::read_after_list;
use crate::reconcile_error::{ReconcileError, is_not_found};

/// The component named in the Job controller's events.
const COMPONENT: &str = "job-controller";

/// Runs the controller until `shutdown` resolves.
pub(crate) async fn run(
    client: Client,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = controller_of_all::<Job>(&client).watches(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        |pod: Pod| job_of_pod(&pod),
    );
    let context = Arc::new(Context { client });
    run_controller(
        controller,
        reconcile,
        context,
        shutdown,
        "job controller",
        FailureLog::Debug,
    )
    .await;
}

/// The Job a pod change concerns: its controller, if that is a Job.
fn job_of_pod(pod: &Pod) -> Option<ObjectRef<Job>> {
    let owner = controller_of(pod)?;
    (owner.kind == "Job" && owner.api_version.starts_with("batch/")).then(|| {
        ObjectRef::new(&owner.name).within(pod.metadata.namespace.as_deref().unwrap_or_default())
    })
}

async fn reconcile(cached: Arc<Job>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let namespace = cached
        .metadata
        .namespace
        .as_deref()
        .context("Job without namespace")?;
    let jobs_api = Api::<Job>::namespaced(ctx.client.clone(), namespace);
    let pods_api = Api::<Pod>::namespaced(ctx.client.clone(), namespace);
    let selector = selector_of(&cached)?;
    let pods = pods_api
        .list(&ListParams::default().labels_from(&selector))
        .await
        .context("listing the Job's pods")?
        .items;
    let Some(job) = read_after_list(&jobs_api, &cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let now = jiff::Timestamp::now();
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if plan::is_finished(&job) {
        return expire(&jobs_api, &job, now).await;
    }
    let selector = selector_of(&job)?;
    let owned = apply_claim(
        &pods_api,
        owner_reference(&job)?,
        claim(&job.metadata, &pods, |pod| {
            selector.matches(pod.metadata.labels.as_ref().unwrap_or(&Default::default()))
        }),
    )
    .await?;
    let plan = plan::plan(&job, &owned, now);
    delete_pods(&ctx.client, &pods_api, &job, &plan.delete).await?;
    create_pods(&ctx.client, &pods_api, &job, plan.create).await?;
    if job.status.as_ref() != Some(&plan.status) {
        let mut updated = job.clone();
        updated.status = Some(plan.status.clone());
        jobs_api
            .replace_status(&job.name_any(), &PostParams::default(), &updated)
            .await
            .context("updating the Job status")?;
        for note in &plan.notes {
            record(&ctx.client, COMPONENT, &job, note).await;
        }
    }
    Ok(match plan.requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// A finished Job: deleted once its TTL has passed, looked at again when it will have.
async fn expire(
    jobs_api: &Api<Job>,
    job: &Job,
    now: jiff::Timestamp,
) -> Result<Action, ReconcileError> {
    let Some(left) = plan::ttl_remaining(job, now) else {
        return Ok(Action::await_change());
    };
    if left > jiff::SignedDuration::ZERO {
        let after = Duration::try_from(left).unwrap_or(Duration::from_secs(1));
        return Ok(Action::requeue(after));
    }
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: job.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match jobs_api.delete(&job.name_any(), &params).await {
        Ok(_) => Ok(Action::await_change()),
        Err(error) if is_not_found(&error) => Ok(Action::await_change()),
        Err(error) => Err(anyhow::Error::from(error)
            .context("deleting a Job whose TTL has passed")
            .into()),
    }
}

/// The Job's selector (the API server generates one; a Job without one selects nothing).
fn selector_of(job: &Job) -> Result<Selector, ReconcileError> {
    let spec_selector = job
        .spec
        .as_ref()
        .and_then(|spec| spec.selector.clone())
        .context("Job without selector")?;
    Ok(Selector::try_from(spec_selector).context("invalid Job selector")?)
}

/// The controller reference a Job puts on its pods.
fn owner_reference(job: &Job) -> Result<OwnerReference, ReconcileError> {
    let (Some(name), Some(uid)) = (job.metadata.name.clone(), job.metadata.uid.clone()) else {
        return Err(anyhow::anyhow!("Job without name or uid").into());
    };
    Ok(OwnerReference {
        api_version: Job::api_version(&()).into_owned(),
        kind: Job::kind(&()).into_owned(),
        name,
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// A pod from the Job's template (`GetPodFromTemplate`): generateName `<job>-`.
fn new_pod(job: &Job) -> Result<Pod, ReconcileError> {
    let template = job
        .spec
        .as_ref()
        .map(|spec| spec.template.clone())
        .context("Job without spec")?;
    let meta = template.metadata.unwrap_or_default();
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", job.name_any())),
            namespace: job.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner_reference(job)?]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    })
}

/// Creates `count` pods, recording `SuccessfulCreate` or `FailedCreate` for each.
async fn create_pods(
    client: &Client,
    pods_api: &Api<Pod>,
    job: &Job,
    count: usize,
) -> Result<(), ReconcileError> {
    if count == 0 {
        return Ok(());
    }
    let pod = new_pod(job)?;
    for _ in 0..count {
        match pods_api.create(&PostParams::default(), &pod).await {
            Ok(created) => {
                let note = Note::normal(
                    "SuccessfulCreate",
                    format!("Created pod: {}", created.name_any()),
                );
                record(client, COMPONENT, job, &note).await;
            }
            Err(error) => {
                let note = Note::warning("FailedCreate", format!("Error creating: {error}"));
                record(client, COMPONENT, job, &note).await;
                return Err(anyhow::Error::from(error).context("creating a pod").into());
            }
        }
    }
    Ok(())
}

/// Deletes the named pods, recording `SuccessfulDelete` for each.
async fn delete_pods(
    client: &Client,
    pods_api: &Api<Pod>,
    job: &Job,
    names: &[String],
) -> Result<(), ReconcileError> {
    for name in names {
        match pods_api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                let note = Note::normal("SuccessfulDelete", format!("Deleted pod: {name}"));
                record(client, COMPONENT, job, &note).await;
            }
            Err(error) if is_not_found(&error) => {}
            Err(error) => {
                return Err(anyhow::Error::from(error).context("deleting a pod").into());
            }
        }
    }
    Ok(())
}
