//! Watch timing on paused time: tokio's clock stands still while anything can run and jumps
//! to the next timer when nothing can, so "a minute later" and "3 s later" are exact and a
//! test never sleeps. Requests go straight to `watch()`, without sockets, so that nothing
//! is in flight when the clock jumps.

use std::sync::Arc;
use std::time::Duration;

use axum::body::BodyDataStream;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{WatchTiming, watch};
use crate::context::{Query, ServerState, Shared, Target};
use crate::ipalloc::IpAllocator;
use crate::limits::ServingLimits;
use crate::limits::in_flight::InFlight;
use crate::store::{Change, Store};

const MINUTE: Duration = Duration::from_secs(60);

fn server() -> Shared {
    Arc::new(ServerState {
        store: Store::new(),
        ips: IpAllocator::new("10.96.0.0/12").unwrap(),
        token: String::new(),
        kubernetes_version: "v1.33.0".into(),
        nodes: Default::default(),
        address: ([127, 0, 0, 1], 0).into(),
        shutdown: CancellationToken::new(),
        watch_timing: WatchTiming::default(),
        in_flight: InFlight::new(&ServingLimits::default()),
    })
}

/// Stores a ConfigMap (or, with `plural` "secrets", a Secret) in `default`; its revision.
fn put(state: &Shared, plural: &str, name: &str) -> u64 {
    let resource = crate::registry::find("", "v1", plural).unwrap();
    let object = json!({"apiVersion": "v1", "kind": resource.kind,
        "metadata": {"name": name, "namespace": "default"}});
    state
        .store
        .mutate(resource.store_key(), "default", name, false, |_| {
            Ok(Change::Put(object))
        })
        .unwrap();
    state.store.revision()
}

/// Watches the ConfigMaps of `default` with these query parameters.
fn watch_config_maps(state: &Shared, query: &[(&str, &str)]) -> BodyDataStream {
    let target = Target {
        resource: crate::registry::find("", "v1", "configmaps").unwrap(),
        namespace: Some("default".into()),
        name: None,
        subresource: None,
        watch_path: false,
    };
    let query = Query::of(query);
    let response = watch(state, &target, &query, &http::HeaderMap::new()).unwrap();
    response.into_body().into_data_stream()
}

/// The next event, as (type, resourceVersion, the time since `since`); None at the end.
async fn next(body: &mut BodyDataStream, since: Instant) -> Option<(String, Value, Duration)> {
    let chunk = body.next().await?.unwrap();
    let event: Value = serde_json::from_slice(&chunk).unwrap();
    let kind = event["type"].as_str().unwrap().to_string();
    Some((kind, event["object"].clone(), since.elapsed()))
}

fn revision_of(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn periodic_bookmarks_come_every_minute_once_the_store_has_moved() {
    let state = server();
    let from = state.store.revision().to_string();
    let started = Instant::now();
    let mut body = watch_config_maps(
        &state,
        &[("resourceVersion", &from), ("allowWatchBookmarks", "true")],
    );
    // Nothing changed: the minute passes without a bookmark (none at or before the start).
    let quiet = tokio::time::timeout(MINUTE + MINUTE / 2, body.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
    // A Secret moves the store on; the ConfigMap watch sees no event, but the next bookmark,
    // at two minutes, carries the Secret's revision.
    let secret = put(&state, "secrets", "s");
    let (kind, object, at) = next(&mut body, started).await.unwrap();
    assert_eq!((kind.as_str(), at), ("BOOKMARK", 2 * MINUTE));
    assert_eq!(revision_of(&object), secret);
    assert_eq!(object["kind"], "ConfigMap");
    assert_eq!(object["metadata"].get("annotations"), None);
    // A ConfigMap is sent at once; the bookmark a minute later has its revision.
    let cm = put(&state, "configmaps", "a");
    let (kind, object, at) = next(&mut body, started).await.unwrap();
    assert_eq!((kind.as_str(), revision_of(&object)), ("ADDED", cm));
    assert_eq!(at, 2 * MINUTE);
    let (kind, object, at) = next(&mut body, started).await.unwrap();
    assert_eq!(
        (kind.as_str(), revision_of(&object), at),
        ("BOOKMARK", cm, 3 * MINUTE)
    );
    // And every minute after, as upstream, even with nothing new.
    let (kind, object, at) = next(&mut body, started).await.unwrap();
    assert_eq!(
        (kind.as_str(), revision_of(&object), at),
        ("BOOKMARK", cm, 4 * MINUTE)
    );
}

#[tokio::test(start_paused = true)]
async fn the_last_bookmark_comes_two_seconds_before_the_timeout() {
    let state = server();
    let from = state.store.revision().to_string();
    let started = Instant::now();
    let query = [
        ("resourceVersion", from.as_str()),
        ("allowWatchBookmarks", "true"),
        ("timeoutSeconds", "150"),
    ];
    let mut body = watch_config_maps(&state, &query);
    let cm = put(&state, "configmaps", "a");
    let secs = Duration::from_secs;
    let mut events = Vec::new();
    while let Some((kind, object, at)) = next(&mut body, started).await {
        events.push((kind, revision_of(&object), at));
    }
    // At 0 the change, at 60 and 120 s the minute's bookmarks, at 148 s the pre-timeout
    // one; the stream ends at 150 s.
    let bookmark = |at| ("BOOKMARK".to_string(), cm, secs(at));
    let expected = [
        ("ADDED".to_string(), cm, secs(0)),
        bookmark(60),
        bookmark(120),
        bookmark(148),
    ];
    assert_eq!(events, expected);
    assert_eq!(started.elapsed(), secs(150));
}

#[tokio::test(start_paused = true)]
async fn without_allow_watch_bookmarks_there_are_none() {
    let state = server();
    let from = state.store.revision().to_string();
    let started = Instant::now();
    let query = [
        ("resourceVersion", from.as_str()),
        ("timeoutSeconds", "300"),
    ];
    let mut body = watch_config_maps(&state, &query);
    let cm = put(&state, "configmaps", "a");
    let (kind, object, _) = next(&mut body, started).await.unwrap();
    assert_eq!((kind.as_str(), revision_of(&object)), ("ADDED", cm));
    assert_eq!(next(&mut body, started).await, None);
    assert_eq!(started.elapsed(), Duration::from_secs(300));
}

#[tokio::test(start_paused = true)]
async fn a_streaming_list_ahead_of_the_store_fails_with_504_after_3_s() {
    let state = server();
    let current = state.store.revision();
    let ahead = (current + 1).to_string();
    let started = Instant::now();
    let query = [
        ("sendInitialEvents", "true"),
        ("resourceVersionMatch", "NotOlderThan"),
        ("resourceVersion", ahead.as_str()),
        ("allowWatchBookmarks", "true"),
    ];
    let mut body = watch_config_maps(&state, &query);
    let (kind, status, at) = next(&mut body, started).await.unwrap();
    assert_eq!((kind.as_str(), at), ("ERROR", Duration::from_secs(3)));
    let expected = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("Timeout: Too large resource version: {ahead}, current: {current}"),
        "reason": "Timeout", "code": 504,
        "details": {
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        },
    });
    assert_eq!(status, expected);
    assert_eq!(next(&mut body, started).await, None);
}

#[tokio::test(start_paused = true)]
async fn a_streaming_list_waits_for_the_store_to_reach_its_resource_version() {
    let state = server();
    let ahead = (state.store.revision() + 1).to_string();
    let started = Instant::now();
    let query = [
        ("sendInitialEvents", "true"),
        ("resourceVersionMatch", "NotOlderThan"),
        ("resourceVersion", ahead.as_str()),
        ("allowWatchBookmarks", "true"),
    ];
    let mut body = watch_config_maps(&state, &query);
    let writer = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        put(&writer, "configmaps", "late")
    });
    let (kind, object, at) = next(&mut body, started).await.unwrap();
    assert_eq!((kind.as_str(), at), ("ADDED", Duration::from_secs(2)));
    assert_eq!(object["metadata"]["name"], "late");
    let (kind, bookmark, _) = next(&mut body, started).await.unwrap();
    assert_eq!(kind, "BOOKMARK");
    assert_eq!(bookmark["metadata"]["resourceVersion"], ahead);
    assert_eq!(
        bookmark["metadata"]["annotations"],
        json!({"k8s.io/initial-events-end": "true"})
    );
}
