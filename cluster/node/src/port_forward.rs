//! Port forwarding's node side, as the kubelet and containerd do it: a TCP connection to
//! `localhost:<port>` made from inside the pod's network namespace (IPv4 first, then IPv6),
//! handed to the API server, which carries its bytes on the client's stream. The host
//! network namespace never gets a route to a pod: the socket is made by a thread that has
//! joined the pod's namespace ([`k8s_labs_net::netns::run_in`]). The API server's proxy
//! dials a pod's IP from the node's namespace instead ([`dial_from_node`]), as kube-apiserver
//! dials it from the control-plane node.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use k8s_labs_net::netns;
use k8s_labs_node_api::{NodeError, PortForwardRequest};

use crate::context::NodeContext;
use crate::probes::go_style;

/// The kubelet's answer before the upgrade: the pod must be one of this node's.
pub(crate) fn check(
    context: &NodeContext,
    namespace: &str,
    pod: &str,
    uid: &str,
) -> Result<(), NodeError> {
    if context.registry.has_pod(namespace, pod) || context.network.pod_network(uid).is_some() {
        Ok(())
    } else {
        Err(NodeError::NotFound("pod does not exist".to_string()))
    }
}

/// Connects to the pod's port; the error reads as the kubelet's (containerd's inner text).
pub(crate) async fn connect(
    context: &NodeContext,
    request: &PortForwardRequest,
) -> Result<tokio::net::TcpStream, NodeError> {
    // The runtime names the pod by its sandbox id; a pod's sandbox here is named by its uid.
    let sandbox = request.uid.as_str();
    let port = request.port;
    let fail = |inner: String| {
        NodeError::Internal(format!(
            "error forwarding port {port} to pod {sandbox}, uid : {inner}"
        ))
    };
    let (netns_path, shown_path) = if request.host_network {
        (
            context.network.netns_path().to_path_buf(),
            "host".to_string(),
        )
    } else {
        let network = context.network.pod_network(&request.uid).ok_or_else(|| {
            fail(format!(
                "network namespace for sandbox {sandbox:?} is closed"
            ))
        })?;
        let shown = network.netns_path.display().to_string();
        (network.netns_path, shown)
    };
    let dialled = tokio::task::spawn_blocking(move || dial_localhost(netns_path, port))
        .await
        .map_err(|error| fail(format!("the connecting thread failed: {error}")))?;
    let stream = dialled.map_err(|(v4, v6)| {
        fail(format!(
            "failed to execute portforward in network namespace {shown_path:?}: \
             failed to connect to localhost:{port} inside namespace {sandbox:?}, IPv4: {v4} IPv6 {v6} "
        ))
    })?;
    stream
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpStream::from_std(stream))
        .map_err(|error| fail(error.to_string()))
}

/// `localhost:<port>` inside the namespace: 127.0.0.1, then ::1; both errors as Go's `net.Dial`
/// words them when neither answers.
fn dial_localhost(netns_path: PathBuf, port: u16) -> Result<TcpStream, (String, String)> {
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    let attempt = netns::run_in(&netns_path, move || {
        let first = match TcpStream::connect(v4) {
            Ok(stream) => return Ok(Ok(stream)),
            Err(error) => format!("dial tcp4 {v4}: connect: {}", go_style(&error)),
        };
        Ok(match TcpStream::connect(v6) {
            Ok(stream) => Ok(stream),
            Err(error) => Err((
                first,
                format!("dial tcp6 {v6}: connect: {}", go_style(&error)),
            )),
        })
    });
    match attempt {
        Ok(result) => result,
        Err(error) => {
            let text = format!("entering the network namespace: {error}");
            Err((text.clone(), text))
        }
    }
}

/// How long a proxy's dial may take: kube-apiserver's proxy dialer's timeout.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// A TCP connection to `address` made from the node's network namespace (where the bridge
/// routes to every pod), for the API server's proxy; the error is Go's dial error.
pub(crate) async fn dial_from_node(
    context: &NodeContext,
    address: SocketAddrV4,
) -> Result<tokio::net::TcpStream, NodeError> {
    let network = context.network.clone();
    let dial = move || network.connect_tcp(SocketAddr::V4(address), DIAL_TIMEOUT);
    // Go words a timeout without the syscall: `dial tcp 10.244.0.9:80: i/o timeout`.
    let fail = |error: std::io::Error| match error.kind() {
        std::io::ErrorKind::TimedOut => {
            NodeError::Internal(format!("dial tcp {address}: i/o timeout"))
        }
        _ => NodeError::Internal(format!("dial tcp {address}: connect: {}", go_style(&error))),
    };
    let stream = tokio::task::spawn_blocking(dial)
        .await
        .map_err(|error| NodeError::Internal(format!("the dialling thread failed: {error}")))?
        .map_err(fail)?;
    stream
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpStream::from_std(stream))
        .map_err(fail)
}
