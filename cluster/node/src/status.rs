//! Container and pod status as the kubelet reports it: container states, the pod phase from
//! the containers and the restart policy, and conditions with their transition times.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, PodCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// How a container attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    /// `Completed` (exit 0), `Error`, `OOMKilled`, `StartError`.
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<jiff::Timestamp>,
    pub finished_at: jiff::Timestamp,
    pub container_id: Option<String>,
}

impl Terminated {
    /// A container attempt that ran and exited (or was killed), with the kubelet's reason.
    pub fn exited(
        exit_code: i32,
        oom_killed: bool,
        started_at: Option<jiff::Timestamp>,
        finished_at: jiff::Timestamp,
        container_id: Option<String>,
    ) -> Terminated {
        Terminated {
            exit_code,
            reason: Terminated::reason_for(exit_code, oom_killed).to_string(),
            message: None,
            started_at,
            finished_at,
            container_id,
        }
    }

    /// The kubelet's reason for how a container ended: `OOMKilled` when the runtime saw the
    /// OOM killer end it, whatever the exit code.
    pub fn reason_for(exit_code: i32, oom_killed: bool) -> &'static str {
        match (exit_code, oom_killed) {
            (_, true) => "OOMKilled",
            (0, false) => "Completed",
            _ => "Error",
        }
    }
}

/// The state of a container slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: jiff::Timestamp,
    },
    Terminated(Terminated),
}

impl SlotState {
    pub fn waiting(reason: &str, message: Option<String>) -> SlotState {
        SlotState::Waiting {
            reason: reason.to_string(),
            message,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self, SlotState::Running { .. })
    }
}

/// What a container status is made from.
#[derive(Debug, Clone)]
pub struct ContainerView<'a> {
    pub name: &'a str,
    pub image: String,
    pub image_id: String,
    pub container_id: Option<String>,
    pub ready: bool,
    pub restart_count: i32,
    pub state: &'a SlotState,
    pub last: Option<&'a Terminated>,
}

fn terminated_state(terminated: &Terminated) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: terminated.exit_code,
        reason: Some(terminated.reason.clone()),
        message: terminated.message.clone(),
        started_at: terminated.started_at.map(Time),
        finished_at: Some(Time(terminated.finished_at)),
        container_id: terminated.container_id.clone(),
        signal: None,
    }
}

fn state(state: &SlotState) -> ContainerState {
    match state {
        SlotState::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..ContainerState::default()
        },
        SlotState::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(*started_at)),
            }),
            ..ContainerState::default()
        },
        SlotState::Terminated(terminated) => ContainerState {
            terminated: Some(terminated_state(terminated)),
            ..ContainerState::default()
        },
    }
}

pub fn container_status(view: &ContainerView<'_>) -> ContainerStatus {
    ContainerStatus {
        name: view.name.to_string(),
        image: view.image.clone(),
        image_id: view.image_id.clone(),
        container_id: view.container_id.clone(),
        ready: view.ready,
        started: Some(view.state.is_running()),
        restart_count: view.restart_count,
        state: Some(state(view.state)),
        last_state: Some(
            view.last
                .map_or_else(ContainerState::default, |last| ContainerState {
                    terminated: Some(terminated_state(last)),
                    ..ContainerState::default()
                }),
        ),
        ..ContainerStatus::default()
    }
}

/// The pod phase, as the kubelet's `getPhase` computes it from its containers.
pub fn pod_phase(restart_policy: &str, containers: &[(&SlotState, bool)]) -> &'static str {
    // (state, has run before)
    let mut running = 0;
    let mut waiting_first_time = 0;
    let mut restarting = 0;
    let mut succeeded = 0;
    let mut failed = 0;
    for (state, has_run_before) in containers {
        match state {
            SlotState::Running { .. } => running += 1,
            SlotState::Waiting { .. } if *has_run_before => restarting += 1,
            SlotState::Waiting { .. } => waiting_first_time += 1,
            SlotState::Terminated(terminated) if terminated.exit_code == 0 => succeeded += 1,
            SlotState::Terminated(_) => failed += 1,
        }
    }
    if waiting_first_time > 0 {
        return "Pending";
    }
    if running > 0 || restarting > 0 {
        return "Running";
    }
    match restart_policy {
        "Always" => "Running",
        "OnFailure" if failed > 0 => "Running",
        _ if failed > 0 => "Failed",
        _ if succeeded == containers.len() => "Succeeded",
        _ => "Pending",
    }
}

/// Pod conditions that keep their `lastTransitionTime` until their status changes.
#[derive(Debug, Default)]
pub struct Conditions {
    current: Vec<PodCondition>,
}

impl Conditions {
    /// Sets a condition; the transition time moves only when the status changes.
    pub fn set(&mut self, type_: &str, status: bool, reason: Option<&str>) {
        let status = if status { "True" } else { "False" }.to_string();
        let now = Time(jiff::Timestamp::now());
        match self
            .current
            .iter_mut()
            .find(|condition| condition.type_ == type_)
        {
            Some(condition) => {
                if condition.status != status {
                    condition.status = status;
                    condition.last_transition_time = Some(now);
                }
                condition.reason = reason.map(str::to_string);
            }
            None => self.current.push(PodCondition {
                type_: type_.to_string(),
                status,
                reason: reason.map(str::to_string),
                last_transition_time: Some(now),
                ..PodCondition::default()
            }),
        }
    }

    pub fn to_vec(&self) -> Vec<PodCondition> {
        self.current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32) -> SlotState {
        SlotState::Terminated(Terminated {
            exit_code: code,
            reason: Terminated::reason_for(code, false).to_string(),
            message: None,
            started_at: None,
            finished_at: jiff::Timestamp::now(),
            container_id: None,
        })
    }

    #[test]
    fn phase_follows_the_kubelet() {
        let running = SlotState::Running {
            started_at: jiff::Timestamp::now(),
        };
        let pulling = SlotState::waiting("ErrImagePull", None);
        assert_eq!(pod_phase("Always", &[(&pulling, false)]), "Pending");
        assert_eq!(pod_phase("Always", &[(&running, false)]), "Running");
        let backing_off = SlotState::waiting("CrashLoopBackOff", None);
        assert_eq!(pod_phase("Always", &[(&backing_off, true)]), "Running");
        assert_eq!(pod_phase("Never", &[(&exited(0), true)]), "Succeeded");
        assert_eq!(pod_phase("Never", &[(&exited(1), true)]), "Failed");
        assert_eq!(pod_phase("OnFailure", &[(&exited(0), true)]), "Succeeded");
        assert_eq!(
            pod_phase("Never", &[(&exited(0), true), (&running, true)]),
            "Running"
        );
    }

    #[test]
    fn a_condition_keeps_its_transition_time_while_unchanged() {
        let mut conditions = Conditions::default();
        conditions.set("Ready", false, Some("ContainersNotReady"));
        let first = conditions.to_vec()[0].last_transition_time.clone();
        conditions.set("Ready", false, Some("ContainersNotReady"));
        assert_eq!(conditions.to_vec()[0].last_transition_time, first);
        conditions.set("Ready", true, None);
        assert_eq!(conditions.to_vec()[0].status, "True");
    }
}
