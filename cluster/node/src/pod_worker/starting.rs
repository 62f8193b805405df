//! Starting a pod's containers: the image (see [`super::pulling`]), the runc container, the
//! exit and readiness followers.

use k8s_openapi::api::core::v1::{Container, Probe};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::{PodWorker, WorkerEvent, next_backoff};
use crate::containers::{ContainerLaunch, RunningContainer, start_container};
use crate::events::EventType;
use crate::probes::{ProbeTarget, run_readiness_probe};
use crate::runtime::StartError;
use crate::sandbox::PodSandbox;
use crate::status::{SlotState, Terminated};

impl PodWorker {
    /// Starts container `index` of the pod (pulling its image first) and follows it.
    pub(super) async fn start(&mut self, index: usize) {
        let Some(sandbox) = self.sandbox.clone() else {
            return;
        };
        let container = self.slots[index].container.clone();
        let Some(image) = self.ensure_image(index).await else {
            return;
        };
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
        let result = start_container(&self.context.runc, &self.context.registry, launch).await;
        self.slots[index].attempts += 1;
        match result {
            Ok(running) => self.started(index, attempt, &container, &sandbox, running),
            Err(StartError::Failed { message, .. }) => {
                self.start_failed(index, &container.name, message)
            }
            Err(StartError::Runtime(error)) => {
                self.slots[index].attempts -= 1;
                self.create_failed(index, format!("{error:#}"));
            }
            Err(StartError::Config(message)) => {
                self.slots[index].attempts -= 1;
                self.config_failed(index, message);
            }
        }
    }

    /// The container runs: the kubelet's `Created` and `Started` events, the slot's state,
    /// and the followers of its exit and readiness.
    fn started(
        &mut self,
        index: usize,
        attempt: i32,
        container: &Container,
        sandbox: &PodSandbox,
        running: RunningContainer,
    ) {
        let name = &container.name;
        let events = &self.context.events;
        events.kubelet(
            &self.involved,
            Some(name),
            EventType::Normal,
            "Created",
            format!("Created container: {name}"),
        );
        events.kubelet(
            &self.involved,
            Some(name),
            EventType::Normal,
            "Started",
            format!("Started container {name}"),
        );
        let probe = container.readiness_probe.clone().map(|probe| {
            let target = ProbeTarget {
                runc: self.context.runc.clone(),
                runc_id: running.runc_id.clone(),
                network: sandbox.network.clone(),
                container: container.clone(),
                events: self.context.events.clone(),
                pod: self.involved.clone(),
            };
            self.follow_readiness(index, attempt, probe, target)
        });
        let slot = &mut self.slots[index];
        slot.state = SlotState::Running {
            started_at: running.started_at,
        };
        slot.container_id = Some(format!("runc://{}", running.runc_id));
        slot.running = Some(running.stop_target());
        slot.ready = container.readiness_probe.is_none();
        slot.probe = probe;
        let sender = self.events_tx.clone();
        let exit = running.exit;
        tokio::spawn(async move {
            if let Ok(exit) = exit.await {
                let _ = sender.send(WorkerEvent::Exited {
                    index,
                    attempt,
                    exit_code: exit.exit_code,
                    finished_at: exit.finished_at,
                    oom_killed: exit.oom_killed,
                });
            }
        });
    }

    /// Runs the readiness probe and passes its results to the worker; the probe's handle.
    fn follow_readiness(
        &self,
        index: usize,
        attempt: i32,
        probe: Probe,
        target: ProbeTarget,
    ) -> AbortHandle {
        let (results_tx, mut results_rx) = mpsc::unbounded_channel();
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
        prober.abort_handle()
    }

    /// runc could not start the process (`StartError`, exit code 128), as the kubelet shows
    /// it; restarted as any exit is.
    fn start_failed(&mut self, index: usize, name: &str, message: String) {
        self.context.events.kubelet(
            &self.involved,
            Some(name),
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
