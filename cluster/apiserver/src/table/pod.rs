//! `printPod` of kube-apiserver's pkg/printers/internalversion/printers.go: READY counts
//! ready running containers, STATUS is the phase refined by the most telling container state
//! (waiting reason, termination reason, init progress), RESTARTS the restarts with the age of
//! the last one.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::Doc::{Field, Text};
use super::{AGE, Column, NAME, Printed, age, array, column, int, name, text, text_or, wide};

pub(super) const POD_COLUMNS: &[Column] = &[
    NAME,
    column(
        "Ready",
        "string",
        Text("The aggregate readiness state of this pod for accepting traffic."),
    ),
    column(
        "Status",
        "string",
        Text("The aggregate status of the containers in this pod."),
    ),
    column(
        "Restarts",
        "string",
        Text(
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
    ),
    AGE,
    wide("IP", "string", Field("PodStatus.podIP")),
    wide("Node", "string", Field("PodSpec.nodeName")),
    wide(
        "Nominated Node",
        "string",
        Field("PodStatus.nominatedNodeName"),
    ),
    wide("Readiness Gates", "string", Field("PodSpec.readinessGates")),
];

/// Restarts of containers and when the last one ended.
#[derive(Default, Clone, Copy)]
struct Restarts {
    count: i64,
    last: Option<Timestamp>,
}

impl Restarts {
    fn add(&mut self, container: &Value) {
        self.count += int(container, "/restartCount");
        self.last = self.last.max(super::timestamp(
            container,
            "/lastState/terminated/finishedAt",
        ));
    }

    /// `3 (5m ago)`, or just the count when nothing restarted.
    fn text(&self, now: Timestamp) -> String {
        match self.last {
            Some(when) if self.count != 0 => format!(
                "{} ({} ago)",
                self.count,
                super::human_duration(now.duration_since(when))
            ),
            _ => self.count.to_string(),
        }
    }
}

/// What the pod's containers add up to as `printPod` walks them.
struct Walk<'a> {
    pod: &'a Value,
    reason: String,
    ready: usize,
    restarts: Restarts,
    sidecar_restarts: Restarts,
}

impl Walk<'_> {
    /// Whether the init container `name` is a sidecar (`restartPolicy: Always`).
    fn restartable(&self, name: &str) -> bool {
        array(self.pod, "/spec/initContainers")
            .iter()
            .any(|c| text(c, "/name") == name && text(c, "/restartPolicy") == "Always")
    }

    /// The init containers, in order; true when one of them still holds the pod back (the
    /// reason then says which and why).
    fn init_containers(&mut self, statuses: &[Value]) -> bool {
        let count = array(self.pod, "/spec/initContainers").len();
        for (i, container) in statuses.iter().enumerate() {
            let sidecar = self.restartable(text(container, "/name"));
            self.restarts.add(container);
            if sidecar {
                self.sidecar_restarts.add(container);
            }
            let terminated = container.pointer("/state/terminated");
            if terminated.is_some() && int(container, "/state/terminated/exitCode") == 0 {
                continue;
            }
            if sidecar && container["started"].as_bool() == Some(true) {
                if container["ready"].as_bool() == Some(true) {
                    self.ready += 1;
                }
                continue;
            }
            let waiting = text(container, "/state/waiting/reason");
            self.reason = if let Some(terminated) = terminated {
                format!("Init:{}", termination_reason(terminated))
            } else if !waiting.is_empty() && waiting != "PodInitializing" {
                format!("Init:{waiting}")
            } else {
                format!("Init:{i}/{count}")
            };
            return true;
        }
        false
    }

    /// The app containers, last first as upstream walks them; restarts count from the
    /// sidecars'. True when one of them is running and ready.
    fn containers(&mut self, statuses: &[Value]) -> bool {
        self.restarts = self.sidecar_restarts;
        let mut has_running = false;
        for container in statuses.iter().rev() {
            self.restarts.add(container);
            let waiting = text(container, "/state/waiting/reason");
            if !waiting.is_empty() {
                self.reason = waiting.to_string();
            } else if let Some(terminated) = container.pointer("/state/terminated") {
                self.reason = termination_reason(terminated);
            } else if container["ready"].as_bool() == Some(true)
                && container.pointer("/state/running").is_some()
            {
                has_running = true;
                self.ready += 1;
            }
        }
        has_running
    }
}

/// A terminated container's reason, or `Signal:N` / `ExitCode:N` without one.
fn termination_reason(terminated: &Value) -> String {
    match text(terminated, "/reason") {
        "" if int(terminated, "/signal") != 0 => format!("Signal:{}", int(terminated, "/signal")),
        "" => format!("ExitCode:{}", int(terminated, "/exitCode")),
        why => why.to_string(),
    }
}

/// Whether the condition `kind` of the pod is `True`.
fn condition_true(conditions: &[Value], kind: &str) -> bool {
    conditions
        .iter()
        .any(|c| text(c, "/type") == kind && text(c, "/status") == "True")
}

pub(super) fn print_pod(pod: &Value, now: Timestamp) -> Printed {
    let status = &pod["status"];
    let phase = text(status, "/phase");
    let conditions = array(status, "/conditions");
    let mut walk = Walk {
        pod,
        reason: text_or(status, "/reason", phase).to_string(),
        ready: 0,
        restarts: Restarts::default(),
        sidecar_restarts: Restarts::default(),
    };
    if conditions
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated")
    {
        walk.reason = "SchedulingGated".to_string();
    }
    let initializing = walk.init_containers(array(status, "/initContainerStatuses"));
    if !initializing || condition_true(conditions, "Initialized") {
        let has_running = walk.containers(array(status, "/containerStatuses"));
        if walk.reason == "Completed" && has_running {
            let ready = condition_true(conditions, "Ready");
            walk.reason = if ready { "Running" } else { "NotReady" }.to_string();
        }
    }
    let deleting = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    if deleting && text(status, "/reason") == "NodeLost" {
        walk.reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        walk.reason = "Terminating".to_string();
    }
    let total = array(pod, "/spec/containers").len()
        + array(pod, "/spec/initContainers")
            .iter()
            .filter(|c| text(c, "/restartPolicy") == "Always")
            .count();
    let pod_ip = array(status, "/podIPs")
        .first()
        .map(|ip| text(ip, "/ip"))
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| text_or(status, "/podIP", "<none>"));
    Printed {
        cells: vec![
            name(pod),
            json!(format!("{}/{total}", walk.ready)),
            json!(walk.reason),
            json!(walk.restarts.text(now)),
            age(pod, now),
            json!(pod_ip),
            json!(text_or(pod, "/spec/nodeName", "<none>")),
            json!(text_or(status, "/nominatedNodeName", "<none>")),
            json!(readiness_gates(pod, conditions)),
        ],
        conditions: completed(phase),
    }
}

/// `passed/total` of the pod's readiness gates, or `<none>`.
fn readiness_gates(pod: &Value, conditions: &[Value]) -> String {
    let gates = array(pod, "/spec/readinessGates");
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let passed = gates
        .iter()
        .filter(|gate| {
            // The first condition of the gate's type decides, as upstream's loop breaks there.
            let wanted = text(gate, "/conditionType");
            conditions
                .iter()
                .find(|c| text(c, "/type") == wanted)
                .is_some_and(|c| text(c, "/status") == "True")
        })
        .count();
    format!("{passed}/{}", gates.len())
}

/// The row's `Completed` condition of a finished pod (what `kubectl get pods` hides them by).
fn completed(phase: &str) -> Vec<Value> {
    match phase {
        "Succeeded" => vec![
            json!({"type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."}),
        ],
        "Failed" => vec![
            json!({"type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."}),
        ],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-12-07T12:00:00Z".parse().unwrap()
    }

    /// READY, STATUS, RESTARTS and READINESS GATES of `pod`.
    fn row(pod: Value) -> (String, String, String, String) {
        let printed = print_pod(&pod, now());
        let cell = |i: usize| printed.cells[i].as_str().unwrap().to_string();
        (cell(1), cell(2), cell(3), cell(8))
    }

    fn with_init(init_statuses: Value) -> Value {
        json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "setup"}, {"name": "proxy", "restartPolicy": "Always"}],
                "containers": [{"name": "app"}],
            },
            "status": {"phase": "Pending", "initContainerStatuses": init_statuses},
        })
    }

    #[test]
    fn init_containers_show_their_progress_and_failures() {
        let waiting = with_init(json!([
            {"name": "setup", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}},
        ]));
        assert_eq!(row(waiting).1, "Init:0/2");
        let crashed = with_init(json!([
            {"name": "setup", "restartCount": 2, "state": {"terminated": {"exitCode": 1}},
             "lastState": {"terminated": {"finishedAt": "2026-12-07T11:59:30Z"}}},
        ]));
        assert_eq!(
            row(crashed),
            (
                "0/2".to_string(),
                "Init:ExitCode:1".to_string(),
                "2 (30s ago)".to_string(),
                "<none>".to_string()
            )
        );
        let killed = with_init(json!([
            {"name": "setup", "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}},
        ]));
        assert_eq!(row(killed).1, "Init:Signal:9");
    }

    #[test]
    fn a_started_sidecar_counts_as_ready_and_its_restarts_stay_counted() {
        let mut pod = with_init(json!([
            {"name": "setup", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
            {"name": "proxy", "restartCount": 1, "started": true, "ready": true,
             "state": {"running": {}}},
        ]));
        pod["status"]["phase"] = json!("Running");
        pod["status"]["conditions"] = json!([{"type": "Initialized", "status": "True"}]);
        pod["status"]["containerStatuses"] = json!([
            {"name": "app", "restartCount": 0, "ready": true, "state": {"running": {}}},
        ]);
        let (ready, status, restarts, _) = row(pod);
        assert_eq!((ready.as_str(), status.as_str()), ("2/2", "Running"));
        assert_eq!(restarts, "1", "the sidecar's restart, with no finish time");
    }

    #[test]
    fn completed_with_a_running_container_is_running_or_not_ready() {
        let pod = |ready: &str| {
            json!({
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "a"}, {"name": "b"}],
                         "readinessGates": [{"conditionType": "x"}, {"conditionType": "y"}]},
                "status": {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": ready},
                                   {"type": "x", "status": "True"}, {"type": "y", "status": "False"}],
                    "containerStatuses": [
                        {"name": "a", "restartCount": 0, "ready": true, "state": {"running": {}}},
                        {"name": "b", "restartCount": 0,
                         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    ],
                },
            })
        };
        assert_eq!(
            row(pod("False")),
            (
                "1/2".to_string(),
                "NotReady".to_string(),
                "0".to_string(),
                "1/2".to_string()
            )
        );
        assert_eq!(row(pod("True")).1, "Running");
    }

    #[test]
    fn a_gated_pod_says_so() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Pending",
                       "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]},
        });
        assert_eq!(row(pod).1, "SchedulingGated");
    }
}
