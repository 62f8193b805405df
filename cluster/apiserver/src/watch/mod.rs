//! Watch streams: newline-delimited JSON events, each flushed as it happens. A watch starts
//! with the current objects (resourceVersion "" or "0", or sendInitialEvents: a streaming
//! list, ended by the `k8s.io/initial-events-end` bookmark), or after a point in the history
//! (410 Gone as an ERROR event when that is compacted). Each watch runs in its own task, so
//! watches never hold up other requests.
//!
//! As kube-apiserver's watch cache (k8s.io/apiserver pkg/storage/cacher): a streaming list
//! from a resourceVersion the store has not reached waits up to 3 s for it
//! (`waitUntilFreshAndBlock`), then ends with a 504 `Too large resource version` ERROR event;
//! a plain watch from such a resourceVersion is answered at once and stays silent until the
//! store passes it ("we allow for establishing the connection because the clients can wait
//! for events", cacher.go). Clients that take bookmarks get one about every minute and 2 s
//! before the watch's timeout, once the store has passed where the watch started, so that
//! they resume from a recent revision, which the bounded history still holds.

mod bookmarks;
mod options;
#[cfg(test)]
mod tests;

pub use bookmarks::WatchTiming;
pub use options::{Start, WatchOptions};

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::context::{Query, Shared, Target};
use crate::errors::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{EventType, StoreEvent, Subscription};
use bookmarks::{bookmark_line, next_bookmark_time};

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
    let (labels, fields) = crate::paging::options::decode_selectors(query, resource)?;
    let filter = WatchFilter {
        resource: resource.store_key(),
        view: resource,
        namespace: target.namespace.clone(),
        labels,
        fields,
        name: target.name.clone(),
        table: crate::table::wants_table(headers).then(|| {
            (
                resource.plural,
                query.get("includeObject").map(String::from),
            )
        }),
    };
    let options = WatchOptions::from_query(query)?;
    // The request's deadline counts from its start, the wait for freshness included.
    let deadline = options.timeout.map(|timeout| Instant::now() + timeout);
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let state = state.clone();
    tokio::spawn(async move {
        match subscribe(&state, filter.resource, options.start).await {
            Ok(subscription) => {
                let watcher = Watcher {
                    state: &state,
                    filter: &filter,
                    options: &options,
                    deadline,
                    tx: &tx,
                };
                watcher.run(subscription).await;
            }
            // As kube-apiserver once the watch is accepted: HTTP 200, then one ERROR event
            // carrying the Status (410 Expired, 504 Too large resource version).
            Err(error) => {
                let _ = tx.send(line("ERROR", &error.to_status())).await;
            }
        }
    });
    Ok(stream_response(rx))
}

/// The store subscription a watch starts from, once the store is fresh enough for it.
async fn subscribe(
    state: &Shared,
    resource: &'static str,
    start: Start,
) -> ApiResult<Subscription> {
    match start {
        Start::InitialEvents { not_older_than, .. } => {
            if let Some(revision) = not_older_than {
                let wait = state.watch_timing.freshness_wait;
                state
                    .store
                    .wait_for_revision(revision, wait)
                    .await
                    .map_err(|current| ApiError::too_large_resource_version(revision, current))?;
            }
            state.store.subscribe(resource, None)
        }
        Start::After(revision) => {
            let from = revision.unwrap_or_else(|| state.store.revision());
            state.store.subscribe(resource, Some(from))
        }
    }
}

/// One running watch: what it sends, to whom, until when.
struct Watcher<'a> {
    state: &'a Shared,
    filter: &'a WatchFilter,
    options: &'a WatchOptions,
    deadline: Option<Instant>,
    tx: &'a mpsc::Sender<Bytes>,
}

impl Watcher<'_> {
    /// Sends the watch's events until the client goes, the deadline passes or the server
    /// stops: the replay (initial events or history), the initial-events-end bookmark if
    /// asked for, then the live changes with periodic bookmarks.
    async fn run(&self, subscription: Subscription) {
        // The end bookmark carries the revision the replay brings the client up to.
        let start_revision = subscription.revision;
        // Periodic bookmarks only tell of revisions past where the watch started: the one
        // asked for, or without one the store's when the watch began (upstream's
        // `requiredResourceVersion`; for "0" any revision is past it).
        let bookmark_floor = self.options.resource_version.unwrap_or(start_revision);
        for event in &subscription.replay {
            if let Some(line) = self.filter.translate(event)
                && self.tx.send(line).await.is_err()
            {
                return;
            }
        }
        if let Start::InitialEvents {
            end_bookmark: true, ..
        } = self.options.start
        {
            let end = bookmark_line(self.filter.view, start_revision, true);
            if self.tx.send(end).await.is_err() {
                return;
            }
        }
        let mut live = subscription.live;
        let mut last_revision = start_revision;
        let frequency = self.state.watch_timing.bookmark_frequency;
        let mut next_bookmark = self
            .options
            .bookmarks
            .then(|| next_bookmark_time(Instant::now(), frequency, self.deadline))
            .flatten();
        // A year stands for "never": the branches below are disabled without a time.
        let never = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let deadline = tokio::time::sleep_until(self.deadline.unwrap_or(never));
        let bookmark_due = tokio::time::sleep_until(next_bookmark.unwrap_or(never));
        tokio::pin!(deadline, bookmark_due);
        loop {
            // Biased: changes already received go out before a bookmark that covers them.
            tokio::select! {
                biased;
                _ = self.state.shutdown.cancelled() => break,
                _ = self.tx.closed() => break,
                _ = &mut deadline => break,
                received = live.recv() => match received {
                    Ok(event) => {
                        if !self.forward(&event, &mut last_revision).await {
                            break;
                        }
                    }
                    // Too slow a reader: end the watch; the client resumes from its last
                    // revision.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => break,
                },
                _ = &mut bookmark_due, if next_bookmark.is_some() => {
                    if last_revision > bookmark_floor {
                        let bookmark = bookmark_line(self.filter.view, last_revision, false);
                        if self.tx.send(bookmark).await.is_err() {
                            break;
                        }
                    }
                    // Strictly later than this one: the one due 2 s before the deadline is
                    // the last.
                    let fired = next_bookmark;
                    next_bookmark = next_bookmark_time(Instant::now(), frequency, self.deadline)
                        .filter(|next| Some(*next) > fired);
                    bookmark_due.as_mut().reset(next_bookmark.unwrap_or(never));
                }
            }
        }
    }

    /// Sends one store event if the watch sees it; false when the client has gone.
    async fn forward(&self, event: &Arc<StoreEvent>, last_revision: &mut u64) -> bool {
        if event.resource_version <= *last_revision {
            return true;
        }
        *last_revision = event.resource_version;
        match self.filter.translate(event) {
            Some(line) => self.tx.send(line).await.is_ok(),
            None => true,
        }
    }
}
