//! Failure diagnostics, collected without being asked: what a reader needs first when a step
//! failed — each pod's phase, conditions and container states (with the last termination),
//! the last lines of each container's log (and of the previous container after a restart),
//! the StatefulSets' and ReplicaSets' status, and the namespace's events sorted by time.
//! Errors reading any of them are reported inline: diagnostics must never hide the failure.

use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client, ResourceExt};

use k8s_labs_podutil::pod_phase;

/// How many log lines of each container the diagnostics show.
pub const LOG_LINES: i64 = 15;
/// How many events the diagnostics show (the latest).
pub const EVENT_LIMIT: usize = 30;

/// Everything the diagnostics show for `namespace`, as text.
pub async fn collect_diagnostics(client: &Client, namespace: &str) -> String {
    let mut text = format!("pods in {namespace}:\n");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod_list = match pods.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(error) => {
            let _ = writeln!(text, "  (cannot list pods: {error})");
            Vec::new()
        }
    };
    if pod_list.is_empty() {
        text.push_str("  (none)\n");
    }
    for pod in &pod_list {
        text.push_str(&describe_pod(pod));
        text.push_str(&container_logs(&pods, pod).await);
    }
    text.push_str(&workload_status(client, namespace).await);
    let _ = writeln!(text, "events in {namespace} (oldest first):");
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    match events.list(&ListParams::default()).await {
        Ok(list) if list.items.is_empty() => text.push_str("  (none)\n"),
        Ok(list) => text.push_str(&describe_events(list.items, EVENT_LIMIT)),
        Err(error) => {
            let _ = writeln!(text, "  (cannot list events: {error})");
        }
    }
    text
}

/// The last [`LOG_LINES`] of each container of `pod` that has run, and of its previous
/// instance when it restarted (where a crash usually explains itself).
async fn container_logs(pods: &Api<Pod>, pod: &Pod) -> String {
    let mut text = String::new();
    let name = pod.name_any();
    let statuses = pod
        .status
        .as_ref()
        .and_then(|status| status.container_statuses.clone())
        .unwrap_or_default();
    for status in statuses {
        let started = status
            .state
            .as_ref()
            .is_some_and(|state| state.waiting.is_none());
        let mut instances = Vec::new();
        if status.restart_count > 0 {
            instances.push(true);
        }
        if started {
            instances.push(false);
        }
        for previous in instances {
            let params = LogParams {
                container: Some(status.name.clone()),
                tail_lines: Some(LOG_LINES),
                previous,
                ..LogParams::default()
            };
            let which = if previous { "previous log" } else { "log" };
            let _ = writeln!(text, "    {which} of container {}:", status.name);
            match pods.logs(&name, &params).await {
                Ok(log) if log.trim().is_empty() => text.push_str("      (empty)\n"),
                Ok(log) => {
                    for line in log.lines() {
                        let _ = writeln!(text, "      | {line}");
                    }
                }
                Err(error) => {
                    let _ = writeln!(text, "      (cannot read it: {error})");
                }
            }
        }
    }
    text
}

/// The StatefulSets' and ReplicaSets' replica counts, as `kubectl get sts,rs` shows them.
async fn workload_status(client: &Client, namespace: &str) -> String {
    let mut text = String::new();
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    if let Ok(list) = statefulsets.list(&ListParams::default()).await {
        for statefulset in list.items {
            let wanted = statefulset.spec.as_ref().and_then(|spec| spec.replicas);
            let status = statefulset.status.as_ref();
            let _ = writeln!(
                text,
                "statefulset {}: replicas {} wanted, {} created, {} ready, {} current",
                statefulset.name_any(),
                wanted.unwrap_or(1),
                status.map_or(0, |status| status.replicas),
                status.and_then(|status| status.ready_replicas).unwrap_or(0),
                status
                    .and_then(|status| status.current_replicas)
                    .unwrap_or(0),
            );
        }
    }
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    if let Ok(list) = replicasets.list(&ListParams::default()).await {
        for replicaset in list.items {
            let wanted = replicaset.spec.as_ref().and_then(|spec| spec.replicas);
            let status = replicaset.status.as_ref();
            let _ = writeln!(
                text,
                "replicaset {}: replicas {} wanted, {} created, {} ready",
                replicaset.name_any(),
                wanted.unwrap_or(1),
                status.map_or(0, |status| status.replicas),
                status.and_then(|status| status.ready_replicas).unwrap_or(0),
            );
        }
    }
    text
}

/// One pod as diagnostic text: phase, IP, conditions and each container's state.
pub fn describe_pod(pod: &Pod) -> String {
    let mut text = String::new();
    let status = pod.status.as_ref();
    let ip = status
        .and_then(|status| status.pod_ip.as_deref())
        .unwrap_or("<none>");
    let _ = writeln!(text, "  pod {}: {} ip {ip}", pod.name_any(), pod_phase(pod));
    if let Some(conditions) = status.and_then(|status| status.conditions.as_ref()) {
        let conditions: Vec<String> = conditions
            .iter()
            .map(|condition| {
                let reason = condition
                    .reason
                    .as_deref()
                    .map(|reason| format!(" ({reason})"))
                    .unwrap_or_default();
                format!("{}={}{reason}", condition.type_, condition.status)
            })
            .collect();
        let _ = writeln!(text, "    conditions: {}", conditions.join(", "));
    }
    for container in status
        .and_then(|status| status.container_statuses.as_ref())
        .into_iter()
        .flatten()
    {
        let _ = writeln!(text, "    container {}", describe_container(container));
    }
    text
}

fn describe_container(container: &ContainerStatus) -> String {
    let state = container.state.as_ref();
    let now = if let Some(waiting) = state.and_then(|state| state.waiting.as_ref()) {
        format!(
            "waiting: {} {}",
            waiting.reason.as_deref().unwrap_or(""),
            waiting.message.as_deref().unwrap_or("")
        )
    } else if let Some(terminated) = state.and_then(|state| state.terminated.as_ref()) {
        format!(
            "terminated: exit {} {} {}",
            terminated.exit_code,
            terminated.reason.as_deref().unwrap_or(""),
            terminated.message.as_deref().unwrap_or("")
        )
    } else if state.and_then(|state| state.running.as_ref()).is_some() {
        "running".to_string()
    } else {
        "unknown".to_string()
    };
    let last = container
        .last_state
        .as_ref()
        .and_then(|state| state.terminated.as_ref())
        .map(|terminated| {
            format!(
                "; last terminated: exit {} {}",
                terminated.exit_code,
                terminated.reason.as_deref().unwrap_or("")
            )
        })
        .unwrap_or_default();
    format!(
        "{}: {} ready={} restarts={}{last}",
        container.name,
        now.trim_end(),
        container.ready,
        container.restart_count
    )
}

/// The last `limit` events sorted by time, one per line: `time type reason object: message`.
pub fn describe_events(mut events: Vec<Event>, limit: usize) -> String {
    events.sort_by_key(event_time);
    let skip = events.len().saturating_sub(limit);
    events
        .iter()
        .skip(skip)
        .map(|event| {
            let time = event_time(event)
                .map(|time| time.to_string())
                .unwrap_or_else(|| "-".to_string());
            let object = format!(
                "{}/{}",
                event
                    .involved_object
                    .kind
                    .as_deref()
                    .unwrap_or("?")
                    .to_lowercase(),
                event.involved_object.name.as_deref().unwrap_or("?")
            );
            format!(
                "  {time} {} {} {object}: {}\n",
                event.type_.as_deref().unwrap_or("-"),
                event.reason.as_deref().unwrap_or("-"),
                event.message.as_deref().unwrap_or("").trim()
            )
        })
        .collect()
}

/// When an event happened: lastTimestamp, else eventTime, else firstTimestamp, else creation.
pub(crate) fn event_time(event: &Event) -> Option<jiff::Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|Time(time)| *time)
        .or_else(|| event.event_time.as_ref().map(|micro| micro.0))
        .or_else(|| event.first_timestamp.as_ref().map(|Time(time)| *time))
        .or_else(|| {
            event
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|Time(time)| *time)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;

    fn event(reason: &str, at: &str) -> Event {
        Event {
            reason: Some(reason.to_string()),
            type_: Some("Normal".to_string()),
            message: Some(format!("{reason} happened")),
            involved_object: ObjectReference {
                kind: Some("Pod".to_string()),
                name: Some("web-0".to_string()),
                ..Default::default()
            },
            last_timestamp: Some(Time(at.parse().unwrap())),
            ..Default::default()
        }
    }

    #[test]
    fn events_are_sorted_by_time_and_limited_to_the_latest() {
        let events = vec![
            event("Started", "2024-01-01T00:00:03Z"),
            event("Scheduled", "2024-01-01T00:00:01Z"),
            event("Pulled", "2024-01-01T00:00:02Z"),
        ];
        let text = describe_events(events, 2);
        let reasons: Vec<&str> = text
            .lines()
            .map(|line| line.split_whitespace().nth(2).unwrap())
            .collect();
        assert_eq!(reasons, vec!["Pulled", "Started"]);
        assert!(text.contains("pod/web-0: Pulled happened"), "{text}");
    }
}
