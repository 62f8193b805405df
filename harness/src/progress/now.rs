//! What the cluster shows now in a lab's namespace, in a few words for the progress line:
//! each pod that is not Ready with its `kubectl get pod` status, each claim not yet Bound,
//! each followed by the newest event about it (`Pulling image "nginx"`).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::diagnostics::event_time;
use crate::table::pod_status;
use crate::workload::pvc_phase;
use k8s_labs_podutil::is_pod_running_and_ready;

/// How long one look at the cluster may take; a slow answer shows nothing this time.
const LOOK_TIMEOUT: Duration = Duration::from_secs(2);
/// Characters of an event's message shown at most.
const MESSAGE_LIMIT: usize = 70;

/// The not-ready pods and unbound claims of `namespace`, each with its newest event; empty
/// when the cluster does not answer in time (the line is only a view, never a claim).
pub async fn cluster_now(client: &Client, namespace: &str) -> Vec<String> {
    let look = async {
        let params = ListParams::default();
        let pods = Api::<Pod>::namespaced(client.clone(), namespace);
        let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace);
        let (pods, claims) = tokio::join!(pods.list(&params), claims.list(&params));
        let pods = pods.map(|list| list.items).unwrap_or_default();
        let claims = claims.map(|list| list.items).unwrap_or_default();
        // Events only matter for something not ready; a settled namespace costs no third list.
        if describe_now(&pods, &claims, &[]).is_empty() {
            return Vec::new();
        }
        let events = Api::<Event>::namespaced(client.clone(), namespace)
            .list(&params)
            .await
            .map(|list| list.items)
            .unwrap_or_default();
        describe_now(&pods, &claims, &events)
    };
    tokio::time::timeout(LOOK_TIMEOUT, look)
        .await
        .unwrap_or_default()
}

/// [`cluster_now`] of listed objects.
pub(crate) fn describe_now(
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
    events: &[Event],
) -> Vec<String> {
    let mut items = Vec::new();
    let mut pods: Vec<&Pod> = pods
        .iter()
        .filter(|pod| !is_pod_running_and_ready(pod) || pod.metadata.deletion_timestamp.is_some())
        .collect();
    pods.sort_by_key(|pod| pod.name_any());
    for pod in pods {
        let name = pod.name_any();
        let status = pod_status(pod);
        items.push(with_event(
            format!("{name} {status}"),
            newest_event(events, "Pod", &name, status),
        ));
    }
    let mut claims: Vec<&PersistentVolumeClaim> = claims
        .iter()
        .filter(|claim| pvc_phase(claim) != "Bound")
        .collect();
    claims.sort_by_key(|claim| claim.name_any());
    for claim in claims {
        let name = claim.name_any();
        let phase = pvc_phase(claim);
        items.push(with_event(
            format!("pvc {name} {phase}"),
            newest_event(events, "PersistentVolumeClaim", &name, phase),
        ));
    }
    items
}

fn with_event(item: String, event: Option<&Event>) -> String {
    let message = event
        .and_then(|event| event.message.as_deref())
        .map(|message| message.lines().next().unwrap_or_default().trim())
        .filter(|message| !message.is_empty());
    match message {
        Some(message) => format!("{item}: {}", cut(message, MESSAGE_LIMIT)),
        None => item,
    }
}

/// The newest event about `kind` `name` that says more than `status` (kubelet follows
/// "Failed to pull image …: why" with "Error: ErrImagePull", which the status already says).
fn newest_event<'a>(
    events: &'a [Event],
    kind: &str,
    name: &str,
    status: &str,
) -> Option<&'a Event> {
    events
        .iter()
        .filter(|event| {
            event.involved_object.kind.as_deref() == Some(kind)
                && event.involved_object.name.as_deref() == Some(name)
                && !event
                    .message
                    .as_deref()
                    .is_some_and(|message| message.contains(status))
        })
        .max_by_key(|event| event_time(event))
}

fn cut(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((index, _)) => format!("{}…", &text[..index]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, waiting: Option<&str>, ready: bool) -> Pod {
        let state = match waiting {
            Some(reason) => json!({"waiting": {"reason": reason}}),
            None => json!({"running": {}}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            "status": {
                "phase": if ready { "Running" } else { "Pending" },
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                "containerStatuses": [{
                    "name": "c", "image": "nginx", "imageID": "", "ready": ready,
                    "restartCount": 0, "state": state
                }]
            }
        }))
        .unwrap()
    }

    fn event(kind: &str, name: &str, at: &str, message: &str) -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": format!("{name}.{at}")},
            "involvedObject": {"kind": kind, "name": name},
            "lastTimestamp": at,
            "message": message
        }))
        .unwrap()
    }

    #[test]
    fn not_ready_pods_and_pending_claims_come_with_their_newest_event() {
        let pods = [
            pod("web-1", Some("ContainerCreating"), false),
            pod("web-0", None, true),
            pod("bad-x", Some("ImagePullBackOff"), false),
        ];
        let claims: Vec<PersistentVolumeClaim> = vec![
            serde_json::from_value(
                json!({"metadata": {"name": "www-web-1"}, "status": {"phase": "Pending"}}),
            )
            .unwrap(),
            serde_json::from_value(
                json!({"metadata": {"name": "www-web-0"}, "status": {"phase": "Bound"}}),
            )
            .unwrap(),
        ];
        let events = [
            event("Pod", "web-1", "2026-12-07T10:00:00Z", "Scheduled"),
            event(
                "Pod",
                "web-1",
                "2026-12-07T10:00:02Z",
                "Pulling image \"nginx\"",
            ),
            event(
                "Pod",
                "web-0",
                "2026-12-07T10:00:03Z",
                "Started container c",
            ),
            event("Pod", "bad-x", "2026-12-07T10:00:04Z", &"x".repeat(100)),
            event(
                "Pod",
                "bad-x",
                "2026-12-07T10:00:05Z",
                "Error: ImagePullBackOff",
            ),
        ];
        assert_eq!(
            describe_now(&pods, &claims, &events),
            [
                format!("bad-x ImagePullBackOff: {}…", "x".repeat(70)),
                "web-1 ContainerCreating: Pulling image \"nginx\"".to_string(),
                "pvc www-web-1 Pending".to_string(),
            ]
        );
    }

    #[test]
    fn a_settled_namespace_shows_nothing() {
        assert!(describe_now(&[pod("web-0", None, true)], &[], &[]).is_empty());
    }
}
