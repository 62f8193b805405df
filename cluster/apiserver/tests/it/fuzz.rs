//! A fuzz test of the API server (issue 14, item 7): generated malformed and hostile
//! requests against a running server — truncated or invalid JSON, YAML and protobuf, deep
//! nesting, huge strings, invalid UTF-8, wrong content types, broken patches of every patch
//! type, hostile list and watch parameters. A certainly invalid request must get a 4xx, and
//! every refusal a `Status` whose `code` is the HTTP status, as kube-apiserver sends it; none
//! may get a 5xx or stop the server, and none may change what is stored (requests that may
//! still be valid are sent as dry runs).
//!
//! The run is fixed by a seed: `K8S_LABS_FUZZ_SEED` (default below), `K8S_LABS_FUZZ_CASES`
//! cases (default 3000); `K8S_LABS_FUZZ_ONLY=<index>` replays one case of the run.

use crate::support::fuzz::seeds::{NAMESPACE, SEEDS};
use crate::support::fuzz::{Case, Validity};
use k8s_labs_apiserver::testing::TestApiServer;
use serde_json::{Value, json};

const DEFAULT_SEED: u64 = 0x6b38_735f_6c61_6273;
const DEFAULT_CASES: u64 = 3000;
/// How often the whole store is compared with its first snapshot.
const SNAPSHOT_EVERY: u64 = 250;

fn setting(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={value}: {e}")))
}

/// kube-apiserver's request body limit (3 MiB): past it the server answers 413 and stops
/// reading, so a client still writing may see the connection close before the answer.
const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// The status and body of one request (the body unread for a watch that was accepted). A
/// body over the limit may get a closed connection instead: that is reported as a 413 with
/// no body, any other broken connection as a failure.
async fn send(client: &kube::Client, case: &Case) -> Result<(u16, Vec<u8>), String> {
    let mut request = http::Request::builder()
        .method(case.method.clone())
        .uri(&case.uri);
    if let Some(content_type) = &case.content_type {
        let value = http::HeaderValue::from_bytes(content_type).unwrap();
        request = request.header(http::header::CONTENT_TYPE, value);
    }
    let request = request.body(case.body.clone()).unwrap();
    let response = match client.send(request.map(Into::into)).await {
        Ok(response) => response,
        Err(_) if case.body.len() > BODY_LIMIT => return Ok((413, Vec::new())),
        Err(error) => return Err(format!("no answer: {error}")),
    };
    let status = response.status().as_u16();
    if case.watch && status == 200 {
        return Ok((status, Vec::new()));
    }
    let body = response.into_body().collect_bytes().await;
    let body = body.map_err(|e| format!("{status} with a broken body: {e}"))?;
    Ok((status, body.to_vec()))
}

async fn get(client: &kube::Client, path: &str) -> (u16, Value) {
    let case = Case {
        method: http::Method::GET,
        uri: path.to_string(),
        content_type: None,
        body: Vec::new(),
        validity: Validity::Maybe,
        watch: false,
        description: String::new(),
    };
    match send(client, &case).await {
        Ok((status, body)) => (status, serde_json::from_slice(&body).unwrap_or(Value::Null)),
        Err(problem) => (0, Value::String(problem)),
    }
}

/// The store's resourceVersion: any write moves it.
async fn store_revision(client: &kube::Client) -> String {
    let (status, list) = get(client, "/api/v1/namespaces?limit=1").await;
    assert_eq!(status, 200, "the server no longer lists: {list}");
    list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every stored object of every served resource.
async fn snapshot(client: &kube::Client) -> Vec<Value> {
    let mut lists = Vec::new();
    for seed in SEEDS {
        let path = seed
            .collection()
            .replace(&format!("/namespaces/{NAMESPACE}"), "");
        let (status, list) = get(client, &path).await;
        assert_eq!(status, 200, "listing {path}: {list}");
        lists.push(list["items"].clone());
    }
    lists
}

/// One fixture of every kind, for updates and patches to aim at.
async fn create_fixtures(client: &kube::Client) {
    for seed in SEEDS {
        let case = Case {
            method: http::Method::POST,
            uri: seed.collection(),
            content_type: Some(b"application/json".to_vec()),
            body: seed.object(seed.fixture).to_string().into_bytes(),
            validity: Validity::Maybe,
            watch: false,
            description: String::new(),
        };
        let (status, body) = send(client, &case).await.unwrap();
        assert_eq!(
            status,
            201,
            "creating the {} fixture: {}",
            seed.kind,
            String::from_utf8_lossy(&body)
        );
    }
}

/// What is wrong with the answer to `case`, if anything.
fn check(case: &Case, status: u16, body: &[u8]) -> Result<(), String> {
    if status >= 500 {
        return Err(format!("a server error {status}"));
    }
    if status == 413 && body.is_empty() && case.body.len() > BODY_LIMIT {
        return Ok(()); // refused while the body was still being written
    }
    if (200..300).contains(&status) {
        return match case.validity {
            Validity::Invalid => Err(format!("accepted ({status}) though invalid")),
            Validity::Maybe | Validity::Lost => Ok(()),
        };
    }
    if !(400..500).contains(&status) {
        return Err(format!("unexpected status {status} (0: no answer)"));
    }
    let status_object: Value = serde_json::from_slice(body)
        .map_err(|e| format!("{status} without a JSON Status ({e})"))?;
    let expected = (
        json!("Status"),
        json!("v1"),
        json!("Failure"),
        json!(status),
    );
    let found = (
        status_object["kind"].clone(),
        status_object["apiVersion"].clone(),
        status_object["status"].clone(),
        status_object["code"].clone(),
    );
    if found != expected || !status_object["message"].is_string() {
        return Err(format!("{status} with a body that is not its Status"));
    }
    Ok(())
}

/// The first `max` characters of `bytes`, as text (huge bodies are cut in a message).
fn shortened(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() <= max {
        return text.into_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}… ({} bytes)", bytes.len())
}

fn describe(seed: u64, index: u64, case: &Case, status: u16, body: &[u8]) -> String {
    let request = shortened(&case.body, 600);
    let answer = shortened(body, 1000);
    format!(
        "case {index} (replay: K8S_LABS_FUZZ_SEED={seed:#x} K8S_LABS_FUZZ_ONLY={index}): {}\n\
         {} {} ({:?}, content type {:?})\n{request}\n→ {status} {answer}",
        case.description,
        case.method,
        case.uri,
        case.validity,
        case.content_type.as_deref().map(String::from_utf8_lossy),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_a_4xx_status_and_change_nothing() {
    let seed = setting("K8S_LABS_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let cases = setting("K8S_LABS_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let indices = match setting("K8S_LABS_FUZZ_ONLY") {
        Some(index) => index..index + 1,
        None => 0..cases,
    };
    eprintln!("fuzz: seed {seed:#x}, cases {indices:?} (K8S_LABS_FUZZ_SEED, K8S_LABS_FUZZ_CASES)");
    let api = TestApiServer::start().await.unwrap();
    let client = api.client_without_retries().await.unwrap();
    let (status, namespace) = get(&client, "/api/v1/namespaces/default").await;
    assert_eq!(status, 200, "{namespace}");
    create_fixtures(&client).await;
    let before = snapshot(&client).await;
    let revision = store_revision(&client).await;

    let mut failures = Vec::new();
    let mut tally = [0usize; 6];
    for index in indices.clone() {
        let case = crate::support::fuzz::case(seed, index);
        let (status, body) = match send(&client, &case).await {
            Ok(answer) => answer,
            Err(problem) => (0, problem.into_bytes()),
        };
        tally[usize::from(status / 100)] += 1;
        if let Err(problem) = check(&case, status, &body) {
            failures.push(format!(
                "{problem}: {}",
                describe(seed, index, &case, status, &body)
            ));
        }
        let (health, now) = get(&client, "/api/v1/namespaces?limit=1").await;
        let now = &now["metadata"]["resourceVersion"];
        assert_eq!(
            (health, now.as_str()),
            (200, Some(revision.as_str())),
            "the store moved or the server stopped answering ({now}): {}",
            describe(seed, index, &case, status, &body)
        );
        if index % SNAPSHOT_EVERY == SNAPSHOT_EVERY - 1 {
            assert_eq!(
                snapshot(&client).await,
                before,
                "stored objects changed by case ≤ {index}"
            );
        }
    }
    assert_eq!(snapshot(&client).await, before, "stored objects changed");
    eprintln!(
        "fuzz: answers 2xx {}, 4xx {}, 5xx {}",
        tally[2], tally[4], tally[5]
    );
    assert!(
        failures.is_empty(),
        "{} failing cases:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    api.shutdown().await;
}
