//! Core v1 Events, as the kubelet and the scheduler record them (what `kubectl describe pod`
//! and `kubectl get events` show). Written by one task in the order they happen, so pod workers
//! never wait on the API for an event; a repeated event (same object, reason and message)
//! bumps `count` and `lastTimestamp` of the first, as the kubelet's event correlator does.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::mpsc;

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// The object an event is about.
#[derive(Debug, Clone)]
pub struct InvolvedPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub pod: InvolvedPod,
    /// `spec.containers{nginx}` when the event is about a container.
    pub field_path: Option<String>,
    pub type_: EventType,
    pub reason: String,
    pub message: String,
    /// `kubelet` or `default-scheduler`.
    pub component: &'static str,
}

/// Queues events for the writer task.
#[derive(Debug, Clone)]
pub struct EventRecorder {
    sender: mpsc::UnboundedSender<EventRecord>,
}

impl EventRecorder {
    /// Starts the writer task.
    pub fn start(
        client: Client,
        node_name: String,
    ) -> (EventRecorder, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_events(client, node_name, receiver));
        (EventRecorder { sender }, task)
    }

    pub fn record(&self, record: EventRecord) {
        tracing::debug!(
            "event {}/{} {}: {}",
            record.pod.namespace,
            record.pod.name,
            record.reason,
            record.message
        );
        let _ = self.sender.send(record);
    }

    /// A kubelet event about a pod or one of its containers.
    pub fn kubelet(
        &self,
        pod: &InvolvedPod,
        container: Option<&str>,
        type_: EventType,
        reason: &str,
        message: String,
    ) {
        self.record(EventRecord {
            pod: pod.clone(),
            field_path: container.map(|name| format!("spec.containers{{{name}}}")),
            type_,
            reason: reason.to_string(),
            message,
            component: "kubelet",
        });
    }
}

/// What makes two events the same: namespace, pod uid, field path, reason, message.
type EventKey = (String, String, Option<String>, String, String);

async fn write_events(
    client: Client,
    node_name: String,
    mut receiver: mpsc::UnboundedReceiver<EventRecord>,
) {
    let mut seen: HashMap<EventKey, (String, i32)> = HashMap::new();
    while let Some(record) = receiver.recv().await {
        let api: Api<Event> = Api::namespaced(client.clone(), &record.pod.namespace);
        let key = (
            record.pod.namespace.clone(),
            record.pod.uid.clone(),
            record.field_path.clone(),
            record.reason.clone(),
            record.message.clone(),
        );
        let now = jiff::Timestamp::now();
        if let Some((name, count)) = seen.get_mut(&key) {
            *count += 1;
            let patch = serde_json::json!({"count": *count, "lastTimestamp": Time(now)});
            match api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => continue,
                Err(error) => tracing::debug!("updating event {name}: {error}"),
            }
        }
        let (name, event) = new_event(&record, &node_name, now);
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                seen.insert(key, (name, 1));
            }
            Err(error) => tracing::debug!(
                "recording event {} for {}/{}: {error}",
                record.reason,
                record.pod.namespace,
                record.pod.name
            ),
        }
    }
}
/// The Event of `record` seen first at `now`, as the kubelet's recorder writes it, and its
/// name (`<pod>.<nanoseconds in hex>`).
fn new_event(record: &EventRecord, node_name: &str, now: jiff::Timestamp) -> (String, Event) {
    let name = format!(
        "{}.{:x}",
        record.pod.name,
        now.as_nanosecond() as u128 & 0xffff_ffff_ffff_ffff
    );
    let event = Event {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(record.pod.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some("Pod".to_string()),
            name: Some(record.pod.name.clone()),
            namespace: Some(record.pod.namespace.clone()),
            uid: Some(record.pod.uid.clone()),
            field_path: record.field_path.clone(),
            ..ObjectReference::default()
        },
        reason: Some(record.reason.clone()),
        message: Some(record.message.clone()),
        type_: Some(
            match record.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .to_string(),
        ),
        source: Some(EventSource {
            component: Some(record.component.to_string()),
            host: (record.component == "kubelet").then(|| node_name.to_string()),
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: None::<MicroTime>,
        count: Some(1),
        reporting_component: Some(record.component.to_string()),
        reporting_instance: Some(match record.component {
            "kubelet" => node_name.to_string(),
            other => other.to_string(),
        }),
        ..Event::default()
    };
    (name, event)
}
