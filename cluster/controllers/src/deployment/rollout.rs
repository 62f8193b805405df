//! One pass over a Deployment and its ReplicaSets, carrying out the plans of
//! [`super::plan`] and [`super::status`] through the API, as `sync.go`, `rolling.go` and
//! `recreate.go` do: find or create the new ReplicaSet and bring the revisions up to date,
//! scale, clean up old revisions, write the status.

use anyhow::{Context as _, anyhow};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt as _};
use std::time::Duration;

use super::status::{
    FAILED_RS_CREATE, FOUND_NEW_RS, NEW_RS_CREATED, PROGRESSING, calculate_status, condition,
    get_condition, progress_deadline, rollout_status, seconds_to_deadline, set_condition,
};
use super::util::{
    REVISION, deployment_replicas, max_revision, max_surge, replicas_annotations_need_update,
    rs_replicas, set_new_rs_annotations, set_replicas_annotations,
};
use super::{new_replica_set, plan};
use crate::controller_ref::controller_of;
use crate::events::{Note, Recorder};
use crate::merge_patch::MergePatch;
use crate::reconcile_error::{ReconcileError, is_already_exists, is_not_found};

/// Turns a planning error (a malformed maxSurge/maxUnavailable) into a reconcile error.
pub(super) fn planning(error: String) -> ReconcileError {
    anyhow!(error).into()
}

/// A Deployment, the ReplicaSets it owns, and the clients to change them.
pub(super) struct Rollout {
    pub(super) deployments: Api<Deployment>,
    pub(super) sets_api: Api<ReplicaSet>,
    pub(super) events: Recorder,
    pub(super) d: Deployment,
    /// The ReplicaSets the Deployment controls, kept up to date with each write.
    pub(super) sets: Vec<ReplicaSet>,
    /// Index in `sets` of the ReplicaSet with the Deployment's template, once known.
    pub(super) new: Option<usize>,
    pub(super) now: Time,
}

impl Rollout {
    /// Indices of every set but the new one.
    pub(super) fn old(&self) -> Vec<usize> {
        (0..self.sets.len())
            .filter(|i| Some(*i) != self.new)
            .collect()
    }

    fn name(&self) -> String {
        self.d.name_any()
    }

    /// `getAllReplicaSetsAndSyncRevision`: finds the new set and gives it the next revision
    /// (and the Deployment the same); creates it if `create` and it is missing.
    pub(super) async fn sync_revision(&mut self, create: bool) -> Result<(), ReconcileError> {
        self.new = super::util::find_new(&self.d, &self.sets);
        let old = self.old();
        let new_revision = max_revision(old.iter().map(|i| &self.sets[*i])) + 1;
        let Some(index) = self.new else {
            if create {
                self.create_new_set(new_revision).await?;
            }
            return Ok(());
        };
        let mut copy = self.sets[index].clone();
        let changed =
            set_new_rs_annotations(&self.d, &mut copy, new_revision, true).map_err(planning)?;
        let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        let spec = copy.spec.get_or_insert_with(Default::default);
        if changed || spec.min_ready_seconds != min_ready {
            spec.min_ready_seconds = min_ready;
            self.sets[index] = self
                .sets_api
                .replace(&copy.name_any(), &PostParams::default(), &copy)
                .await
                .context("updating the new ReplicaSet's annotations")?;
            return Ok(());
        }
        let revision = super::util::annotation(&copy, REVISION)
            .unwrap_or_default()
            .to_string();
        self.set_deployment_revision(&revision).await?;
        let status = self.d.status.clone().unwrap_or_default();
        if progress_deadline(&self.d).is_some() && get_condition(&status, PROGRESSING).is_none() {
            let mut status = status;
            let message = format!("Found new replica set {:?}", copy.name_any());
            set_condition(
                &mut status,
                condition(PROGRESSING, "True", FOUND_NEW_RS, message, &self.now),
            );
            self.write_status(status).await?;
        }
        Ok(())
    }

    /// The creating half of `getNewReplicaSet`: `<deployment>-<hash>` sized by
    /// `NewRSNewReplicas`; a name taken by a different template is a hash collision, counted
    /// in `status.collisionCount` so that the next pass hashes differently.
    async fn create_new_set(&mut self, new_revision: i64) -> Result<(), ReconcileError> {
        let mut set = new_replica_set(&self.d)?;
        let mut all = self.sets.clone();
        all.push(set.clone());
        let replicas = plan::new_rs_replicas(&self.d, &all, &set).map_err(planning)?;
        set.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        set_new_rs_annotations(&self.d, &mut set, new_revision, false).map_err(planning)?;
        let name = set.name_any();
        let (created, existed) = match self.sets_api.create(&PostParams::default(), &set).await {
            Ok(created) => (created, false),
            Err(error) if is_already_exists(&error) => (self.existing_new_set(&name).await?, true),
            Err(error) => return Err(self.creation_failed(&name, error).await),
        };
        if !existed && replicas > 0 {
            let message = format!("Scaled up replica set {name} from 0 to {replicas}");
            self.events
                .record(&self.d, &Note::normal("ScalingReplicaSet", message))
                .await;
        }
        self.sets.push(created);
        self.new = Some(self.sets.len() - 1);
        self.set_deployment_revision(&new_revision.to_string())
            .await?;
        if !existed && progress_deadline(&self.d).is_some() {
            let mut status = self.d.status.clone().unwrap_or_default();
            let message = format!("Created new replica set {name:?}");
            set_condition(
                &mut status,
                condition(PROGRESSING, "True", NEW_RS_CREATED, message, &self.now),
            );
            self.write_status(status).await?;
        }
        Ok(())
    }

    /// The set named like the new one that already exists: ours if we control it and it has
    /// our template (a previous pass made it); otherwise a collision.
    async fn existing_new_set(&mut self, name: &str) -> Result<ReplicaSet, ReconcileError> {
        let existing = self
            .sets_api
            .get(name)
            .await
            .context("reading the existing new ReplicaSet")?;
        let ours =
            controller_of(&existing).is_some_and(|c| Some(&c.uid) == self.d.metadata.uid.as_ref());
        let same = existing
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| super::util::equal_ignore_hash(t, &super::util::template(&self.d)));
        if ours && same {
            return Ok(existing);
        }
        let mut status = self.d.status.clone().unwrap_or_default();
        status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
        self.write_status(status).await?;
        tracing::debug!(deployment = %self.name(), "hash collision; bumped collisionCount");
        Err(anyhow!("replica set {name:?} already exists with another template").into())
    }

    /// Records a failed creation as upstream does (condition, Warning event).
    async fn creation_failed(&mut self, name: &str, error: kube::Error) -> ReconcileError {
        let message = format!("Failed to create new replica set {name:?}: {error}");
        if progress_deadline(&self.d).is_some() {
            let mut status = self.d.status.clone().unwrap_or_default();
            set_condition(
                &mut status,
                condition(
                    PROGRESSING,
                    "False",
                    FAILED_RS_CREATE,
                    message.clone(),
                    &self.now,
                ),
            );
            if let Err(status_error) = self.write_status(status).await {
                tracing::debug!(%status_error, "recording a failed ReplicaSet creation");
            }
        }
        self.events
            .record(&self.d, &Note::warning(FAILED_RS_CREATE, message.clone()))
            .await;
        anyhow!(message).into()
    }

    /// `SetDeploymentRevision`, written as a metadata patch (not a spec change, so the
    /// generation stays).
    async fn set_deployment_revision(&mut self, revision: &str) -> Result<(), ReconcileError> {
        let current = self.d.annotations().get(REVISION).map(String::as_str);
        if current == Some(revision) {
            return Ok(());
        }
        let patch = serde_json::json!({"metadata": {"annotations": {REVISION: revision}}});
        self.d = self
            .deployments
            .merge_patch(&self.name(), &patch)
            .await
            .context("recording the Deployment's revision")?;
        Ok(())
    }

    /// Writes the status through the status subresource (guarded by resourceVersion).
    pub(super) async fn write_status(
        &mut self,
        status: DeploymentStatus,
    ) -> Result<(), ReconcileError> {
        let mut d = self.d.clone();
        d.status = Some(status);
        self.d = self
            .deployments
            .replace_status(&self.name(), &PostParams::default(), &d)
            .await
            .context("updating the Deployment status")?;
        Ok(())
    }

    /// `scaleReplicaSet`: sets the size and the replicas annotations; records
    /// ScalingReplicaSet when the size changed, which is what it returns.
    pub(super) async fn scale(
        &mut self,
        index: usize,
        replicas: i32,
    ) -> Result<bool, ReconcileError> {
        let desired = deployment_replicas(&self.d);
        let max = desired + max_surge(&self.d).map_err(planning)?;
        let set = &self.sets[index];
        let from = rs_replicas(set);
        if from == replicas && !replicas_annotations_need_update(set, desired, max) {
            return Ok(false);
        }
        let mut copy = set.clone();
        copy.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        set_replicas_annotations(&mut copy, desired, max);
        let name = copy.name_any();
        self.sets[index] = self
            .sets_api
            .replace(&name, &PostParams::default(), &copy)
            .await
            .with_context(|| format!("scaling replica set {name}"))?;
        if from == replicas {
            return Ok(false);
        }
        let direction = if from < replicas { "up" } else { "down" };
        let message = format!("Scaled {direction} replica set {name} from {from} to {replicas}");
        self.events
            .record(&self.d, &Note::normal("ScalingReplicaSet", message))
            .await;
        Ok(true)
    }

    /// Carries out a plan; true if any set changed size.
    pub(super) async fn apply(&mut self, plan: plan::Plan) -> Result<bool, ReconcileError> {
        let mut scaled = false;
        for (index, replicas) in plan {
            scaled |= self.scale(index, replicas).await?;
        }
        Ok(scaled)
    }

    /// `cleanupDeployment`: deletes old sets beyond `revisionHistoryLimit`.
    pub(super) async fn cleanup(&self) -> Result<(), ReconcileError> {
        let old: Vec<&ReplicaSet> = self.old().into_iter().map(|i| &self.sets[i]).collect();
        for name in plan::history_to_delete(&self.d, &old) {
            match self.sets_api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(error) if is_not_found(&error) => {}
                Err(error) => {
                    return Err(anyhow::Error::from(error)
                        .context(format!("deleting old replica set {name}"))
                        .into());
                }
            }
        }
        Ok(())
    }

    /// `syncDeploymentStatus`: the counts and Available, written if they changed.
    pub(super) async fn sync_status(&mut self) -> Result<Action, ReconcileError> {
        let new = self.new.map(|i| &self.sets[i]);
        let status = calculate_status(&self.d, &self.sets, new, &self.now);
        if self.d.status.as_ref() != Some(&status) {
            self.write_status(status).await?;
        }
        Ok(Action::await_change())
    }

    /// `syncRolloutStatus`: the status with Progressing; requeued for the deadline while a
    /// rollout is under way.
    pub(super) async fn sync_rollout_status(&mut self) -> Result<Action, ReconcileError> {
        let new = self.new.map(|i| &self.sets[i]);
        let status = rollout_status(&self.d, &self.sets, new, &self.now);
        let wait = seconds_to_deadline(&self.d, &status, &self.now);
        if self.d.status.as_ref() != Some(&status) {
            self.write_status(status).await?;
        }
        Ok(match wait {
            Some(seconds) => Action::requeue(Duration::from_secs(seconds)),
            None => Action::await_change(),
        })
    }
}
