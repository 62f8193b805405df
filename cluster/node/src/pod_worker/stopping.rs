//! Stopping a pod: its containers within the grace period, its sandbox, and finally the pod
//! object itself.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Preconditions};
use tokio::time::Instant;

use super::{PodWorker, WorkerEvent};
use crate::events::EventType;
use crate::sandbox::remove_sandbox;

impl PodWorker {
    /// Stops every container (SIGTERM, SIGKILL after `grace`) and removes the sandbox.
    pub(super) async fn terminate(&mut self, grace: Duration) {
        let runc = self.context.runc.clone();
        for slot in &mut self.slots {
            slot.due = None;
            if let Some(probe) = slot.probe.take() {
                probe.abort();
            }
        }
        let running: Vec<(usize, String)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| slot.running_id.clone().map(|id| (index, id)))
            .collect();
        let signal = if grace.is_zero() { "KILL" } else { "TERM" };
        for (index, id) in &running {
            let name = self.slots[*index].container.name.clone();
            self.context.events.kubelet(
                &self.involved,
                Some(&name),
                EventType::Normal,
                "Killing",
                format!("Stopping container {name}"),
            );
            if let Err(error) = runc.kill(id, signal).await {
                tracing::warn!("{error:#}");
            }
        }
        let deadline = Instant::now() + grace;
        let mut killed = grace.is_zero();
        while self.slots.iter().any(|slot| slot.running_id.is_some()) {
            tokio::select! {
                Some(event) = self.events_rx.recv() => {
                    if let WorkerEvent::Exited { index, .. } = event
                        && let Some(slot) = self.slots.get_mut(index)
                    {
                        slot.running_id = None;
                    }
                }
                () = tokio::time::sleep_until(deadline), if !killed => {
                    killed = true;
                    for slot in &self.slots {
                        if let Some(id) = &slot.running_id
                            && let Err(error) = runc.kill(id, "KILL").await
                        {
                            tracing::warn!("{error:#}");
                        }
                    }
                }
            }
        }
        for (_, id) in &running {
            let _ = runc.delete(id).await;
        }
        self.context
            .registry
            .remove_pod(&self.identity.namespace, &self.identity.name);
        if let Some(sandbox) = self.sandbox.take() {
            let context = self.context.clone();
            let removed =
                tokio::task::spawn_blocking(move || remove_sandbox(&context.network, &sandbox))
                    .await;
            match removed {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!("removing a pod sandbox: {error:#}"),
                Err(error) => tracing::warn!("removing a pod sandbox panicked: {error}"),
            }
        }
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
