//! Stopping a pod as the kubelet's pod worker terminates it: its containers within the
//! grace period (which the API server may shorten meanwhile), its sandbox, its final status,
//! and finally the pod object itself.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Preconditions};
use tokio::sync::watch;

use super::PodWorker;
use crate::container_stop::{StopTarget, stop_container};
use crate::containers::ExitInfo;
use crate::events::EventType;
use crate::grace::{Grace, effective_grace_seconds};
use crate::pre_stop::PreStopHook;
use crate::sandbox::remove_sandbox;
use crate::status::{SlotState, Terminated};

/// A container's exit code when its end could not be learned: killed (128 + SIGKILL).
const KILLED: i32 = 137;

/// A container being stopped: its slot, its process, its hook.
type Stopping = (usize, StopTarget, Option<PreStopHook>);

impl PodWorker {
    /// Stops every container (its `preStop` hook, SIGTERM, SIGKILL; see [`stop_container`]),
    /// all at once as the kubelet's `killContainersWithSyncResult`, and removes the sandbox.
    /// While they stop, a shorter grace period from the API server shortens theirs and the
    /// node shutting down kills them. Each stopped container's slot records how it ended.
    pub(super) async fn terminate(&mut self, grace: Grace) {
        // Nothing of the pod is left to measure once the sandbox goes.
        self.context.eviction.forget(&self.identity.uid);
        if let Grace::Seconds(seconds) = grace {
            self.grace_seconds = Some(seconds);
        }
        let stopping = self.take_running();
        let (grace_tx, _) = watch::channel(grace);
        let runc = self.context.runc.clone();
        let stops = stopping.iter().map(|(_, target, hook)| {
            let (runc, target, hook) = (runc.clone(), target.clone(), hook.clone());
            let grace = grace_tx.subscribe();
            async move { stop_container(&runc, target, hook, grace).await }
        });
        let all = futures::future::join_all(stops);
        tokio::pin!(all);
        let mut killing_now = grace == Grace::Now;
        let exits = loop {
            tokio::select! {
                exits = &mut all => break exits,
                () = self.shutdown.cancelled(), if !killing_now => {
                    killing_now = true;
                    grace_tx.send_replace(Grace::Now);
                }
                changed = self.updates.changed(), if !self.gone => {
                    match changed {
                        Ok(()) => {
                            let update = self.updates.borrow_and_update().clone();
                            self.apply(update);
                        }
                        Err(_) => self.gone = true,
                    }
                    if let Some(shorter) = self.shortened_grace().filter(|_| !killing_now) {
                        grace_tx.send_replace(Grace::Seconds(shorter));
                        self.record_killing(&stopping);
                    }
                }
            }
        };
        for (_, target, _) in &stopping {
            let _ = runc.delete(&target.runc_id).await;
        }
        self.context
            .registry
            .remove_pod(&self.identity.namespace, &self.identity.name);
        self.remove_sandbox().await;
        for ((index, _, _), exit) in stopping.iter().zip(exits) {
            self.record_end(*index, exit);
        }
    }

    /// Takes every running container out of its slot for stopping (no restart, no probe), with
    /// the kubelet's `Killing` event for each.
    fn take_running(&mut self) -> Vec<Stopping> {
        let network = self.sandbox.as_ref().map(|sandbox| sandbox.network.clone());
        let mut stopping = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            slot.due = None;
            if let Some(probe) = slot.probe.take() {
                probe.abort();
            }
            let Some(target) = slot.running.take() else {
                continue;
            };
            let hook = slot
                .container
                .lifecycle
                .as_ref()
                .and_then(|lifecycle| lifecycle.pre_stop.clone())
                .map(|handler| PreStopHook {
                    handler,
                    container: slot.container.clone(),
                    network: network.clone(),
                    events: self.context.events.clone(),
                    pod: self.involved.clone(),
                });
            stopping.push((index, target, hook));
        }
        self.record_killing(&stopping);
        stopping
    }

    /// `Killing` "Stopping container X" for each container still running: the kubelet records
    /// it each time it (again) asks for a container to stop.
    fn record_killing(&self, stopping: &[Stopping]) {
        for (index, target, _) in stopping {
            if target.exit.borrow().is_some() {
                continue;
            }
            let name = &self.slots[*index].container.name;
            self.context.events.kubelet(
                &self.involved,
                Some(name),
                EventType::Normal,
                "Killing",
                format!("Stopping container {name}"),
            );
        }
    }

    /// The effective grace period after the latest word on the pod, when it is shorter than
    /// the one in force (a second `kubectl delete --grace-period` with a smaller value).
    fn shortened_grace(&mut self) -> Option<i64> {
        let current = self.grace_seconds?;
        let now = effective_grace_seconds(&self.pod, Some(current));
        (now < current).then(|| {
            self.grace_seconds = Some(now);
            now
        })
    }

    /// A stopped container's slot: terminated as it ended (killed, when that is unknown).
    fn record_end(&mut self, index: usize, exit: Option<ExitInfo>) {
        let slot = &mut self.slots[index];
        let started_at = match slot.state {
            SlotState::Running { started_at } => Some(started_at),
            _ => None,
        };
        let (exit_code, oom_killed, finished_at) = exit
            .map_or((KILLED, false, jiff::Timestamp::now()), |exit| {
                (exit.exit_code, exit.oom_killed, exit.finished_at)
            });
        slot.ready = false;
        slot.state = SlotState::Terminated(Terminated::exited(
            exit_code,
            oom_killed,
            started_at,
            finished_at,
            slot.container_id.clone(),
        ));
    }

    async fn remove_sandbox(&mut self) {
        let Some(sandbox) = self.sandbox.take() else {
            return;
        };
        let context = self.context.clone();
        let removed =
            tokio::task::spawn_blocking(move || remove_sandbox(&context.network, &sandbox)).await;
        match removed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!("removing a pod sandbox: {error:#}"),
            Err(error) => tracing::warn!("removing a pod sandbox panicked: {error}"),
        }
    }

    /// The pod was deleted through the API: its containers stopped within its grace period,
    /// the kubelet's status manager writes its final status (a terminal phase) and deletes it
    /// for good. A pod gone meanwhile (`--force`) is only stopped.
    pub(super) async fn terminate_deleted(&mut self) {
        let grace = effective_grace_seconds(&self.pod, None);
        self.terminate(Grace::Seconds(grace)).await;
        if self.gone {
            return;
        }
        // A worker started for a pod another one already stopped has nothing to report.
        if self.slots.iter().any(|slot| slot.has_run()) {
            self.terminated = true;
            self.report_status().await;
        }
        self.delete_from_api().await;
    }

    /// Deletes the pod with grace period 0: what finally removes it from the API once the node
    /// has stopped it.
    pub(super) async fn delete_from_api(&self) {
        let api: Api<Pod> = Api::namespaced(self.client().clone(), &self.identity.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.identity.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&self.identity.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
            Err(error) => tracing::warn!(
                "deleting pod {}/{}: {error}",
                self.identity.namespace,
                self.identity.name
            ),
        }
    }
}
