//! Stopping a pod: its containers within the grace period, its sandbox, and finally the pod
//! object itself.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Preconditions};

use super::PodWorker;
use crate::container_stop::stop_container;
use crate::containers::ExitInfo;
use crate::events::EventType;
use crate::sandbox::remove_sandbox;

impl PodWorker {
    /// Stops every container (SIGTERM, SIGKILL after `grace`; see [`stop_container`]) and
    /// removes the sandbox. Returns how each running container ended, by slot index (`None`
    /// when that could not be learned).
    pub(super) async fn terminate(&mut self, grace: Duration) -> Vec<(usize, Option<ExitInfo>)> {
        // Nothing of the pod is left to measure once the sandbox goes.
        self.context.eviction.forget(&self.identity.uid);
        let runc = self.context.runc.clone();
        let mut stopping = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            slot.due = None;
            if let Some(probe) = slot.probe.take() {
                probe.abort();
            }
            let Some(target) = slot.running.take() else {
                continue;
            };
            let name = slot.container.name.clone();
            self.context.events.kubelet(
                &self.involved,
                Some(&name),
                EventType::Normal,
                "Killing",
                format!("Stopping container {name}"),
            );
            stopping.push((index, target));
        }
        let stops = stopping.iter().map(|(_, target)| {
            let runc = runc.clone();
            let target = target.clone();
            async move { stop_container(&runc, target, grace).await }
        });
        let exits = futures::future::join_all(stops).await;
        for (_, target) in &stopping {
            let _ = runc.delete(&target.runc_id).await;
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
        stopping
            .into_iter()
            .map(|(index, _)| index)
            .zip(exits)
            .collect()
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
