//! The API port as kube-apiserver's secure port serves it: TLS only, HTTP/1.1, and Go's
//! `net/http` connection rules that `secure_serving.go` configures.
//!
//! - A client that speaks plain HTTP gets what Go's server writes when a TLS handshake starts
//!   with something that looks like an HTTP request (`tlsRecordHeaderLooksLikeHTTP` in
//!   `net/http/server.go`): `HTTP/1.0 400 Bad Request` with "Client sent an HTTP request to an
//!   HTTPS server.", then the connection is closed. Any other non-TLS start is closed silently.
//! - `ReadHeaderTimeout` (32 s): a request head not complete in time closes the connection
//!   without an answer, as Go does for a read timeout. Go bounds the TLS handshake by the
//!   same figure (`tlsHandshakeTimeout` is the smallest of the read and write timeouts).

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// What Go's `net/http` writes, byte for byte, to a plain-HTTP client of an HTTPS server.
pub const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The first byte of a TLS handshake record (a ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish (watches end
/// with the same token) and returns.
pub fn spawn(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    read_header_timeout: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                // Reaps finished connections so the set does not grow with every client.
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            connections.spawn(serve_connection(
                stream,
                acceptor.clone(),
                app.clone(),
                read_header_timeout,
                shutdown.clone(),
            ));
        }
        while connections.join_next().await.is_some() {}
    })
}

/// One client connection: the handshake, then HTTP/1.1 (with upgrades, for exec and attach
/// over WebSocket) until the client or the shutdown ends it.
async fn serve_connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    app: Router,
    read_header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(read_header_timeout, handshake(stream, acceptor)).await {
        Ok(Some(tls)) => tls,
        _ => return,
    };
    let service = TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(read_header_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// The TLS handshake, or Go's answer to a client that did not start one.
async fn handshake(stream: TcpStream, acceptor: TlsAcceptor) -> Option<TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await.ok()? == 0 {
        return None;
    }
    if first[0] == TLS_HANDSHAKE_RECORD {
        return acceptor.accept(stream).await.ok();
    }
    refuse_plain_text(stream).await;
    None
}

/// Go reads a record header (5 bytes) and, when it is not TLS but looks like an HTTP request
/// line, writes [`PLAIN_HTTP_ANSWER`] and closes.
async fn refuse_plain_text(mut stream: TcpStream) {
    let mut header = [0u8; 5];
    if stream.read_exact(&mut header).await.is_err() || !looks_like_http(&header) {
        return;
    }
    if stream.write_all(PLAIN_HTTP_ANSWER).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    // Reads what the client still sends until it closes (bounded by the handshake timeout):
    // closing with unread bytes would send a reset, which can discard the answer on the
    // client's side before it is read.
    let mut rest = [0u8; 4096];
    while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
}

/// Go's `tlsRecordHeaderLooksLikeHTTP`: the request starts it recognises.
fn looks_like_http(header: &[u8; 5]) -> bool {
    matches!(header, b"GET /" | b"HEAD " | b"POST " | b"PUT /" | b"OPTIO")
}
