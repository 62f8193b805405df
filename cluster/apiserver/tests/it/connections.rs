//! The API port as kube-apiserver 1.33 serves it: TLS only (plain HTTP answered as Go's
//! net/http answers it), the request-head timeout, the in-flight limits and the request
//! timeout, each with upstream's status and words. Requests are written by hand so that a
//! test can hold one open deterministically (`Expect: 100-continue`: the server asks for the
//! body only once the request is being served) and see the first answer, without a client's
//! retries.

use std::sync::Arc;
use std::time::Duration;

use k8s_labs_apiserver::ServingLimits;
use k8s_labs_apiserver::testing::TestApiServer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// What Go's net/http writes to a plain-HTTP client (server.go, `serve`).
const GO_PLAIN_HTTP_ANSWER: &str =
    "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// What kube-apiserver's timeout filter writes (`json.NewEncoder(w).Encode(&err.ErrStatus)`).
const UPSTREAM_TIMEOUT_BODY: &str = "{\"metadata\":{},\"status\":\"Failure\",\"message\":\
    \"Timeout: request did not complete within the allotted timeout\",\"reason\":\"Timeout\",\
    \"details\":{},\"code\":504}\n";

/// A TLS connection to the server, trusting its CA.
async fn connect(api: &TestApiServer) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(api.server.ca_certificate_pem().as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(api.server.address()).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

/// A request head with the token; `extra` are more header lines, each ending in CRLF.
fn head(api: &TestApiServer, method: &str, path: &str, extra: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Connection: close\r\n{extra}\r\n",
        api.token
    )
}

/// Everything the server sends until it closes (a missing close_notify ends it too).
async fn read_all(stream: &mut (impl AsyncRead + Unpin)) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8(received).unwrap()
}

/// Reads until the server has sent `marker` (e.g. the interim `100 Continue`).
async fn read_until(stream: &mut TlsStream<TcpStream>, marker: &str) {
    let mut received = Vec::new();
    let mut byte = [0u8; 1];
    while !received.ends_with(marker.as_bytes()) {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "closed before {marker:?}"
        );
        received.push(byte[0]);
    }
}

/// The status code, the header lines (lower-cased names) and the body of a response.
fn parse(response: &str) -> (u16, Vec<(String, String)>, &str) {
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let code = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_ascii_lowercase(), value.trim().to_string())
        })
        .collect();
    (code, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

const CONFIGMAP: &str =
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"held-"}}"#;

/// Starts creating a ConfigMap and stops before its body: the server is serving the request
/// once it has asked for the body with `100 Continue`.
async fn held_create(api: &TestApiServer, path: &str) -> TlsStream<TcpStream> {
    let mut stream = connect(api).await;
    let extra = format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n",
        CONFIGMAP.len()
    );
    stream
        .write_all(head(api, "POST", path, &extra).as_bytes())
        .await
        .unwrap();
    read_until(&mut stream, "HTTP/1.1 100 Continue\r\n\r\n").await;
    stream
}

/// One whole request on a fresh connection: its response.
async fn request(api: &TestApiServer, method: &str, path: &str, body: &str) -> String {
    let mut stream = connect(api).await;
    let extra = format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    let request = head(api, method, path, &extra) + body;
    stream.write_all(request.as_bytes()).await.unwrap();
    read_all(&mut stream).await
}

#[tokio::test]
async fn plain_http_gets_go_s_answer_and_the_connection_is_closed() {
    let api = TestApiServer::start().await.unwrap();
    for method in ["GET", "POST", "PUT", "HEAD", "OPTIONS"] {
        let mut tcp = TcpStream::connect(api.server.address()).await.unwrap();
        let request = head(&api, method, "/api/v1/namespaces", "");
        tcp.write_all(request.as_bytes()).await.unwrap();
        assert_eq!(read_all(&mut tcp).await, GO_PLAIN_HTTP_ANSWER, "{method}");
    }
    // Go recognises only those five starts; anything else fails the handshake silently.
    for method in ["DELETE", "PATCH"] {
        let mut tcp = TcpStream::connect(api.server.address()).await.unwrap();
        let request = head(&api, method, "/api/v1/namespaces/x", "");
        tcp.write_all(request.as_bytes()).await.unwrap();
        assert_eq!(read_all(&mut tcp).await, "", "{method}");
    }
    // The same request over TLS is served.
    let (code, _, _) = parse(&request(&api, "GET", "/api/v1/namespaces", "").await);
    assert_eq!(code, 200);
}

#[tokio::test]
async fn an_unfinished_request_head_is_closed_without_an_answer() {
    let api = TestApiServer::start_with_limits(ServingLimits {
        read_header_timeout: Duration::from_secs(1),
        ..ServingLimits::default()
    })
    .await
    .unwrap();
    // The head's blank line never comes.
    let mut stream = connect(&api).await;
    stream
        .write_all(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    assert_eq!(read_all(&mut stream).await, "");
    // Nor does a TLS handshake.
    let mut tcp = TcpStream::connect(api.server.address()).await.unwrap();
    assert_eq!(read_all(&mut tcp).await, "");
}

#[tokio::test]
async fn requests_past_the_in_flight_limit_get_429_at_once() {
    let api = TestApiServer::start_with_limits(ServingLimits {
        max_requests_inflight: 2,
        max_mutating_requests_inflight: 2,
        ..ServingLimits::default()
    })
    .await
    .unwrap();
    let path = "/api/v1/namespaces/default/configmaps";
    let mut first = held_create(&api, path).await;
    let _second = held_create(&api, path).await;

    let refused = request(&api, "POST", path, CONFIGMAP).await;
    let (code, headers, body) = parse(&refused);
    assert_eq!(code, 429);
    assert_eq!(header(&headers, "retry-after"), Some("1"));
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    assert_eq!(body, "Too many requests, please try again later.\n");

    // Reads have slots of their own.
    let (code, _, _) = parse(&request(&api, "GET", path, "").await);
    assert_eq!(code, 200);

    // A finished request gives its slot back.
    first.write_all(CONFIGMAP.as_bytes()).await.unwrap();
    let (code, _, _) = parse(&read_all(&mut first).await);
    assert_eq!(code, 201);
    let (code, _, _) = parse(&request(&api, "POST", path, CONFIGMAP).await);
    assert_eq!(code, 201);
}

#[tokio::test]
async fn a_request_past_the_server_s_timeout_gets_504() {
    let api = TestApiServer::start_with_limits(ServingLimits {
        request_timeout: Duration::from_secs(1),
        ..ServingLimits::default()
    })
    .await
    .unwrap();
    let mut held = held_create(&api, "/api/v1/namespaces/default/configmaps").await;
    let response = read_all(&mut held).await;
    let (code, headers, body) = parse(&response);
    assert_eq!(code, 504);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(body, UPSTREAM_TIMEOUT_BODY);
}

#[tokio::test]
async fn the_timeout_a_request_asks_for_applies_and_a_malformed_one_is_refused() {
    let api = TestApiServer::start().await.unwrap();
    let mut held = held_create(&api, "/api/v1/namespaces/default/configmaps?timeout=1s").await;
    let response = read_all(&mut held).await;
    let (code, _, body) = parse(&response);
    assert_eq!((code, body), (504, UPSTREAM_TIMEOUT_BODY));

    let malformed = request(&api, "GET", "/api/v1/namespaces?timeout=abc", "").await;
    let (code, _, body) = parse(&malformed);
    let status: Value = serde_json::from_str(body).unwrap();
    assert_eq!(code, 400);
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        "invalid timeout specified in the request URL - time: invalid duration \"abc\""
    );
}

/// A body over kube-apiserver's 3 MiB is refused with 413 and the connection is closed (Go's
/// net/http closes it when a handler leaves the body unread): a client that reused it would
/// find it closed under its next request (found by the fuzz test).
#[tokio::test]
async fn a_body_over_the_limit_is_refused_and_its_connection_closed() {
    let api = TestApiServer::start().await.unwrap();
    let mut stream = connect(&api).await;
    // Exactly one byte over: the server reads all of it before it refuses, so nothing is
    // left unread for the close to reset.
    let body = vec![b' '; 3 * 1024 * 1024 + 1];
    // Keep-alive (no `Connection: close` from the client): only the server can ask to close.
    let request = format!(
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        api.token,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    // The head first: without the fix the connection stays open, and reading to its end
    // would wait forever instead of failing.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "closed in the head"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let (code, headers, _) = parse(&head);
    assert_eq!((code, header(&headers, "connection")), (413, Some("close")));
    let body = read_all(&mut stream).await;
    assert!(
        body.contains("Request entity too large: limit is 3145728"),
        "{body}"
    );
}
