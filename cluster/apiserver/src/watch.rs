//! Watch streams: newline-delimited JSON events, each flushed as it happens. A watch starts
//! from the current objects (resourceVersion "" or "0"), from a point in the history (410 Gone
//! as an ERROR event when that is compacted), or with sendInitialEvents (streaming lists,
//! ended by the `k8s.io/initial-events-end` bookmark). Each watch runs in its own task, so
//! watches never hold up other requests.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::context::{Query, Shared, Target};
use crate::errors::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{EventType, StoreEvent};

/// How often an idle watch that asked for bookmarks gets one (with its latest revision).
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

/// Which events a watch wants.
struct WatchFilter {
    resource: &'static str,
    /// The resource the client watches (objects are sent in its shape).
    view: &'static ResourceInfo,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    name: Option<String>,
    /// Set when the client asked for Tables (`kubectl get -w`): the plural and includeObject.
    table: Option<(&'static str, Option<String>)>,
}

impl WatchFilter {
    /// The event line for an object, as a one-row Table when the client asked for Tables.
    fn line(&self, event_type: &str, object: &Value) -> Bytes {
        match &self.table {
            Some((plural, include)) => {
                let revision = object
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let table = crate::table::to_table(
                    plural,
                    std::slice::from_ref(object),
                    revision,
                    include.as_deref(),
                );
                line(event_type, &table)
            }
            None => line(event_type, object),
        }
    }

    fn matches(&self, object: &Value) -> bool {
        if let Some(name) = &self.name
            && object.pointer("/metadata/name").and_then(Value::as_str) != Some(name)
        {
            return false;
        }
        self.labels.matches(object) && self.fields.matches(object)
    }

    /// The event line to send for a store event, or None when the watch does not see it.
    /// An object entering the selection is ADDED, one leaving it is DELETED, as in Kubernetes.
    fn translate(&self, event: &StoreEvent) -> Option<Bytes> {
        if event.resource != self.resource {
            return None;
        }
        if self
            .namespace
            .as_ref()
            .is_some_and(|ns| *ns != event.namespace)
        {
            return None;
        }
        let object = crate::convert::to_view(self.view, event.object.clone());
        let previous = event
            .previous
            .clone()
            .map(|p| crate::convert::to_view(self.view, p));
        let now = self.matches(&object);
        let before = previous.as_ref().is_some_and(|p| self.matches(p));
        let event_type = match event.event_type {
            EventType::Added => now.then_some("ADDED"),
            EventType::Deleted => (now || before).then_some("DELETED"),
            EventType::Modified => match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
        }?;
        Some(self.line(event_type, &object))
    }
}

fn line(event_type: &str, object: &Value) -> Bytes {
    let mut bytes =
        serde_json::to_vec(&json!({ "type": event_type, "object": object })).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn bookmark(resource: &ResourceInfo, revision: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({ "resourceVersion": revision.to_string() });
    if initial_events_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    line(
        "BOOKMARK",
        &json!({ "kind": resource.kind, "apiVersion": resource.api_version(), "metadata": metadata }),
    )
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<Bytes, Infallible>(bytes), rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Starts a watch and returns the streaming response.
pub fn watch(
    state: &Shared,
    target: &Target,
    query: &Query,
    headers: &http::HeaderMap,
) -> ApiResult<Response> {
    let resource = target.resource;
    let filter = WatchFilter {
        resource: resource.store_key(),
        view: resource,
        namespace: target.namespace.clone(),
        labels: LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())?,
        name: target.name.clone(),
        table: crate::table::wants_table(headers).then(|| {
            (
                resource.plural,
                query.get("includeObject").map(String::from),
            )
        }),
    };
    let send_initial_events = query.flag("sendInitialEvents");
    let bookmarks = query.flag("allowWatchBookmarks");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0);
    let from = match query.get("resourceVersion").unwrap_or_default() {
        _ if send_initial_events => None,
        "" | "0" => None,
        rv => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?,
        ),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let subscription = match state.store.subscribe(filter.resource, from) {
        Ok(s) => s,
        Err(error) if error.code == 410 => {
            // As kube-apiserver: HTTP 200, then one ERROR event carrying the 410 Status.
            let _ = tx.try_send(line("ERROR", &error.to_status()));
            drop(tx);
            return Ok(stream_response(rx));
        }
        Err(error) => return Err(error),
    };
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let mut last_revision = subscription.revision;
        for event in &subscription.replay {
            if let Some(line) = filter.translate(event)
                && tx.send(line).await.is_err()
            {
                return;
            }
        }
        if send_initial_events
            && tx
                .send(bookmark(resource, last_revision, true))
                .await
                .is_err()
        {
            return;
        }
        let mut live = subscription.live;
        let mut bookmarked = last_revision;
        let deadline = tokio::time::sleep(
            timeout.map_or(Duration::from_secs(365 * 24 * 3600), Duration::from_secs),
        );
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tx.closed() => break,
                _ = &mut deadline => break,
                _ = ticker.tick(), if bookmarks => {
                    if last_revision > bookmarked {
                        bookmarked = last_revision;
                        if tx.send(bookmark(resource, last_revision, false)).await.is_err() {
                            break;
                        }
                    }
                }
                received = live.recv() => match received {
                    Ok(event) => {
                        if !forward(&filter, &event, &mut last_revision, &tx).await {
                            break;
                        }
                    }
                    // Too slow a reader: end the watch; the client resumes from its last revision.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    });
    Ok(stream_response(rx))
}

/// Sends one store event if the watch sees it; false when the client has gone.
async fn forward(
    filter: &WatchFilter,
    event: &Arc<StoreEvent>,
    last_revision: &mut u64,
    tx: &mpsc::Sender<Bytes>,
) -> bool {
    if event.resource_version <= *last_revision {
        return true;
    }
    *last_revision = event.resource_version;
    match filter.translate(event) {
        Some(line) => tx.send(line).await.is_ok(),
        None => true,
    }
}
