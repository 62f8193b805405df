//! Recording Events about the objects a controller acts on, as client-go's event recorder
//! does for kube-controller-manager: a core/v1 Event naming the object, a reason and a
//! message, shown by `kubectl describe` and `kubectl events`.
//!
//! Each call creates a new Event (kube-runtime's `Recorder` folds every event of one reason
//! into the first one's message, which would hide "Scaled down …" behind "Scaled up …").
//! A failure to record is logged, never a reason to fail the reconcile, as upstream.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::PostParams;
use kube::{Api, Client, Resource, ResourceExt as _};

/// Normal or Warning, as the Event's `type`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EventType {
    Normal,
    Warning,
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

    /// Records `reason` and `message` about `object` (`Eventf`).
    pub(crate) async fn record<K>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        message: String,
    ) where
        K: Resource<DynamicType = ()>,
    {
        let namespace = object.namespace().unwrap_or_else(|| "default".into());
        let now = Time(jiff::Timestamp::now());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{}.{:x}", object.name_any(), now.0.as_nanosecond())),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(K::api_version(&()).into_owned()),
                kind: Some(K::kind(&()).into_owned()),
                name: object.meta().name.clone(),
                namespace: object.meta().namespace.clone(),
                uid: object.meta().uid.clone(),
                resource_version: object.meta().resource_version.clone(),
                field_path: None,
            },
            reason: Some(reason.into()),
            message: Some(message),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            source: Some(EventSource {
                component: Some(self.component.into()),
                host: None,
            }),
            reporting_component: Some(self.component.into()),
            reporting_instance: Some(self.component.into()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Event::default()
        };
        let events = Api::<Event>::namespaced(self.client.clone(), &namespace);
        if let Err(error) = events.create(&PostParams::default(), &event).await {
            tracing::debug!(%error, reason, "recording an event failed");
        }
    }
}
