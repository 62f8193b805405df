//! What one pass does, by the Deployment's state (`syncDeployment`): a deleted Deployment
//! only gets its status; a paused one or one whose `replicas` changed is scaled
//! proportionally (`sync`); otherwise it rolls out by its strategy, RollingUpdate
//! (`rolloutRolling`) or Recreate (`rolloutRecreate`).

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;

use super::plan;
use super::rollout::{Rollout, planning};
use super::status::{is_complete, paused_status};
use super::util::is_recreate;
use crate::controller_loop::pods_in;
use crate::controller_ref::controller_of;
use crate::reconcile_error::ReconcileError;
use k8s_labs_podutil::is_pod_terminal;

impl Rollout {
    /// `syncDeployment` once the sets are claimed.
    pub(super) async fn run(&mut self, pods: &Store<Pod>) -> Result<Action, ReconcileError> {
        if self.d.metadata.deletion_timestamp.is_some() {
            self.sync_revision(false).await?;
            return self.sync_status().await;
        }
        if let Some(status) = paused_status(&self.d, &self.now) {
            self.write_status(status).await?;
        }
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused {
            return self.sync_scaling().await;
        }
        self.sync_revision(false).await?;
        if plan::is_scaling_event(&self.d, &self.sets) {
            return self.sync_scaling().await;
        }
        if is_recreate(&self.d) {
            self.recreate(pods).await
        } else {
            self.rolling().await
        }
    }

    /// `sync`: proportional scaling, and history cleanup while paused.
    async fn sync_scaling(&mut self) -> Result<Action, ReconcileError> {
        self.sync_revision(false).await?;
        let status_replicas = self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let scaling = plan::proportional_scale(&self.d, &self.sets, self.new, status_replicas)
            .map_err(planning)?;
        self.apply(scaling).await?;
        if self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) {
            self.cleanup().await?;
        }
        self.sync_status().await
    }

    /// `rolloutRolling`: grow the new set within maxSurge, else shrink the old ones within
    /// maxUnavailable, else (complete) clean up the history.
    async fn rolling(&mut self) -> Result<Action, ReconcileError> {
        self.sync_revision(true).await?;
        let Some(new) = self.new else {
            return self.sync_rollout_status().await;
        };
        if let Some(target) = plan::new_rs_target(&self.d, &self.sets, new).map_err(planning)?
            && self.scale(new, target).await?
        {
            return self.sync_rollout_status().await;
        }
        let active_old: Vec<usize> = self
            .old()
            .into_iter()
            .filter(|i| super::util::rs_replicas(&self.sets[*i]) > 0)
            .collect();
        let downs =
            plan::old_scale_downs(&self.d, &self.sets, &active_old, Some(new)).map_err(planning)?;
        if self.apply(downs).await? {
            return self.sync_rollout_status().await;
        }
        let status = self.d.status.clone().unwrap_or_default();
        if is_complete(&self.d, &status) {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }

    /// `rolloutRecreate`: every old set to zero, then once their pods are gone the new set
    /// to `replicas`.
    async fn recreate(&mut self, pods: &Store<Pod>) -> Result<Action, ReconcileError> {
        self.sync_revision(false).await?;
        let downs: plan::Plan = self
            .old()
            .into_iter()
            .filter(|i| super::util::rs_replicas(&self.sets[*i]) > 0)
            .map(|i| (i, 0))
            .collect();
        if self.apply(downs).await? || self.old_pods_running(pods) {
            return self.sync_rollout_status().await;
        }
        if self.new.is_none() {
            self.sync_revision(true).await?;
        }
        if let Some(new) = self.new {
            let replicas = super::util::deployment_replicas(&self.d);
            self.scale(new, replicas).await?;
        }
        let status = self.d.status.clone().unwrap_or_default();
        if is_complete(&self.d, &status) {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }

    /// `oldPodsRunning`: an old set still reports pods, or a pod of one (terminating ones
    /// too) has not reached Succeeded or Failed. The pods come from the cache: a pod it
    /// does not show yet belongs to a set whose status still counts it.
    fn old_pods_running(&self, pods: &Store<Pod>) -> bool {
        let old = self.old();
        if old.iter().any(|i| {
            self.sets[*i]
                .status
                .as_ref()
                .is_some_and(|s| s.replicas > 0)
        }) {
            return true;
        }
        let old_uids: Vec<&str> = old
            .iter()
            .filter_map(|i| self.sets[*i].metadata.uid.as_deref())
            .collect();
        let namespace = self.d.metadata.namespace.as_deref().unwrap_or_default();
        pods_in(pods, namespace).iter().any(|pod| {
            controller_of(pod).is_some_and(|owner| old_uids.contains(&owner.uid.as_str()))
                && !is_pod_terminal(pod)
        })
    }
}
