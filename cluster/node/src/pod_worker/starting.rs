//! Starting a pod's containers: the image (see [`super::pulling`]), the runc container, the
//! exit and readiness followers.

use k8s_openapi::api::core::v1::Container;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{PodWorker, WorkerEvent, next_backoff};
use crate::containers::{ContainerLaunch, start_container};
use crate::events::EventType;
use crate::probes::{ProbeTarget, run_readiness_probe};
use crate::runtime::StartError;
use crate::sandbox::PodSandbox;
use crate::status::{SlotState, Terminated};

impl PodWorker {
    pub(super) async fn start(&mut self, index: usize) {
        let Some(sandbox) = self.sandbox.clone() else {
            return;
        };
        let context = self.context.clone();
        let container = self.slots[index].container.clone();
        let name = container.name.clone();
        let Some(image) = self.ensure_image(index).await else {
            return;
        };
        let events = &context.events;
        let attempt = self.slots[index].attempts;
        let launch = ContainerLaunch {
            identity: &self.identity,
            pod: &self.pod,
            sandbox: &sandbox,
            container: &container,
            image: &image,
            attempt,
            extra_env: self.field_env(&container, &sandbox),
        };
        let result = start_container(&context.runc, &context.registry, launch).await;
        let slot = &mut self.slots[index];
        slot.attempts += 1;
        match result {
            Ok(running) => {
                events.kubelet(
                    &self.involved,
                    Some(&name),
                    EventType::Normal,
                    "Created",
                    format!("Created container: {name}"),
                );
                events.kubelet(
                    &self.involved,
                    Some(&name),
                    EventType::Normal,
                    "Started",
                    format!("Started container {name}"),
                );
                slot.state = SlotState::Running {
                    started_at: running.started_at,
                };
                slot.container_id = Some(format!("runc://{}", running.runc_id));
                slot.running = Some(running.stop_target());
                slot.ready = container.readiness_probe.is_none();
                let sender = self.events_tx.clone();
                tokio::spawn(async move {
                    if let Ok(exit) = running.exit.await {
                        let _ = sender.send(WorkerEvent::Exited {
                            index,
                            attempt,
                            exit_code: exit.exit_code,
                            finished_at: exit.finished_at,
                            oom_killed: exit.oom_killed,
                        });
                    }
                });
                if let Some(probe) = container.readiness_probe.clone() {
                    let (results_tx, mut results_rx) = mpsc::unbounded_channel();
                    let target = ProbeTarget {
                        runc: context.runc.clone(),
                        runc_id: running.runc_id.clone(),
                        network: sandbox.network.clone(),
                        container: container.clone(),
                        events: context.events.clone(),
                        pod: self.involved.clone(),
                    };
                    let prober = tokio::spawn(run_readiness_probe(probe, target, results_tx));
                    let sender = self.events_tx.clone();
                    tokio::spawn(async move {
                        while let Some(ready) = results_rx.recv().await {
                            let event = WorkerEvent::Readiness {
                                index,
                                attempt,
                                ready,
                            };
                            if sender.send(event).is_err() {
                                break;
                            }
                        }
                    });
                    slot.probe = Some(prober.abort_handle());
                }
            }
            Err(StartError::Failed { message, .. }) => {
                events.kubelet(
                    &self.involved,
                    Some(&name),
                    EventType::Warning,
                    "Failed",
                    format!("Error: failed to start container \"{name}\": {message}"),
                );
                let now = jiff::Timestamp::now();
                let terminated = Terminated {
                    exit_code: 128,
                    reason: "StartError".to_string(),
                    message: Some(message),
                    started_at: Some(now),
                    finished_at: now,
                    container_id: None,
                };
                self.after_exit(index, terminated);
            }
            Err(StartError::Runtime(error)) => {
                slot.attempts -= 1;
                self.create_failed(index, format!("{error:#}"));
            }
            Err(StartError::Config(message)) => {
                slot.attempts -= 1;
                self.config_failed(index, message);
            }
        }
    }

    /// `CreateContainerConfigError`: retried with back-off, as the kubelet does (the spec
    /// cannot change, but what it refers to may).
    pub(super) fn config_failed(&mut self, index: usize, message: String) {
        self.not_created(index, "CreateContainerConfigError", message);
    }

    /// `CreateContainerError`: retried with back-off.
    pub(super) fn create_failed(&mut self, index: usize, message: String) {
        self.not_created(index, "CreateContainerError", message);
    }

    fn not_created(&mut self, index: usize, reason: &str, message: String) {
        let name = self.slots[index].container.name.clone();
        self.context.events.kubelet(
            &self.involved,
            Some(&name),
            EventType::Warning,
            "Failed",
            format!("Error: {message}"),
        );
        let slot = &mut self.slots[index];
        slot.state = SlotState::waiting(reason, Some(message));
        slot.backoff = next_backoff(slot.backoff);
        slot.due = Some(Instant::now() + slot.backoff);
    }

    /// Environment variables from `valueFrom.fieldRef` (the downward API).
    pub(super) fn field_env(
        &self,
        container: &Container,
        sandbox: &PodSandbox,
    ) -> Vec<(String, String)> {
        let mut env = Vec::new();
        for var in container.env.iter().flatten() {
            let Some(field) = var
                .value_from
                .as_ref()
                .and_then(|from| from.field_ref.as_ref())
            else {
                continue;
            };
            let value = match field.field_path.as_str() {
                "metadata.name" => self.identity.name.clone(),
                "metadata.namespace" => self.identity.namespace.clone(),
                "metadata.uid" => self.identity.uid.clone(),
                "spec.nodeName" => self.context.node_name.clone(),
                "status.podIP" => sandbox.network.ip.to_string(),
                "status.hostIP" => self.context.network.gateway().to_string(),
                _ => continue,
            };
            env.push((var.name.clone(), value));
        }
        env
    }
}
