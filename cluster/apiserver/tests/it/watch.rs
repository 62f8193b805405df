//! Watches over HTTP as kube-apiserver 1.33 serves them (WatchList on): options validated
//! with upstream's 422s, legacy watches served as streaming lists, the
//! `k8s.io/initial-events-end` bookmark, a streaming list ahead of the store failing with
//! 504 `Too large resource version` after the watch cache's 3 s, a plain watch ahead of it
//! waiting silently, and the Python client's and kubectl's watches. Periodic bookmarks (a
//! minute apart) are tested on paused time in `src/watch/tests.rs`.

use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use k8s_labs_apiserver::testing::{TestApiServer, kubectl_binary};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

const CONFIG_MAPS: &str = "/api/v1/namespaces/default/configmaps";

/// GET `path` without kube's retries (the test wants the first answer): the status and the
/// body's lines as JSON (one for an error, one per event for a watch that ends).
async fn get(api: &TestApiServer, path: &str) -> (u16, Vec<Value>) {
    let request = http::Request::get(path).body(Vec::new()).unwrap();
    let (status, body) = api.send_once(request).await.unwrap();
    if let Ok(one) = serde_json::from_slice(&body) {
        return (status, vec![one]);
    }
    let lines = body
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    (status, lines)
}

async fn create(api: &TestApiServer, name: &str) -> u64 {
    let maps: Api<ConfigMap> = Api::namespaced(api.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    let created = maps.create(&PostParams::default(), &cm).await.unwrap();
    created.metadata.resource_version.unwrap().parse().unwrap()
}

/// The current revision, as a list reports it.
async fn revision(api: &TestApiServer) -> u64 {
    let (status, list) = get(api, "/api/v1/namespaces?limit=1").await;
    assert_eq!(status, 200);
    list[0]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// (type, name or the bookmark's annotations) of each event.
fn summary(events: &[Value]) -> Vec<(String, Value)> {
    events
        .iter()
        .map(|event| {
            let metadata = &event["object"]["metadata"];
            let what = match event["type"].as_str().unwrap() {
                "BOOKMARK" => metadata["annotations"].clone(),
                _ => metadata["name"].clone(),
            };
            (event["type"].as_str().unwrap().to_string(), what)
        })
        .collect()
}

#[tokio::test]
async fn invalid_watch_options_get_upstreams_422() {
    let api = TestApiServer::start().await.unwrap();
    let forbidden = |detail: &str| {
        json!({"reason": "FieldValueForbidden", "message": format!("Forbidden: {detail}"),
            "field": "resourceVersionMatch"})
    };
    let cases = [
        (
            "sendInitialEvents=true",
            forbidden("sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"),
        ),
        (
            "resourceVersion=5&resourceVersionMatch=NotOlderThan",
            forbidden(
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ),
        ),
        (
            "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&continue=x",
            forbidden("resourceVersionMatch is forbidden when continue is provided"),
        ),
    ];
    for (query, cause) in cases {
        let (status, body) = get(&api, &format!("{CONFIG_MAPS}?watch=true&{query}")).await;
        let message = format!(
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: {}",
            cause["message"].as_str().unwrap()
        );
        let expected = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": "Invalid", "code": 422,
            "details": {"group": "meta.k8s.io", "kind": "ListOptions", "causes": [cause]},
        });
        assert_eq!((status, &body[..]), (422, &[expected][..]), "{query}");
    }
}

#[tokio::test]
async fn a_streaming_list_ends_its_initial_events_with_the_initial_events_end_bookmark() {
    let api = TestApiServer::start().await.unwrap();
    create(&api, "a").await;
    let at = create(&api, "b").await;
    // As client-go's watch-list: the state first, then the bookmark with its revision.
    let query = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan\
        &allowWatchBookmarks=true&timeoutSeconds=1";
    let (status, events) = get(&api, &format!("{CONFIG_MAPS}?{query}")).await;
    assert_eq!(status, 200);
    let end = json!({"k8s.io/initial-events-end": "true"});
    let expected = [
        ("ADDED".to_string(), json!("a")),
        ("ADDED".to_string(), json!("b")),
        ("BOOKMARK".to_string(), end),
    ];
    assert_eq!(summary(&events), expected);
    let bookmark = &events[2]["object"];
    assert_eq!(bookmark["kind"], "ConfigMap");
    assert_eq!(bookmark["apiVersion"], "v1");
    assert_eq!(bookmark["metadata"]["resourceVersion"], at.to_string());
}

#[tokio::test]
async fn legacy_watches_from_the_latest_state_are_streaming_lists() {
    let api = TestApiServer::start().await.unwrap();
    create(&api, "a").await;
    // SetListOptionsDefaults: resourceVersion "" or "0" means sendInitialEvents=true, so a
    // client that takes bookmarks is told where the initial state ends; one that does not
    // gets the state alone, as before WatchList.
    let (_, with) = get(
        &api,
        &format!(
            "{CONFIG_MAPS}?watch=true&resourceVersion=0&allowWatchBookmarks=true&timeoutSeconds=1"
        ),
    )
    .await;
    let end = json!({"k8s.io/initial-events-end": "true"});
    let expected = [
        ("ADDED".to_string(), json!("a")),
        ("BOOKMARK".to_string(), end),
    ];
    assert_eq!(summary(&with), expected);
    let (_, without) = get(&api, &format!("{CONFIG_MAPS}?watch=true&timeoutSeconds=1")).await;
    assert_eq!(summary(&without), [("ADDED".to_string(), json!("a"))]);
}

#[tokio::test]
async fn a_streaming_list_ahead_of_the_store_gets_504_too_large_resource_version() {
    let api = TestApiServer::start().await.unwrap();
    let current = revision(&api).await;
    let ahead = current + 10;
    // The watch cache waits 3 s for the revision, then fails the watch: HTTP 200 (the watch
    // was accepted), then one ERROR event with storage's NewTooLargeResourceVersionError.
    let query = format!(
        "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan\
         &allowWatchBookmarks=true&resourceVersion={ahead}"
    );
    let (status, events) = get(&api, &format!("{CONFIG_MAPS}?{query}")).await;
    let expected = json!({"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("Timeout: Too large resource version: {ahead}, current: {current}"),
        "reason": "Timeout", "code": 504,
        "details": {
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        },
    }});
    assert_eq!((status, &events[..]), (200, &[expected][..]));
}

#[tokio::test]
async fn a_watch_ahead_of_the_store_waits_for_it_without_an_error() {
    let api = TestApiServer::start().await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(api.client.clone(), "default");
    let ahead = revision(&api).await + 2;
    // "We allow for establishing the connection because the clients can wait for events"
    // (cacher.go): only changes after the resourceVersion asked for are sent.
    let mut stream = maps
        .watch(&WatchParams::default(), &ahead.to_string())
        .await
        .unwrap()
        .boxed();
    for name in ["one", "two", "three"] {
        create(&api, name).await;
    }
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(cm) => {
            assert_eq!(cm.metadata.name.as_deref(), Some("three"));
            let at: u64 = cm.metadata.resource_version.unwrap().parse().unwrap();
            assert_eq!(at, ahead + 1);
        }
        other => panic!("expected three's ADDED, got {other:?}"),
    }
}

/// Watches the namespace's ConfigMaps for a second with bookmarks and prints each event's
/// type and name (a bookmark's annotations instead).
const PYTHON_WATCH: &str = r#"
import json, sys
import kubernetes
kubernetes.config.load_kube_config(config_file=sys.argv[1])
core = kubernetes.client.CoreV1Api()
events = []
for event in kubernetes.watch.Watch().stream(core.list_namespaced_config_map, "default",
                                               allow_watch_bookmarks=True, timeout_seconds=1):
    raw = event["raw_object"]["metadata"]
    what = raw.get("annotations") if event["type"] == "BOOKMARK" else raw["name"]
    events.append([event["type"], what])
print(json.dumps(events))
"#;

#[tokio::test]
async fn the_python_client_and_kubectl_watch_config_maps() {
    let have_python = std::process::Command::new("python3")
        .args(["-c", "import kubernetes"])
        .output()
        .is_ok_and(|output| output.status.success());
    let kubectl = kubectl_binary(33);
    let api = TestApiServer::start().await.unwrap();
    create(&api, "a").await;
    // The https URL: both clients send the bearer token only over TLS.
    let config = std::env::temp_dir().join(format!(
        "k8s-labs-watch-{}-{}.kubeconfig",
        std::process::id(),
        api.server.address().port()
    ));
    std::fs::write(&config, api.https_kubeconfig()).unwrap();
    if have_python {
        let output = tokio::process::Command::new("python3")
            .arg("-c")
            .arg(PYTHON_WATCH)
            .arg(&config)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "the Python watch failed: {stderr}");
        let events: Value = serde_json::from_slice(&output.stdout).unwrap();
        let end = json!({"k8s.io/initial-events-end": "true"});
        assert_eq!(events, json!([["ADDED", "a"], ["BOOKMARK", end]]));
    } else {
        eprintln!("skipping the Python client: `python3 -c 'import kubernetes'` fails");
    }
    kubectl_watch(&api, &config, &kubectl).await;
    std::fs::remove_file(&config).unwrap();
}

/// `kubectl get configmaps -w`: the table of the current ConfigMaps, then a row for one
/// created while it watches.
async fn kubectl_watch(api: &TestApiServer, config: &Path, kubectl: &Path) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(config)
        .args(["get", "configmaps", "-n", "default", "-w"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut first_words = Vec::new();
    while first_words.len() < 2 {
        let line = lines.next_line().await.unwrap().unwrap();
        first_words.push(line.split_whitespace().next().unwrap().to_string());
        if first_words.len() == 2 {
            // The list is shown; what follows comes from the watch.
            create(api, "b").await;
        }
    }
    let line = lines.next_line().await.unwrap().unwrap();
    first_words.push(line.split_whitespace().next().unwrap().to_string());
    assert_eq!(first_words, ["NAME", "a", "b"]);
    child.kill().await.unwrap();
}
