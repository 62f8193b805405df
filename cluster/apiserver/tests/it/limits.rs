//! kube-apiserver's limits on what is stored: an object over etcd's request limit (1.5 MiB)
//! is refused on every write path with the Status kube-apiserver sends when etcd refuses it.

use k8s_labs_apiserver::MAX_OBJECT_BYTES;
use k8s_labs_apiserver::testing::TestApiServer;
use serde_json::{Value, json};

/// Sends one request as raw JSON: its status and body.
async fn send(
    api: &TestApiServer,
    method: http::Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(body)
        .unwrap();
    let (status, body) = api.send_once(request).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

fn config_map(name: &str, bytes: usize) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"big": "x".repeat(bytes)},
    })
}

/// The Status kube-apiserver 1.33 sends when etcd refuses a write as too large (the etcd
/// error is not converted, so it is an InternalError without a reason).
fn too_large() -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "etcdserver: request is too large",
        "code": 500,
    })
}

const JSON: &str = "application/json";
const BASE: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn objects_over_etcds_limit_are_refused_on_every_write_path() {
    let api = TestApiServer::start().await.unwrap();
    let over = MAX_OBJECT_BYTES + 1;
    let post = |object: Value| serde_json::to_vec(&object).unwrap();

    let (status, body) = send(
        &api,
        http::Method::POST,
        BASE,
        JSON,
        post(config_map("a", over)),
    )
    .await;
    assert_eq!((status, body), (500, too_large()));

    // A dry run never reaches etcd, so it is not refused.
    let dry_run = format!("{BASE}?dryRun=All");
    let (status, _) = send(
        &api,
        http::Method::POST,
        &dry_run,
        JSON,
        post(config_map("a", over)),
    )
    .await;
    assert_eq!(status, 201);

    // Just under the limit is stored.
    let (status, _) = send(
        &api,
        http::Method::POST,
        BASE,
        JSON,
        post(config_map("a", 1024 * 1024)),
    )
    .await;
    assert_eq!(status, 201);

    let one = format!("{BASE}/a");
    let (status, body) = send(
        &api,
        http::Method::PUT,
        &one,
        JSON,
        post(config_map("a", over)),
    )
    .await;
    assert_eq!((status, body), (500, too_large()));

    let merge = post(json!({"data": {"more": "y".repeat(MAX_OBJECT_BYTES / 2)}}));
    let (status, body) = send(
        &api,
        http::Method::PATCH,
        &one,
        "application/merge-patch+json",
        merge,
    )
    .await;
    assert_eq!((status, body), (500, too_large()));

    let apply = format!("{one}?fieldManager=test&force=true");
    let (status, body) = send(
        &api,
        http::Method::PATCH,
        &apply,
        "application/apply-patch+yaml",
        post(config_map("a", over)),
    )
    .await;
    assert_eq!((status, body), (500, too_large()));

    // The object is as it was before the refused writes.
    let (status, stored) = send(&api, http::Method::GET, &one, JSON, Vec::new()).await;
    assert_eq!(status, 200);
    assert_eq!(stored["data"]["big"].as_str().unwrap().len(), 1024 * 1024);
    assert!(stored["data"].get("more").is_none());
}
