//! One port-forward session, as the kubelet's SPDY handler runs it: the client opens two
//! streams per local connection, an error stream and a data stream, with the headers
//! `streamType`, `port` and `requestID`; once both of a request are open, the node connects
//! to the port inside the pod and the data stream carries the bytes both ways. A failure is
//! written on the error stream (kubectl prints it as "an error occurred forwarding …").

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use k8s_labs_node_api::{NodeConnection, PortForwardRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::spdy::session::{self, Inbound, IncomingStream, Outbound};

/// What a data frame carries at most: client-go reads in 32 KiB pieces too.
const CHUNK: usize = 32 * 1024;

/// The pod every stream of the session forwards to (the port comes with each request).
#[derive(Clone)]
pub(super) struct ForwardTarget {
    pub node: Arc<dyn NodeConnection>,
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub host_network: bool,
}

/// The two streams of one request, as they arrive.
#[derive(Default)]
struct Pair {
    error: Option<(IncomingStream, Outbound)>,
    data: Option<(IncomingStream, Outbound)>,
}

/// Serves the session on `io` until the client goes away; every forwarded connection ends
/// with it.
pub(super) async fn run<IO>(io: IO, target: ForwardTarget)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (streams, mut opened) = mpsc::unbounded_channel();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut forwards = JoinSet::new();
    let session = session::serve(io, streams);
    tokio::pin!(session);
    loop {
        tokio::select! {
            () = &mut session => break,
            Some((stream, outbound)) = opened.recv() => {
                let Some(request_id) = stream.header("requestid").map(str::to_string) else {
                    tracing::debug!(id = stream.id, "port-forward stream without requestID");
                    continue;
                };
                let pair = pairs.entry(request_id.clone()).or_default();
                match stream.header("streamtype") {
                    Some("error") => pair.error = Some((stream, outbound)),
                    Some("data") => pair.data = Some((stream, outbound)),
                    other => tracing::debug!(?other, "port-forward stream of an unknown type"),
                }
                if pair.error.is_some() && pair.data.is_some()
                    && let Some(Pair { error: Some(error), data: Some(data) }) =
                        pairs.remove(&request_id)
                {
                    forwards.spawn(forward(target.clone(), error, data));
                }
            }
            Some(_) = forwards.join_next(), if !forwards.is_empty() => {}
        }
    }
    forwards.abort_all();
}

/// Forwards one connection: the pod's port to the data stream and back. Ends by closing both
/// streams, the error stream carrying the failure if there was one.
async fn forward(
    target: ForwardTarget,
    (error_stream, out): (IncomingStream, Outbound),
    (data_stream, _): (IncomingStream, Outbound),
) {
    let data_id = data_stream.id;
    let port_header = data_stream.header("port").unwrap_or_default().to_string();
    let outcome = match port_header.parse::<u16>() {
        Ok(port) if port > 0 => {
            let request = PortForwardRequest {
                namespace: target.namespace.clone(),
                pod: target.pod.clone(),
                uid: target.uid.clone(),
                host_network: target.host_network,
                port,
            };
            match target.node.port_forward(request).await {
                Ok(socket) => {
                    pipe(socket, data_stream, &out).await;
                    Ok(())
                }
                Err(error) => Err(error.to_string()),
            }
        }
        // The kubelet's check of the header (`invalid port`), before any connection.
        _ => Err(format!(
            "error forwarding port {port_header} to pod {}, uid : invalid port {port_header:?}",
            target.uid
        )),
    };
    if let Err(message) = outcome {
        out.data(error_stream.id, Bytes::from(message)).await;
    }
    // The kubelet's order: its deferred closes run error stream first, then data stream.
    out.finish(error_stream.id).await;
    out.finish(data_id).await;
}

/// Copies the pod's bytes to the data stream and the client's to the pod, until the pod closes
/// its side or the client resets the stream. The client's FIN half-closes the pod connection.
async fn pipe(socket: tokio::net::TcpStream, data_stream: IncomingStream, out: &Outbound) {
    let id = data_stream.id;
    let (mut from_pod, mut to_pod) = socket.into_split();
    let mut inbound = data_stream.inbound;
    let to_client = async {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            match from_pod.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !out.data(id, Bytes::copy_from_slice(&buffer[..n])).await {
                        return;
                    }
                }
            }
        }
    };
    let from_client = async {
        loop {
            match inbound.recv().await {
                Some(Inbound::Data(bytes)) => {
                    if to_pod.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Inbound::Reset) => return,
                None => {
                    // The client sends nothing more; the pod may still answer.
                    let _ = to_pod.shutdown().await;
                    std::future::pending::<()>().await;
                }
            }
        }
    };
    tokio::select! {
        () = to_client => {}
        () = from_client => {}
    }
}
