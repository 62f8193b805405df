//! Events of the controllers, as kube-controller-manager's legacy event recorder writes them
//! (core v1 Events with `source.component` set to the controller, e.g. `job-controller`), so
//! that `kubectl describe job` and `kubectl get events` show them as on a real cluster.
//! Recording is best effort, as upstream's: a failed write is logged, never a reconcile error.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::PostParams;
use kube::{Api, Client, Resource, ResourceExt as _};

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One event about an object, before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    pub type_: EventType,
    pub reason: &'static str,
    pub message: String,
}

impl Note {
    pub(crate) fn normal(reason: &'static str, message: impl Into<String>) -> Note {
        Note {
            type_: EventType::Normal,
            reason,
            message: message.into(),
        }
    }

    pub(crate) fn warning(reason: &'static str, message: impl Into<String>) -> Note {
        Note {
            type_: EventType::Warning,
            reason,
            message: message.into(),
        }
    }
}

/// Writes `note` about `object` as `component` (best effort).
pub(crate) async fn record<K>(client: &Client, component: &str, object: &K, note: &Note)
where
    K: Resource<DynamicType = ()>,
{
    let namespace = object.namespace().unwrap_or_else(|| "default".to_string());
    let now = jiff::Timestamp::now();
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{:x}",
                object.name_any(),
                now.as_nanosecond() as u128 & 0xffff_ffff_ffff_ffff
            )),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: Some(object.name_any()),
            namespace: object.namespace(),
            uid: object.uid(),
            resource_version: object.resource_version(),
            ..ObjectReference::default()
        },
        reason: Some(note.reason.to_string()),
        message: Some(note.message.clone()),
        type_: Some(note.type_.as_str().to_string()),
        source: Some(EventSource {
            component: Some(component.to_string()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        reporting_component: Some(component.to_string()),
        reporting_instance: Some(String::new()),
        ..Event::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    if let Err(error) = api.create(&PostParams::default(), &event).await {
        tracing::debug!(
            "recording event {} for {}/{}: {error}",
            note.reason,
            namespace,
            object.name_any()
        );
    }
}
