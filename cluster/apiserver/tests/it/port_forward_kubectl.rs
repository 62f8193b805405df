//! The real kubectl's `port-forward` against the API server, both transports: kubectl 1.33
//! tunnels SPDY in a WebSocket (`SPDY/3.1+portforward.k8s.io`), kubectl 1.30 upgrades to SPDY
//! directly. The "pod" is a small HTTP server of the test process's (the local node connects
//! to its ports on 127.0.0.1), so the bytes that come back are the server's.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::streaming::{Harness, kubectl_kubeconfig, running_pod, start};
use k8s_labs_apiserver::testing::kubectl_binary;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Answers every connection with one HTTP response naming the connection's number.
async fn pod_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut served = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            served += 1;
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let body = format!("connection {served} got {} bytes", request.len());
                let answer = format!("HTTP/1.0 200 OK\r\n\r\n{body}");
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

/// A free TCP port on 127.0.0.1, for a remote port where nothing listens.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

const REQUEST: &str = "GET / HTTP/1.0\r\nHost: pod\r\n\r\n";

/// `GET /` through 127.0.0.1:`port`; the whole answer.
async fn get(port: u16) -> String {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    socket.write_all(REQUEST.as_bytes()).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    answer
}

struct PortForward {
    child: tokio::process::Child,
    /// Local port per remote port, in the order given.
    local_ports: Vec<u16>,
    stderr: tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
}

/// Starts `kubectl port-forward pod/web-1 :P1 :P2 …` and waits for its "Forwarding from
/// 127.0.0.1:N -> P" lines.
async fn port_forward(minor: u32, kubeconfig: &Path, remote: &[u16]) -> PortForward {
    let mut args = vec![
        "--kubeconfig".to_string(),
        kubeconfig.display().to_string(),
        "-v=4".to_string(),
        "port-forward".to_string(),
        "pod/web-1".to_string(),
    ];
    args.extend(remote.iter().map(|port| format!(":{port}")));
    let mut child = tokio::process::Command::new(kubectl_binary(minor))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut local_ports = Vec::new();
    while local_ports.len() < remote.len() {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("kubectl 1.{minor} port-forward ended early"));
        if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") {
            let (local, target) = rest.split_once(" -> ").unwrap();
            assert_eq!(target, remote[local_ports.len()].to_string(), "{line}");
            local_ports.push(local.parse().unwrap());
        }
    }
    // The rest of stdout ("Handling connection for …") must be read or kubectl blocks.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    PortForward {
        child,
        local_ports,
        stderr,
    }
}

impl PortForward {
    /// Reads kubectl's stderr until a line contains `wanted`; that line. A fallback from
    /// the WebSocket tunnel to plain SPDY fails the test: the tunnel must be accepted.
    async fn stderr_until(&mut self, wanted: &str) -> String {
        while let Some(line) = self.stderr.next_line().await.unwrap() {
            assert!(!line.contains("fallback to secondary dialer"), "{line}");
            if line.contains(wanted) {
                return line;
            }
        }
        panic!("kubectl's stderr ended without {wanted:?}");
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn setup(test: &str) -> (Harness, PathBuf) {
    let harness = start().await;
    running_pod(&harness.client, "web-1").await;
    let path = std::env::temp_dir().join(format!(
        "k8s-labs-port-forward-{}-{test}.kubeconfig",
        std::process::id()
    ));
    std::fs::write(&path, kubectl_kubeconfig(&harness)).unwrap();
    (harness, path)
}

/// Two ports, two concurrent connections on one, and a sequential third: each is its own
/// stream pair, and each answer is the pod server's.
async fn forwards_two_ports(forward: &PortForward) {
    let [first, second] = forward.local_ports[..] else {
        panic!("two local ports");
    };
    let whole = format!("got {} bytes", REQUEST.len());
    let (a, b) = tokio::join!(get(first), get(first));
    for answer in [&a, &b] {
        assert!(
            answer.starts_with("HTTP/1.0 200 OK\r\n\r\nconnection "),
            "{answer}"
        );
        assert!(answer.ends_with(&whole), "{answer}");
    }
    assert_ne!(a, b, "two connections, two answers");
    let c = get(second).await;
    assert!(c.ends_with(&whole), "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_33_forwards_over_the_websocket_tunnel() {
    let (_harness, kubeconfig) = setup("ws").await;
    let server = pod_server().await;
    let mut forward = port_forward(33, &kubeconfig, &[server, server]).await;
    forwards_two_ports(&forward).await;
    // client-go's tunneling dialer logs the protocol it negotiated at -v=4 (a fallback to
    // plain SPDY logs "fallback to secondary dialer" instead, before any stream).
    let line = forward.stderr_until("negotiated protocol").await;
    assert!(
        line.ends_with("negotiated protocol: portforward.k8s.io"),
        "{line}"
    );
    forward.stop().await;
    let _ = std::fs::remove_file(&kubeconfig);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_30_forwards_over_spdy() {
    let (_harness, kubeconfig) = setup("spdy").await;
    let server = pod_server().await;
    let forward = port_forward(30, &kubeconfig, &[server, server]).await;
    forwards_two_ports(&forward).await;
    forward.stop().await;
    let _ = std::fs::remove_file(&kubeconfig);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_reported_on_the_error_stream() {
    let (_harness, kubeconfig) = setup("refused").await;
    let port = closed_port().await;
    let mut forward = port_forward(33, &kubeconfig, &[port]).await;
    let local = forward.local_ports[0];
    let answer = get(local).await;
    assert_eq!(answer, "", "nothing comes back from a closed port");
    let line = forward.stderr_until("an error occurred forwarding").await;
    let expected = format!(
        "an error occurred forwarding {local} -> {port}: error forwarding port {port} to pod "
    );
    assert!(line.contains(&expected), "{line}");
    assert!(
        line.contains("Connection refused") || line.contains("connection refused"),
        "{line}"
    );
    forward.stop().await;
    let _ = std::fs::remove_file(&kubeconfig);
}
