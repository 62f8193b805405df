//! One Service port's accept loop and the forwarding of each connection to an endpoint.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use k8s_labs_net::NodeNetwork;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::blocking::blocking;
use crate::routes::RouteTable;

/// How long one endpoint may take to accept before the next one is tried (a pod that is gone
/// without its endpoint being removed yet does not answer at all).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepts connections on `clusterIP:port` and forwards each to the next ready endpoint of
/// the route `routes` currently has for `addr`. Runs until aborted; aborting drops the
/// listener and every connection it forwards.
pub(crate) async fn serve(
    listener: TcpListener,
    addr: SocketAddrV4,
    routes: watch::Receiver<RouteTable>,
    network: Arc<NodeNetwork>,
) {
    let mut next_endpoint = 0usize;
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    let endpoints = routes
                        .borrow()
                        .get(&addr)
                        .map(|route| route.endpoints.clone())
                        .unwrap_or_default();
                    if endpoints.is_empty() {
                        tracing::debug!(%addr, "no ready endpoint: rejecting");
                        reject(client);
                        continue;
                    }
                    // Round robin: each connection starts at the next endpoint and falls
                    // back to the following ones when it refuses.
                    let start = next_endpoint % endpoints.len();
                    next_endpoint = next_endpoint.wrapping_add(1);
                    let order: Vec<SocketAddrV4> = endpoints[start..]
                        .iter()
                        .chain(&endpoints[..start])
                        .copied()
                        .collect();
                    connections.spawn(forward(client, addr, order, network.clone()));
                }
                Err(error) => {
                    tracing::warn!(%addr, %error, "accepting a Service connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Connects to the first endpoint of `order` that accepts and copies both ways until either
/// side closes; when none accepts, resets the client.
async fn forward(
    mut client: TcpStream,
    service: SocketAddrV4,
    order: Vec<SocketAddrV4>,
    network: Arc<NodeNetwork>,
) {
    for endpoint in order {
        match connect_from_node(&network, endpoint).await {
            Ok(mut upstream) => {
                if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                {
                    tracing::debug!(%service, %endpoint, %error, "forwarded connection ended");
                }
                return;
            }
            Err(error) => {
                tracing::debug!(%service, %endpoint, "endpoint did not accept: {error:#}");
            }
        }
    }
    reject(client);
}

/// A connection to `endpoint` from a socket created inside the node network namespace.
async fn connect_from_node(
    network: &Arc<NodeNetwork>,
    endpoint: SocketAddrV4,
) -> anyhow::Result<TcpStream> {
    let network = network.clone();
    let socket = blocking(move || Ok(network.tcp_socket_v4()?)).await?;
    let stream =
        tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(SocketAddr::V4(endpoint))).await??;
    Ok(stream)
}

/// Closes a client connection with a reset, so the client fails at once (what kube-proxy's
/// REJECT gives a client: an immediate error, not a hang).
fn reject(client: TcpStream) {
    if let Err(error) = client.set_zero_linger() {
        tracing::debug!(%error, "setting SO_LINGER 0 on a rejected connection");
    }
    drop(client);
}
