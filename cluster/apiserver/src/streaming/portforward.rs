//! `pods/portforward`: the request is checked as kube-apiserver checks it (the pod has a
//! node) and as the kubelet does (the pod is on that node), then upgraded to a SPDY/3.1
//! session that [`super::forward`] serves. Two transports, as upstream offers them:
//!
//! - kubectl 1.31 and newer (`PortForwardWebsockets`): a WebSocket with the subprotocol
//!   `SPDY/3.1+portforward.k8s.io`, whose binary messages carry the SPDY session's bytes
//!   (client-go's `TunnelingConnection`, the API server's `streamtunnel.go`);
//! - older kubectl, or newer when the WebSocket is refused: an HTTP/1.1 upgrade to
//!   `SPDY/3.1` with `X-Stream-Protocol-Version: portforward.k8s.io`.

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use k8s_labs_node_api::NodeConnections;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::forward::{self, ForwardTarget};
use super::{StatusError, node_connection};

/// The port-forward stream protocol (client-go's `PortForwardProtocolV1Name`).
const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol that tunnels it: `SPDY/3.1+` and the protocol.
const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
const SPDY_UPGRADE: &str = "SPDY/3.1";
const PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";
/// Bytes of the SPDY session in flight between the WebSocket and the session.
const TUNNEL_BUFFER: usize = 256 * 1024;

/// Serves a `portforward` request for the stored `pod` (JSON). `ws` is the WebSocket
/// upgrade when the request is one; `spdy` the connection's HTTP upgrade otherwise.
pub async fn serve_port_forward(
    nodes: &NodeConnections,
    pod: &Value,
    ws: Option<WebSocketUpgrade>,
    spdy: Option<OnUpgrade>,
    headers: &http::HeaderMap,
) -> Response {
    let target = match target(nodes, pod) {
        Ok(target) => target,
        Err(error) => return error.into_response(),
    };
    if let Some(ws) = ws {
        let ws = ws.protocols([TUNNEL_PROTOCOL]);
        if ws.selected_protocol().is_some() {
            return ws.on_upgrade(move |socket| tunnel(socket, target));
        }
        return StatusError::bad_request(format!(
            "port forwarding over WebSocket needs the subprotocol {TUNNEL_PROTOCOL}"
        ))
        .into_response();
    }
    let upgrade = header(headers, http::header::UPGRADE.as_str());
    if !upgrade.eq_ignore_ascii_case(SPDY_UPGRADE) {
        return StatusError::bad_request("Upgrade request required").into_response();
    }
    if let Err(error) = negotiate(headers) {
        return error.into_response();
    }
    let Some(on_upgrade) = spdy else {
        return StatusError::internal("the connection cannot be upgraded").into_response();
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => forward::run(TokioIo::new(upgraded), target).await,
            Err(error) => tracing::debug!(%error, "port-forward upgrade failed"),
        }
    });
    Response::builder()
        .status(http::StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, SPDY_UPGRADE)
        .header(PROTOCOL_HEADER, PROTOCOL)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusError::internal("building the upgrade").into_response())
}

/// kube-apiserver's `PortForwardLocation` (a node is assigned) and the kubelet's lookup of
/// the pod on its node.
fn target(nodes: &NodeConnections, pod: &Value) -> Result<ForwardTarget, StatusError> {
    let text = |field: &Value| field.as_str().unwrap_or_default().to_string();
    let name = text(&pod["metadata"]["name"]);
    let namespace = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let uid = text(&pod["metadata"]["uid"]);
    let node_name = text(&pod["spec"]["nodeName"]);
    if node_name.is_empty() {
        return Err(StatusError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let node = node_connection(nodes, &node_name)?;
    node.check_port_forward(&namespace, &name, &uid)
        .map_err(StatusError::from_node)?;
    Ok(ForwardTarget {
        node,
        namespace,
        pod: name,
        uid,
        host_network: pod["spec"]["hostNetwork"].as_bool() == Some(true),
    })
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// apimachinery's `httpstream.Handshake`: the client must offer the protocol.
fn negotiate(headers: &http::HeaderMap) -> Result<(), StatusError> {
    let offered: Vec<&str> = headers
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if offered.is_empty() {
        return Err(StatusError::bad_request(format!(
            "unable to upgrade: {PROTOCOL_HEADER} is required"
        )));
    }
    if offered.contains(&PROTOCOL) {
        return Ok(());
    }
    Err(StatusError {
        code: 403,
        reason: "Forbidden",
        message: format!(
            "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{PROTOCOL}]",
            offered.join(" ")
        ),
    })
}

/// The WebSocket transport: binary messages in, bytes to the session; the session's bytes
/// out, one binary message per read (client-go's `TunnelingConnection` reads them as a stream).
async fn tunnel(socket: WebSocket, target: ForwardTarget) {
    let (session_end, bridge_end) = tokio::io::duplex(TUNNEL_BUFFER);
    tokio::select! {
        () = forward::run(session_end, target) => {}
        () = bridge(socket, bridge_end) => {}
    }
}

async fn bridge(socket: WebSocket, end: DuplexStream) {
    let (mut sink, mut source) = socket.split();
    let (mut from_session, mut to_session) = tokio::io::split(end);
    let inbound = async {
        while let Some(Ok(message)) = source.next().await {
            match message {
                Message::Binary(bytes) if to_session.write_all(&bytes).await.is_err() => return,
                Message::Close(_) => return,
                _ => {}
            }
        }
    };
    let outbound = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match from_session.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let message = Message::Binary(bytes::Bytes::copy_from_slice(&buffer[..n]));
                    if sink.send(message).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = sink.close().await;
    };
    tokio::select! {
        () = inbound => {}
        () = outbound => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for value in values {
            map.append(PROTOCOL_HEADER, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_client_must_offer_portforward_k8s_io() {
        assert!(negotiate(&headers(&["portforward.k8s.io"])).is_ok());
        assert!(negotiate(&headers(&["v2.portforward.k8s.io", "portforward.k8s.io"])).is_ok());
        let missing = negotiate(&headers(&[])).unwrap_err();
        assert_eq!(
            missing.message,
            "unable to upgrade: X-Stream-Protocol-Version is required"
        );
        let other = negotiate(&headers(&["v9.example"])).unwrap_err();
        assert_eq!(other.code, 403);
        assert_eq!(
            other.message,
            "unable to upgrade: unable to negotiate protocol: client supports [v9.example], server accepts [portforward.k8s.io]"
        );
    }

    #[test]
    fn a_pod_without_a_node_cannot_be_forwarded_to() {
        let pod =
            serde_json::json!({"metadata": {"name": "web-0", "namespace": "default"}, "spec": {}});
        let error = target(&NodeConnections::default(), &pod).err().unwrap();
        assert_eq!(error.message, "pod web-0 does not have a host assigned");
        assert_eq!(error.code, 400);
    }
}
