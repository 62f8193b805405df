//! `pods/proxy` and `services/proxy` against a backend of the test process's (the local node
//! dials its port on 127.0.0.1 whatever the pod's IP): what reaches the backend, what comes
//! back, and the real server's answers when there is nothing to reach.

use crate::support::streaming::{Harness, NODE, kubectl_kubeconfig, start};
use k8s_labs_apiserver::testing::{client_without_retries, kubectl_binary};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const POD_IP: &str = "10.244.0.7";

/// An HTTP server that answers every request with the request it read (head and body).
async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                let head_end = loop {
                    if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break end + 4;
                    }
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length: "))
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() < head_end + length {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Backend: echo\r\n\
                     Connection: close\r\nContent-Length: {}\r\n\r\n",
                    request.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.write_all(&request).await;
            });
        }
    });
    port
}

/// A port on 127.0.0.1 where nothing listens, below the ephemeral range: a connection to a
/// closed port of that range may get the same port as its source and connect to itself.
async fn closed_port() -> u16 {
    for port in 20000..30000 {
        if TcpListener::bind(("127.0.0.1", port)).await.is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..30000");
}

/// A pod on the local node declaring `port`, with `ip` reported as its IP.
async fn pod(harness: &Harness, name: &str, port: u16, ip: Option<&str>) {
    let pods: Api<Pod> = Api::namespaced(harness.client.clone(), "default");
    let pod = json!({
        "metadata": {"name": name, "labels": {"app": "echo"}},
        "spec": {"nodeName": NODE, "containers": [{"name": "main", "image": "busybox",
                 "ports": [{"containerPort": port}]}]},
    });
    let pod: Pod = serde_json::from_value(pod).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    if let Some(ip) = ip {
        let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}});
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }
}

/// A Service `name` whose port 8080 (named `http`) has `addresses` as its endpoints on
/// `target_port`, as the endpoints controller would write them.
async fn service(harness: &Harness, name: &str, addresses: &[(&str, &str)], target_port: u16) {
    let services: Api<Service> = Api::namespaced(harness.client.clone(), "default");
    let service = json!({"metadata": {"name": name}, "spec": {"selector": {"app": "echo"},
        "ports": [{"name": "http", "port": 8080, "targetPort": target_port}]}});
    services
        .create(
            &PostParams::default(),
            &serde_json::from_value(service).unwrap(),
        )
        .await
        .unwrap();
    let addresses: Vec<Value> = addresses
        .iter()
        .map(|(ip, pod)| json!({"ip": ip, "targetRef": {"kind": "Pod", "name": pod, "namespace": "default"}}))
        .collect();
    let subsets = match addresses.is_empty() {
        true => json!([]),
        false => {
            json!([{"addresses": addresses, "ports": [{"name": "http", "port": target_port}]}])
        }
    };
    let endpoints = json!({"metadata": {"name": name}, "subsets": subsets});
    Api::<Endpoints>::namespaced(harness.client.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(endpoints).unwrap(),
        )
        .await
        .unwrap();
}

/// The status, headers and body of one request.
async fn send(
    harness: &Harness,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, http::HeaderMap, String) {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("X-Test", "sent by the client")
        .body(body.as_bytes().to_vec())
        .unwrap();
    // Once: kube retries a 503 with backoff by default, which would hide the answer.
    let client = client_without_retries(&kubectl_kubeconfig(harness))
        .await
        .unwrap();
    let response = client.send(request.map(Into::into)).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect_bytes().await.unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

const PODS: &str = "/api/v1/namespaces/default/pods";
const SERVICES: &str = "/api/v1/namespaces/default/services";

#[tokio::test]
async fn a_pods_proxy_sends_the_request_on_without_the_clients_credentials() {
    let harness = start().await;
    let port = echo_server().await;
    pod(&harness, "echo", port, Some(POD_IP)).await;

    // The first declared port, the path after `proxy` with its slash and query.
    let (status, headers, got) = send(
        &harness,
        "GET",
        &format!("{PODS}/echo/proxy/a/./b/?q=1"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(headers["x-backend"], "echo");
    assert!(got.starts_with("GET /a/b/?q=1 HTTP/1.1\r\n"), "{got}");
    let got = got.to_lowercase();
    assert!(got.contains("x-test: sent by the client\r\n"), "{got}");
    assert!(
        !got.contains("authorization"),
        "the bearer token reached the pod: {got}"
    );

    // A body goes on; the port may be named in the id.
    let (status, _, got) = send(
        &harness,
        "POST",
        &format!("{PODS}/echo:{port}/proxy/form"),
        "a=1",
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert!(
        got.starts_with("POST /form HTTP/1.1\r\n") && got.ends_with("\r\n\r\na=1"),
        "{got}"
    );

    // `…/proxy` itself is redirected to `…/proxy/`, as upstream redirects it.
    let (status, headers, _) = send(&harness, "GET", &format!("{PODS}/echo/proxy?x=y"), "").await;
    assert_eq!(status, 301);
    assert_eq!(headers["location"], format!("{PODS}/echo/proxy/?x=y"));
}

#[tokio::test]
async fn a_services_proxy_reaches_a_ready_endpoint_by_port_number_or_name() {
    let harness = start().await;
    let port = echo_server().await;
    pod(&harness, "echo-0", port, Some(POD_IP)).await;
    service(&harness, "echo", &[(POD_IP, "echo-0")], port).await;
    for id in ["echo:8080", "echo:http", "http:echo:http"] {
        let (status, _, got) = send(&harness, "GET", &format!("{SERVICES}/{id}/proxy/"), "").await;
        assert_eq!(status, 200, "{id}: {got}");
        assert!(got.starts_with("GET / HTTP/1.1\r\n"), "{id}: {got}");
    }
}

/// The status object of an answer: code, reason, message.
fn status_of(status: u16, body: &str) -> (u16, String, String) {
    let object: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{status} {body}: {e}"));
    assert_eq!(object["kind"], "Status");
    assert_eq!(object["code"], status);
    let text = |key: &str| object[key].as_str().unwrap_or_default().to_string();
    (status, text("reason"), text("message"))
}

#[tokio::test]
async fn what_cannot_be_reached_gets_the_real_servers_answers() {
    let harness = start().await;
    let closed = closed_port().await;
    pod(&harness, "closed", closed, Some(POD_IP)).await;
    pod(&harness, "pending", 80, None).await;
    service(&harness, "empty", &[], 80).await;
    service(&harness, "stale", &[("10.244.0.99", "closed")], 80).await;
    let cases = [
        (
            format!("{PODS}/closed/proxy/"),
            503,
            "ServiceUnavailable",
            format!("error trying to reach service: dial tcp {POD_IP}:{closed}: connect: "),
        ),
        (
            format!("{PODS}/pending/proxy/"),
            400,
            "BadRequest",
            "address not allowed".to_string(),
        ),
        (
            format!("{PODS}/gone/proxy/"),
            404,
            "NotFound",
            "pods \"gone\" not found".to_string(),
        ),
        (
            format!("{PODS}/ftp:closed:21/proxy/"),
            400,
            "BadRequest",
            "invalid pod request \"ftp:closed:21\"".to_string(),
        ),
        (
            format!("{SERVICES}/empty/proxy/"),
            503,
            "ServiceUnavailable",
            "no endpoints available for service \"empty\"".to_string(),
        ),
        (
            format!("{SERVICES}/empty:81/proxy/"),
            503,
            "ServiceUnavailable",
            "no service port 81 found for service \"empty\"".to_string(),
        ),
        (
            format!("{SERVICES}/stale/proxy/"),
            503,
            "ServiceUnavailable",
            "no endpoints available for service \"stale\"".to_string(),
        ),
        (
            format!("{SERVICES}/none/proxy/"),
            404,
            "NotFound",
            "endpoints \"none\" not found".to_string(),
        ),
    ];
    for (path, code, reason, message) in cases {
        let (status, _, body) = send(&harness, "GET", &path, "").await;
        let (status, found_reason, found_message) = status_of(status, &body);
        assert_eq!(
            (status, found_reason.as_str()),
            (code, reason),
            "{path}: {body}"
        );
        assert!(
            found_message.starts_with(&message),
            "{path}: {found_message}"
        );
    }
}

/// kubectl reads the proxy through `get --raw`, and `kubectl debug` tells a missing
/// `ephemeralcontainers` subresource from a missing pod by the 404's empty details.
#[tokio::test]
async fn kubectl_reads_through_the_proxy_and_debug_says_what_is_missing() {
    let harness = start().await;
    let port = echo_server().await;
    pod(&harness, "echo", port, Some(POD_IP)).await;
    let dir = std::env::temp_dir().join(format!("apiserver-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, kubectl_kubeconfig(&harness)).unwrap();
    // Not std's Command: the server runs on this test's runtime.
    let kubectl = async |args: &[&str]| {
        tokio::process::Command::new(kubectl_binary(33))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .await
            .unwrap()
    };
    let raw = kubectl(&["get", "--raw", &format!("{PODS}/echo/proxy/hello")]).await;
    let stdout = String::from_utf8_lossy(&raw.stdout);
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert!(stdout.starts_with("GET /hello HTTP/1.1\r\n"), "{stdout}");

    let debug = kubectl(&["debug", "echo", "--image=busybox", "--", "true"]).await;
    let stderr = String::from_utf8_lossy(&debug.stderr);
    assert_eq!(debug.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: ephemeral containers are disabled for this cluster"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
