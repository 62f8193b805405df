//! The CronJob controller: creates a Job each time a CronJob's schedule fires, as
//! kube-controller-manager's `pkg/controller/cronjob` (v2) does: in the CronJob's time zone,
//! within `startingDeadlineSeconds`, one at a time or replacing the running one as
//! `concurrencyPolicy` says, nothing while `suspend`ed; it tracks the running Jobs in
//! `status.active`, the last scheduled and successful times, and deletes finished Jobs beyond
//! the history limits. Jobs are named `<cronjob>-<scheduled minutes since the epoch>`.
//!
//! The time comes from the controller manager's [`Clock`]; the decisions are in [`plan`],
//! the API writes here.

mod plan;
mod schedule;

use std::sync::Arc;

use anyhow::Context as _;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, ListParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource as _, ResourceExt as _};

use crate::clock::Clock;
use crate::controller_loop::{FailureLog, controller_of_all, run_controller};
use crate::events::{Note, record};
use crate::reconcile_error::{ReconcileError, is_already_exists, is_not_found};
use schedule::Schedule;

/// The component named in the CronJob controller's events.
const COMPONENT: &str = "cronjob-controller";
/// The annotation with the time a Job was scheduled for, in the CronJob's zone.
const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

struct CronContext {
    client: Client,
    clock: Clock,
}

/// Runs the controller until `shutdown` resolves.
pub(crate) async fn run(
    client: Client,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let controller = controller_of_all::<CronJob>(&client).watches(
        Api::<Job>::all(client.clone()),
        watcher::Config::default(),
        |job: Job| cronjob_of_job(&job),
    );
    let context = Arc::new(CronContext { client, clock });
    run_controller(
        controller,
        reconcile,
        context,
        shutdown,
        "cronjob controller",
        FailureLog::Debug,
    )
    .await;
}

/// The controller reference of a Job, if a CronJob controls it.
fn cronjob_owner(job: &Job) -> Option<&OwnerReference> {
    job.metadata.owner_references.iter().flatten().find(|o| {
        o.controller == Some(true) && o.kind == "CronJob" && o.api_version.starts_with("batch/")
    })
}

fn cronjob_of_job(job: &Job) -> Option<ObjectRef<CronJob>> {
    let owner = cronjob_owner(job)?;
    Some(ObjectRef::new(&owner.name).within(job.metadata.namespace.as_deref().unwrap_or_default()))
}

async fn reconcile(cached: Arc<CronJob>, ctx: Arc<CronContext>) -> Result<Action, ReconcileError> {
    let namespace = cached
        .metadata
        .namespace
        .as_deref()
        .context("CronJob without namespace")?;
    let cronjobs_api = Api::<CronJob>::namespaced(ctx.client.clone(), namespace);
    let jobs_api = Api::<Job>::namespaced(ctx.client.clone(), namespace);
    let jobs = jobs_api
        .list(&ListParams::default())
        .await
        .context("listing Jobs")?
        .items;
    let Some(cronjob) =
        crate::read_after_list::read_after_list(&cronjobs_api, &cached.name_any()).await?
    else {
        return Ok(Action::await_change());
    };
    let owned: Vec<&Job> = jobs
        .iter()
        .filter(|job| cronjob_owner(job).map(|o| &o.uid) == cronjob.metadata.uid.as_ref())
        .collect();
    let mut plan = plan::plan(&cronjob, &owned, ctx.clock.now());
    for name in &plan.delete {
        delete_job(&ctx.client, &jobs_api, &cronjob, name).await?;
    }
    if let Some((scheduled, schedule)) = plan.create.take() {
        let job = create_job(&ctx.client, &jobs_api, &cronjob, scheduled, &schedule).await?;
        // A Job an earlier pass made may have finished already: then nothing runs now.
        if let Some(job) = job
            && !plan::is_finished(&job)
        {
            plan.status
                .active
                .get_or_insert_with(Vec::new)
                .push(plan::reference(&job));
        }
    }
    for note in &plan.notes {
        record(&ctx.client, COMPONENT, &cronjob, note).await;
    }
    if cronjob.status.as_ref() != Some(&plan.status) {
        let mut updated = cronjob.clone();
        updated.status = Some(plan.status);
        cronjobs_api
            .replace_status(&cronjob.name_any(), &PostParams::default(), &updated)
            .await
            .context("updating the CronJob status")?;
    }
    Ok(match plan.requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// Creates the Job for `scheduled` from the job template (`getJobFromTemplate2`). A Job of
/// that name already there is the one an earlier pass made; it is returned instead.
async fn create_job(
    client: &Client,
    jobs_api: &Api<Job>,
    cronjob: &CronJob,
    scheduled: jiff::Timestamp,
    schedule: &Schedule,
) -> Result<Option<Job>, ReconcileError> {
    let name = plan::job_name(&cronjob.name_any(), scheduled);
    let template = cronjob
        .spec
        .as_ref()
        .map(|spec| spec.job_template.clone())
        .context("CronJob without spec")?;
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.to_string(),
        schedule.local_rfc3339(scheduled),
    );
    let (Some(owner_name), Some(uid)) =
        (cronjob.metadata.name.clone(), cronjob.metadata.uid.clone())
    else {
        return Err(anyhow::anyhow!("CronJob without name or uid").into());
    };
    let job = Job {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: cronjob.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: CronJob::api_version(&()).into_owned(),
                kind: CronJob::kind(&()).into_owned(),
                name: owner_name,
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    };
    match jobs_api.create(&PostParams::default(), &job).await {
        Ok(created) => {
            let note = Note::normal("SuccessfulCreate", format!("Created job {name}"));
            record(client, COMPONENT, cronjob, &note).await;
            Ok(Some(created))
        }
        Err(error) if is_already_exists(&error) => Ok(jobs_api
            .get_opt(&name)
            .await
            .context("reading a Job that already exists")?),
        Err(error) => {
            let note = Note::warning("FailedCreate", format!("Error creating job: {error}"));
            record(client, COMPONENT, cronjob, &note).await;
            Err(anyhow::Error::from(error).context("creating a Job").into())
        }
    }
}

/// Deletes a Job and its pods in the background, recording `SuccessfulDelete`.
async fn delete_job(
    client: &Client,
    jobs_api: &Api<Job>,
    cronjob: &CronJob,
    name: &str,
) -> Result<(), ReconcileError> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match jobs_api.delete(name, &params).await {
        Ok(_) => {
            let note = Note::normal("SuccessfulDelete", format!("Deleted job {name}"));
            record(client, COMPONENT, cronjob, &note).await;
            Ok(())
        }
        Err(error) if is_not_found(&error) => Ok(()),
        Err(error) => Err(anyhow::Error::from(error).context("deleting a Job").into()),
    }
}
