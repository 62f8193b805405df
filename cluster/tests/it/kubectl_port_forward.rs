//! `kubectl port-forward` with the real kubectl 1.33 (SPDY tunneled in a WebSocket) and 1.30
//! (SPDY upgrade) on the embedded cluster: kubectl listens on the user's 127.0.0.1, the node
//! connects inside the pod's network namespace, and an HTTP GET from this test process gets
//! nginx's page from the pod. Two ports at once, two concurrent connections, the `svc/` and
//! `sts/` forms, and the kubelet's error for a port where nothing listens. Then `kubectl
//! proxy`: the same page through the API server's `pods/proxy` and `services/proxy`, which the
//! node dials from its own network namespace. Needs root and `scripts/install-deps`, as the
//! other embedded-cluster tests do.

use crate::support;

use std::path::Path;

use support::kubectl::Kubectl;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStderr};

fn web_yaml() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests/statefulset-dns/web.yaml")
        .display()
        .to_string()
}

/// A running `kubectl port-forward`, with the local port it chose for each remote port.
struct PortForward {
    child: Child,
    local_ports: Vec<u16>,
    stderr: Lines<BufReader<ChildStderr>>,
}

impl PortForward {
    /// Starts `kubectl port-forward <object> :<remote>…` (kubectl picks free local ports) and
    /// reads its "Forwarding from 127.0.0.1:N -> R" lines.
    async fn start(k: &Kubectl, object: &str, remote: &[u16]) -> PortForward {
        let ports: Vec<String> = remote.iter().map(|port| format!(":{port}")).collect();
        let mut args = vec!["port-forward", object];
        args.extend(ports.iter().map(String::as_str));
        let mut child = k.spawn(&args);
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let mut local_ports = Vec::new();
        while local_ports.len() < remote.len() {
            let Some(line) = stdout.next_line().await.expect("kubectl's stdout") else {
                let mut errors = Vec::new();
                while let Ok(Some(line)) = stderr.next_line().await {
                    errors.push(line);
                }
                panic!(
                    "kubectl 1.{} {args:?} ended before forwarding: {}",
                    k.minor,
                    errors.join("\n")
                );
            };
            if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") {
                let (local, target) = rest.split_once(" -> ").expect("'L -> R'");
                assert_eq!(target, remote[local_ports.len()].to_string(), "{line}");
                local_ports.push(local.parse().expect("a port number"));
            }
        }
        // Later lines ("Handling connection for N") must be read, or kubectl blocks on them.
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        PortForward {
            child,
            local_ports,
            stderr,
        }
    }

    /// kubectl's stderr lines until one contains `wanted`; that line.
    async fn stderr_until(&mut self, wanted: &str) -> String {
        while let Some(line) = self.stderr.next_line().await.expect("kubectl's stderr") {
            if line.contains(wanted) {
                return line;
            }
        }
        panic!("kubectl's stderr ended without {wanted:?}");
    }

    /// Kills this kubectl (the process this test started, by its PID).
    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// `GET /` on 127.0.0.1:`port`, as a browser or curl on the user's machine; the whole answer.
async fn get(port: u16) -> String {
    let mut socket = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("kubectl listens");
    socket
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("sending the request");
    let mut answer = String::new();
    socket
        .read_to_string(&mut answer)
        .await
        .expect("reading the answer");
    answer
}

fn assert_nginx_page(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains("<title>Welcome to nginx!</title>"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_port_forward_reaches_nginx_in_the_pod() {
    let _turn = crate::support::cluster_turn().await;
    let scratch = support::scratch_dir("kubectl-port-forward");
    let (cluster, kubeconfig) = support::start_cluster(&scratch).await;
    let k33 = Kubectl::new(33, &kubeconfig, &scratch);
    k33.ok(&["apply", "-f", &web_yaml()]).await;
    k33.ok(&["rollout", "status", "statefulset/web", "--timeout=180s"])
        .await;
    for minor in [33, 30] {
        let k = Kubectl::new(minor, &kubeconfig, &scratch);
        two_ports_and_concurrent_connections(&k).await;
        service_and_statefulset_forms(&k).await;
        nothing_listening(&k).await;
    }
    through_the_api_server_proxy(&k33).await;
    cluster.stop().await.expect("the cluster stops cleanly");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// `port-forward pod/web-0 :80 :80`: two local ports, two connections at once on the first.
async fn two_ports_and_concurrent_connections(k: &Kubectl) {
    let forward = PortForward::start(k, "pod/web-0", &[80, 80]).await;
    let [first, second] = forward.local_ports[..] else {
        panic!("two local ports: {:?}", forward.local_ports);
    };
    assert_ne!(first, second);
    let (a, b) = tokio::join!(get(first), get(first));
    assert_nginx_page(&a);
    assert_nginx_page(&b);
    assert_nginx_page(&get(second).await);
    forward.stop().await;
}

/// kubectl resolves `svc/nginx` and `sts/web` to a pod itself; the forward is to that pod.
async fn service_and_statefulset_forms(k: &Kubectl) {
    for object in ["svc/nginx", "sts/web"] {
        let forward = PortForward::start(k, object, &[80]).await;
        assert_nginx_page(&get(forward.local_ports[0]).await);
        forward.stop().await;
    }
}

/// Everything kubectl sends back on a connection to 127.0.0.1:`port` to which this test
/// writes nothing.
///
/// When the pod's port refuses, kubectl closes the local connection as soon as the remote
/// stream ends (client-go's `handleConnection`), whether or not its local-to-remote copy has
/// read what the client sent; a TCP close with unread bytes is a reset. So a client that sent
/// a request sees either an empty answer or "connection reset", as on any cluster, depending
/// on how kubectl's goroutines ran. A client that sends nothing always sees the plain close.
async fn answer_to_silence(port: u16) -> String {
    let mut socket = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("kubectl listens");
    let mut answer = String::new();
    socket
        .read_to_string(&mut answer)
        .await
        .expect("reading until kubectl closes");
    answer
}

/// Port 81 of the pod has no listener: the connection closes empty and kubectl prints the
/// kubelet's error from the request's error stream.
async fn nothing_listening(k: &Kubectl) {
    let uid = k
        .ok(&["get", "pod", "web-0", "-o", "jsonpath={.metadata.uid}"])
        .await;
    let mut forward = PortForward::start(k, "pod/web-0", &[81]).await;
    let local = forward.local_ports[0];
    assert_eq!(
        answer_to_silence(local).await,
        "",
        "nothing comes back from a closed port"
    );
    // kubectl 1.33 logs the error as a structured klog value, its quotes escaped.
    let line = forward
        .stderr_until("an error occurred forwarding")
        .await
        .replace("\\\"", "\"");
    let expected = format!(
        "an error occurred forwarding {local} -> 81: error forwarding port 81 to pod {uid}, uid : \
         failed to execute portforward in network namespace \"/run/netns/k8s-labs-"
    );
    assert!(line.contains(&expected), "{line}");
    let expected = format!(
        "-pod-{uid}\": failed to connect to localhost:81 inside namespace \"{uid}\", \
         IPv4: dial tcp4 127.0.0.1:81: connect: connection refused IPv6 dial tcp6 [::1]:81: connect: "
    );
    assert!(line.contains(&expected), "{line}");
    forward.stop().await;
}

/// `kubectl proxy` on a free port, then nginx's page through `pods/web-0/proxy/` and the
/// Service's port by number and by name; a pod port where nothing listens is a 503 with the
/// dial's error, and the Service's unnamed port does not exist (its one port is named `web`),
/// so that form finds no endpoints, as on any cluster.
async fn through_the_api_server_proxy(k: &Kubectl) {
    let mut child = k.spawn(&["proxy", "--port=0"]);
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let line = stdout
        .next_line()
        .await
        .expect("kubectl's stdout")
        .expect("kubectl proxy says where it serves");
    let port: u16 = line
        .strip_prefix("Starting to serve on 127.0.0.1:")
        .and_then(|port| port.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    let get_path = async |path: &str| {
        let mut socket = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("kubectl proxy listens");
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        socket.write_all(request.as_bytes()).await.expect("sending");
        let mut answer = String::new();
        socket.read_to_string(&mut answer).await.expect("reading");
        answer
    };
    let base = "/api/v1/namespaces/default";
    for path in [
        "pods/web-0/proxy/",
        "pods/web-0:80/proxy/",
        "services/nginx:80/proxy/",
        "services/http:nginx:web/proxy/",
    ] {
        assert_nginx_page(&get_path(&format!("{base}/{path}")).await);
    }
    // The node's dial of a port where nothing listens, in Go's words.
    let ip = k
        .ok(&["get", "pod", "web-0", "-o", "jsonpath={.status.podIP}"])
        .await;
    let answer = get_path(&format!("{base}/pods/web-0:81/proxy/")).await;
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    let refused =
        format!("error trying to reach service: dial tcp {ip}:81: connect: connection refused");
    assert!(answer.contains(&refused), "{answer}");
    let answer = get_path(&format!("{base}/services/nginx/proxy/")).await;
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains(r#""message":"no endpoints available for service \"nginx\"""#),
        "{answer}"
    );
    let _ = child.kill().await;
}
