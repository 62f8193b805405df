//! Core v1 Events about a controller's objects, as kube-controller-manager's legacy event
//! recorders write them (`source.component` set to the controller, e.g. `job-controller`):
//! what `kubectl describe` lists under Events and `kubectl events` shows.
//!
//! Each call creates a new Event (kube-runtime's `Recorder` folds every event of one reason
//! into the first one's message, which would hide "Scaled down …" behind "Scaled up …").
//! Recording is best effort, as upstream's broadcaster: an event the API server refuses is
//! logged and dropped, never a reason to fail or repeat a reconciliation.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::PostParams;
use kube::{Api, Client, Resource};

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

/// One event about an object, decided by a controller's sync logic before it is written.
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

/// Records Events as one controller (`source.component`, e.g. `deployment-controller`).
#[derive(Clone)]
pub(crate) struct Recorder {
    client: Client,
    component: &'static str,
}

impl Recorder {
    /// A recorder reporting as `component`.
    pub(crate) fn new(client: Client, component: &'static str) -> Self {
        Recorder { client, component }
    }

    /// Records `note` about `object` (`Eventf`).
    pub(crate) async fn record<K>(&self, object: &K, note: &Note)
    where
        K: Resource<DynamicType = ()>,
    {
        record(&self.client, self.component, object, note).await;
    }
}

/// Writes `note` about `object` as `component` (best effort).
pub(crate) async fn record<K>(client: &Client, component: &str, object: &K, note: &Note)
where
    K: Resource<DynamicType = ()>,
{
    let event = new_event(
        component,
        reference_to(object),
        note.type_,
        note.reason,
        note.message.clone(),
    );
    write_event(client, event).await;
}

/// The reference an event about `object` carries (`ref.GetReference`).
pub(crate) fn reference_to<K: Resource<DynamicType = ()>>(object: &K) -> ObjectReference {
    let meta = object.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}

/// The Event recording `reason` and `message` about `regarding`, from `component`.
fn new_event(
    component: &str,
    regarding: ObjectReference,
    type_: EventType,
    reason: &str,
    message: String,
) -> Event {
    let now = jiff::Timestamp::now();
    let name = format!(
        "{}.{:x}",
        regarding.name.as_deref().unwrap_or(component),
        now.as_nanosecond()
    );
    Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        involved_object: regarding,
        reason: Some(reason.to_string()),
        message: Some(message),
        type_: Some(type_.as_str().to_string()),
        source: Some(EventSource {
            component: Some(component.to_string()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        reporting_component: Some(component.to_string()),
        reporting_instance: Some(component.to_string()),
        ..Event::default()
    }
}

/// Writes `event`; a failure is logged, not returned (see the module documentation).
async fn write_event(client: &Client, event: Event) {
    let namespace = event
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let api = Api::<Event>::namespaced(client.clone(), &namespace);
    if let Err(error) = api.create(&PostParams::default(), &event).await {
        tracing::debug!(%error, reason = ?event.reason, "recording an event failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSet;

    #[test]
    fn events_name_their_object_and_component() {
        let mut set = StatefulSet::default();
        set.metadata.name = Some("web".into());
        set.metadata.namespace = Some("default".into());
        set.metadata.uid = Some("uid".into());
        let event = new_event(
            "statefulset-controller",
            reference_to(&set),
            EventType::Normal,
            "SuccessfulCreate",
            "create Pod web-0 in StatefulSet web successful".into(),
        );
        assert!(event.metadata.name.as_deref().unwrap().starts_with("web."));
        assert_eq!(event.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(event.involved_object.kind.as_deref(), Some("StatefulSet"));
        assert_eq!(
            event.involved_object.api_version.as_deref(),
            Some("apps/v1")
        );
        assert_eq!(event.type_.as_deref(), Some("Normal"));
        assert_eq!(
            event.source.unwrap().component.as_deref(),
            Some("statefulset-controller")
        );
    }
}
