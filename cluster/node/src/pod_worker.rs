//! One pod on this node, from sandbox to teardown: the kubelet's pod worker. It creates the
//! sandbox, starts each container (image pulled or from the catalog, back-off on pull failures and
//! crashes), follows exits and readiness, writes the pod's status through the API, evicts the
//! pod when the node's storage check finds it over a limit, and on deletion stops the
//! containers within the grace period, removes everything and deletes the pod for good.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Client;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::claims::resolve_claims;
use crate::container_stop::StopTarget;
use crate::context::NodeContext;
use crate::events::{EventType, InvolvedPod};
use crate::grace::{Grace, effective_grace_seconds};
use crate::images::RunnableImage;
use crate::sandbox::{PodIdentity, PodSandbox, SandboxHost, create_sandbox};
use crate::status::{Conditions, SlotState, Terminated};

mod evicting;
mod pulling;
mod reporting;
mod starting;
mod stopping;

/// What the agent tells a pod worker about its pod.
#[derive(Debug, Clone)]
pub enum PodUpdate {
    Present(Arc<Pod>),
    /// The pod is no longer in the API.
    Gone,
}

const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A container that ran this long before exiting restarts without back-off.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(600);

enum WorkerEvent {
    Exited {
        index: usize,
        attempt: i32,
        exit_code: i32,
        finished_at: jiff::Timestamp,
        oom_killed: bool,
    },
    Readiness {
        index: usize,
        attempt: i32,
        ready: bool,
    },
}

struct Slot {
    container: Container,
    state: SlotState,
    last: Option<Terminated>,
    /// Attempts started so far; the next attempt's number.
    attempts: i32,
    ready: bool,
    image: Option<RunnableImage>,
    container_id: Option<String>,
    /// The attempt whose process runs now.
    running: Option<StopTarget>,
    /// When to try to start the container (again); `None` when it must not be started.
    due: Option<Instant>,
    /// When an `ErrImagePull` turns into `ImagePullBackOff`.
    pull_backoff_at: Option<Instant>,
    backoff: Duration,
    probe: Option<tokio::task::AbortHandle>,
}

impl Slot {
    fn has_run(&self) -> bool {
        self.attempts > 0
    }
}

pub struct PodWorker {
    context: Arc<NodeContext>,
    pod: Arc<Pod>,
    identity: PodIdentity,
    involved: InvolvedPod,
    updates: watch::Receiver<PodUpdate>,
    /// The pod is no longer in the API (or the agent stopped following it).
    gone: bool,
    shutdown: CancellationToken,
    sandbox: Option<PodSandbox>,
    /// When to try again to create a sandbox that failed, and the back-off so far.
    sandbox_retry_at: Option<Instant>,
    sandbox_backoff: Duration,
    /// The last sandbox attempt failed on an unresolved claim: retry when claims change.
    waiting_for_volumes: bool,
    volume_changes: watch::Receiver<u64>,
    slots: Vec<Slot>,
    start_time: jiff::Timestamp,
    conditions: Conditions,
    last_reported: Option<serde_json::Value>,
    events_tx: mpsc::UnboundedSender<WorkerEvent>,
    events_rx: mpsc::UnboundedReceiver<WorkerEvent>,
    /// The node's storage check sends an eviction's message here (see [`crate::eviction`]).
    evictions_tx: mpsc::UnboundedSender<String>,
    evictions_rx: mpsc::UnboundedReceiver<String>,
    /// Why the pod was evicted, once it has been: it has ended for good.
    evicted: Option<String>,
    /// The grace period its containers are being stopped within, once they are; it only
    /// shrinks.
    grace_seconds: Option<i64>,
    /// The containers were stopped for the pod's deletion: its phase is terminal.
    terminated: bool,
}

impl PodWorker {
    pub fn new(
        context: Arc<NodeContext>,
        pod: Arc<Pod>,
        updates: watch::Receiver<PodUpdate>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<PodWorker> {
        let identity = PodIdentity::of(&pod)?;
        let involved = InvolvedPod {
            namespace: identity.namespace.clone(),
            name: identity.name.clone(),
            uid: identity.uid.clone(),
        };
        let now = Instant::now();
        let slots = pod
            .spec
            .as_ref()
            .map(|spec| spec.containers.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|container| Slot {
                container,
                state: SlotState::waiting("ContainerCreating", None),
                last: None,
                attempts: 0,
                ready: false,
                image: None,
                container_id: None,
                running: None,
                due: Some(now),
                pull_backoff_at: None,
                backoff: Duration::ZERO,
                probe: None,
            })
            .collect();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (evictions_tx, evictions_rx) = mpsc::unbounded_channel();
        Ok(PodWorker {
            context: context.clone(),
            pod,
            identity,
            involved,
            updates,
            gone: false,
            shutdown,
            sandbox: None,
            sandbox_retry_at: None,
            sandbox_backoff: Duration::ZERO,
            waiting_for_volumes: false,
            volume_changes: context.volume_changes.subscribe(),
            slots,
            start_time: jiff::Timestamp::now(),
            conditions: Conditions::default(),
            last_reported: None,
            events_tx,
            events_rx,
            evictions_tx,
            evictions_rx,
            evicted: None,
            grace_seconds: None,
            terminated: false,
        })
    }

    fn client(&self) -> &Client {
        &self.context.client
    }

    fn restart_policy(&self) -> String {
        self.pod
            .spec
            .as_ref()
            .and_then(|spec| spec.restart_policy.clone())
            .unwrap_or_else(|| "Always".to_string())
    }

    /// Runs the pod until it is deleted, gone, or the node shuts down.
    pub async fn run(mut self) {
        if self.refresh() {
            self.conditions.set("PodScheduled", true, None);
            // As the kubelet's first sync: the pod is Pending with its containers
            // ContainerCreating before its volumes are mounted (which may wait, with a
            // FailedMount event, for a claim to bind).
            self.report_status().await;
            self.create_sandbox().await;
        }
        loop {
            // What changed while the sandbox was made or containers started: a pod marked for
            // deletion meanwhile must not get (more) containers started.
            self.refresh();
            if self.shutdown.is_cancelled() {
                self.terminate(Grace::Now).await;
                return;
            }
            if self.gone {
                // Removed from the API without the node's word (`--force`): its containers
                // still get their grace period, as the kubelet gives them.
                let grace = effective_grace_seconds(&self.pod, None);
                self.terminate(Grace::Seconds(grace)).await;
                return;
            }
            if self.pod.metadata.deletion_timestamp.is_some() {
                self.terminate_deleted().await;
                return;
            }
            if self.sandbox.is_none()
                && self.sandbox_retry_at.is_some_and(|at| at <= Instant::now())
            {
                self.create_sandbox().await;
                continue;
            }
            if self.sandbox.is_some() && self.start_due_containers().await {
                continue;
            }
            self.report_status().await;
            let deadline = self.next_deadline();
            tokio::select! {
                () = self.shutdown.cancelled() => {
                    self.terminate(Grace::Now).await;
                    return;
                }
                changed = self.updates.changed() => match changed {
                    Ok(()) => {
                        let update = self.updates.borrow_and_update().clone();
                        self.apply(update);
                    }
                    Err(_) => self.gone = true,
                },
                Some(event) = self.events_rx.recv() => self.handle(event).await,
                Some(message) = self.evictions_rx.recv() => self.evict(message).await,
                changed = self.volume_changes.changed(), if self.waiting_for_volumes => {
                    match changed {
                        Ok(()) => self.sandbox_retry_at = Some(Instant::now()),
                        // Cannot happen while the context lives; the back-off timer remains.
                        Err(_) => self.waiting_for_volumes = false,
                    }
                }
                () = sleep_until(deadline) => self.on_timer(),
            }
        }
    }

    /// Takes the latest word of the agent on the pod, if there is a new one. Returns whether
    /// the pod may (still) run: not gone from the API, not marked for deletion.
    fn refresh(&mut self) -> bool {
        match self.updates.has_changed() {
            Ok(true) => {
                let update = self.updates.borrow_and_update().clone();
                self.apply(update);
            }
            Ok(false) => {}
            // The agent dropped the sender: it no longer runs this pod.
            Err(_) => self.gone = true,
        }
        !self.gone && self.pod.metadata.deletion_timestamp.is_none()
    }

    fn apply(&mut self, update: PodUpdate) {
        match update {
            PodUpdate::Present(pod) => self.pod = pod,
            PodUpdate::Gone => self.gone = true,
        }
    }

    async fn create_sandbox(&mut self) {
        // As the kubelet's volume manager: the pod's claims must be bound before the sandbox
        // (and so any container) is made; until then the pod stays ContainerCreating.
        self.volume_changes.mark_unchanged();
        let claims = match resolve_claims(self.client(), &self.pod).await {
            Ok(claims) => claims,
            Err(unmounted) => {
                self.context.events.kubelet(
                    &self.involved,
                    None,
                    EventType::Warning,
                    "FailedMount",
                    unmounted.to_string(),
                );
                self.waiting_for_volumes = true;
                self.sandbox_backoff = next_backoff(self.sandbox_backoff);
                self.sandbox_retry_at = Some(Instant::now() + self.sandbox_backoff);
                return;
            }
        };
        self.waiting_for_volumes = false;
        let context = self.context.clone();
        let pod = self.pod.clone();
        let created = tokio::task::spawn_blocking(move || {
            let host = SandboxHost {
                network: &context.network,
                cgroups: &context.cgroups,
                user_namespaces: context.user_namespaces.as_ref(),
                node_root: &context.node_root,
                pods_dir: &context.pods_dir,
                dns: &context.dns,
            };
            create_sandbox(&host, &pod, &claims)
        })
        .await;
        match created {
            Ok(Ok(sandbox)) => {
                self.watch_storage(&sandbox);
                self.sandbox = Some(sandbox);
            }
            Ok(Err(error)) => {
                self.context.events.kubelet(
                    &self.involved,
                    None,
                    EventType::Warning,
                    "FailedCreatePodSandBox",
                    format!("Failed to create pod sandbox: {error:#}"),
                );
                self.sandbox_backoff = next_backoff(self.sandbox_backoff);
                self.sandbox_retry_at = Some(Instant::now() + self.sandbox_backoff);
            }
            Err(error) => tracing::error!("creating a sandbox panicked: {error}"),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        if self.sandbox.is_none() {
            // Nothing can start before the sandbox exists.
            return self.sandbox_retry_at;
        }
        self.slots
            .iter()
            .flat_map(|slot| [slot.due, slot.pull_backoff_at])
            .flatten()
            .min()
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            if slot.pull_backoff_at.is_some_and(|at| at <= now) {
                slot.pull_backoff_at = None;
                let image = slot.container.image.clone().unwrap_or_default();
                slot.state = SlotState::waiting(
                    "ImagePullBackOff",
                    Some(format!("Back-off pulling image \"{image}\"")),
                );
                let name = slot.container.name.clone();
                let events = &self.context.events;
                events.kubelet(
                    &self.involved,
                    Some(&name),
                    EventType::Normal,
                    "BackOff",
                    format!("Back-off pulling image \"{image}\""),
                );
                events.kubelet(
                    &self.involved,
                    Some(&name),
                    EventType::Warning,
                    "Failed",
                    "Error: ImagePullBackOff".to_string(),
                );
            }
        }
    }

    /// Starts the containers that are due, in order, until one finds the pod deleted (or
    /// gone); returns whether that happened.
    async fn start_due_containers(&mut self) -> bool {
        let now = Instant::now();
        for index in 0..self.slots.len() {
            if self.slots[index].due.is_some_and(|due| due <= now) {
                if !self.refresh() {
                    return true;
                }
                self.slots[index].due = None;
                self.start(index).await;
            }
        }
        false
    }

    async fn handle(&mut self, event: WorkerEvent) {
        match event {
            WorkerEvent::Exited {
                index,
                attempt,
                exit_code,
                finished_at,
                oom_killed,
            } => {
                // An evicted pod's containers were stopped for good; their ends are recorded.
                let Some(slot) = self.slots.get_mut(index).filter(|_| self.evicted.is_none())
                else {
                    return;
                };
                if slot.attempts != attempt + 1 {
                    return;
                }
                let started_at = match slot.state {
                    SlotState::Running { started_at } => Some(started_at),
                    _ => None,
                };
                let terminated = Terminated::exited(
                    exit_code,
                    oom_killed,
                    started_at,
                    finished_at,
                    slot.container_id.clone(),
                );
                self.after_exit(index, terminated);
            }
            WorkerEvent::Readiness {
                index,
                attempt,
                ready,
            } => {
                if let Some(slot) = self.slots.get_mut(index)
                    && slot.attempts == attempt + 1
                    && slot.state.is_running()
                {
                    slot.ready = ready;
                }
            }
        }
    }

    /// A container attempt ended (or never started): restart it per the restart policy, with
    /// the kubelet's back-off (none the first time, then 10 s doubling up to 5 min).
    fn after_exit(&mut self, index: usize, terminated: Terminated) {
        let policy = self.restart_policy();
        let involved = self.involved.clone();
        let slot = &mut self.slots[index];
        if let Some(probe) = slot.probe.take() {
            probe.abort();
        }
        slot.ready = false;
        slot.running = None;
        let restart = match policy.as_str() {
            "Never" => false,
            "OnFailure" => terminated.exit_code != 0,
            _ => true,
        };
        let ran_for = terminated
            .started_at
            .and_then(|started| {
                terminated
                    .finished_at
                    .duration_since(started)
                    .try_into()
                    .ok()
            })
            .unwrap_or(Duration::ZERO);
        if !restart {
            slot.state = SlotState::Terminated(terminated);
            return;
        }
        if ran_for >= BACKOFF_RESET_AFTER {
            slot.backoff = Duration::ZERO;
        }
        let delay = slot.backoff;
        slot.backoff = next_backoff(slot.backoff);
        slot.last = Some(terminated);
        slot.due = Some(Instant::now() + delay);
        if delay.is_zero() {
            slot.state = SlotState::waiting("ContainerCreating", None);
            return;
        }
        let name = slot.container.name.clone();
        let pod = format!("{}_{}({})", involved.name, involved.namespace, involved.uid);
        slot.state = SlotState::waiting(
            "CrashLoopBackOff",
            Some(format!(
                "back-off {}s restarting failed container={name} pod={pod}",
                delay.as_secs()
            )),
        );
        self.context.events.kubelet(
            &involved,
            Some(&name),
            EventType::Warning,
            "BackOff",
            format!("Back-off restarting failed container {name} in pod {pod}"),
        );
    }
}

fn next_backoff(current: Duration) -> Duration {
    if current.is_zero() {
        BACKOFF_START
    } else {
        (current * 2).min(BACKOFF_MAX)
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
