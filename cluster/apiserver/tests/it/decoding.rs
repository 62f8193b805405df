//! Request bodies decoded as kube-apiserver 1.33 decodes them, on every write path: fields of
//! the wrong type, a Content-Type that is not text, and a body naming another object or
//! namespace than the URL. Each case was found by the fuzz test (`tests/it/fuzz.rs`), where the
//! server stored what kube-apiserver refuses.

use k8s_labs_apiserver::testing::TestApiServer;
use serde_json::{Value, json};

/// One request, without kube's retries: its status and JSON body.
async fn send(
    api: &TestApiServer,
    method: &str,
    path: &str,
    content_type: &[u8],
    body: &Value,
) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_bytes(content_type).unwrap(),
        )
        .body(serde_json::to_vec(body).unwrap())
        .unwrap();
    let (status, body) = api.send_once(request).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

const JSON: &[u8] = b"application/json";
const MERGE: &[u8] = b"application/merge-patch+json";
const APPLY: &[u8] = b"application/apply-patch+yaml";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn fields_of_the_wrong_type_are_refused_on_every_write_path() {
    let api = TestApiServer::start().await.unwrap();
    let mut listed = config_map("c");
    listed["metadata"]["labels"] = json!(["a"]);

    let (status, body) = send(&api, "POST", CONFIGMAPS, JSON, &listed).await;
    assert_eq!((status, body["reason"].as_str()), (400, Some("BadRequest")));
    assert!(
        message(&body).starts_with(
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot decode metadata.labels: "
        ),
        "{body}"
    );
    // Nulls and missing fields are no decoding errors (Go leaves them to validation).
    let mut nulls = config_map("c");
    nulls["data"] = Value::Null;
    nulls["metadata"]["labels"] = Value::Null;
    let (status, body) = send(&api, "POST", CONFIGMAPS, JSON, &nulls).await;
    assert_eq!(status, 201, "{body}");
    let created_version = body["metadata"]["resourceVersion"].clone();

    let one = format!("{CONFIGMAPS}/c");
    let (status, body) = send(&api, "PUT", &one, JSON, &listed).await;
    assert_eq!((status, body["reason"].as_str()), (400, Some("BadRequest")));

    // A patched object that does not decode: the patcher's 422 on the `patch` field.
    let patch = json!({"metadata": {"labels": ["a"]}});
    let (status, body) = send(&api, "PATCH", &one, MERGE, &patch).await;
    assert_eq!((status, body["reason"].as_str()), (422, Some("Invalid")));
    assert!(
        message(&body).starts_with(" \"\" is invalid: patch: Invalid value: \"{"),
        "{body}"
    );
    assert_eq!(body["details"]["causes"][0]["field"], "patch");

    let apply = format!("{one}?fieldManager=test");
    let (status, body) = send(&api, "PATCH", &apply, APPLY, &listed).await;
    assert_eq!((status, body["reason"].as_str()), (400, Some("BadRequest")));
    assert!(
        message(&body).starts_with(
            "failed to create typed patch object (default/c; /v1, Kind=ConfigMap): json: cannot decode metadata.labels: "
        ),
        "{body}"
    );

    let (_, stored) = send(&api, "GET", &one, JSON, &Value::Null).await;
    // As created (with null labels): none of the refused writes reached the store.
    assert!(stored["metadata"]["labels"].is_null(), "{stored}");
    assert_eq!(stored["metadata"]["resourceVersion"], created_version);
}

#[tokio::test]
async fn the_url_names_the_object_and_its_namespace() {
    let api = TestApiServer::start().await.unwrap();
    let (status, _) = send(&api, "POST", CONFIGMAPS, JSON, &config_map("c")).await;
    assert_eq!(status, 201);
    let one = format!("{CONFIGMAPS}/c");

    let mut elsewhere = config_map("c");
    elsewhere["metadata"]["namespace"] = json!("kube-system");
    let (status, body) = send(&api, "PUT", &one, JSON, &elsewhere).await;
    assert_eq!(
        (status, message(&body)),
        (
            400,
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    );
    let patch = json!({"metadata": {"namespace": "kube-system"}});
    let (status, body) = send(&api, "PATCH", &one, MERGE, &patch).await;
    assert_eq!(
        (status, message(&body)),
        (
            400,
            "the namespace of the object (kube-system) does not match the namespace on the request (default)"
        )
    );

    // Server-side apply that would create: the body's name must be the URL's too.
    let apply = format!("{CONFIGMAPS}/b?fieldManager=test");
    let (status, body) = send(&api, "PATCH", &apply, APPLY, &config_map("other")).await;
    assert_eq!(
        (status, message(&body)),
        (
            400,
            "the name of the object (other) does not match the name on the URL (b)"
        )
    );
    let (status, _) = send(&api, "GET", &format!("{CONFIGMAPS}/b"), JSON, &Value::Null).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_content_type_that_is_not_text_is_unsupported() {
    let api = TestApiServer::start().await.unwrap();
    let (status, body) = send(
        &api,
        "POST",
        CONFIGMAPS,
        b"\xffapplication/json",
        &config_map("c"),
    )
    .await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
}
