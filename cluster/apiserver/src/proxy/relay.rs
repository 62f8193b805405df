//! One HTTP/1.1 exchange with the backend over the connection its node made: the client's
//! request with its end-to-end headers (less its credentials), and the backend's answer
//! streamed back as it comes.

use axum::body::Body;
use axum::response::Response;
use http::header::{self, HeaderName};
use http::request::Parts;
use hyper_util::rt::TokioIo;

use crate::errors::{ApiError, ApiResult};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1, and Go's
/// `httputil.ReverseProxy`'s list), which a proxy never passes on.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Whether a request header goes on to the backend. The client's credentials stay with the
/// API server (upstream's authentication filter removes `Authorization`), as do the
/// impersonation headers it acted on; the body's length is the one sent.
fn forwarded(name: &HeaderName) -> bool {
    let name = name.as_str();
    !(HOP_BY_HOP.contains(&name)
        || name == header::AUTHORIZATION.as_str()
        || name == header::TRANSFER_ENCODING.as_str()
        || name == header::CONTENT_LENGTH.as_str()
        || name.starts_with("impersonate-"))
}

/// Sends the request to the backend on `stream` and answers with its response.
pub async fn send(
    stream: tokio::net::TcpStream,
    parts: &Parts,
    path_and_query: String,
    body: Vec<u8>,
) -> ApiResult<Response> {
    let address = stream
        .peer_addr()
        .map(|address| address.to_string())
        .unwrap_or_default();
    let unreachable = |error: hyper::Error| {
        ApiError::service_unavailable(format!("error trying to reach service: {error}"))
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(unreachable)?;
    // The connection ends when the answer's body has been read (or the client went away).
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!("proxy connection: {error}");
        }
    });
    let mut request = http::Request::builder()
        .method(parts.method.clone())
        .uri(path_and_query);
    for (name, value) in parts.headers.iter().filter(|(name, _)| forwarded(name)) {
        request = request.header(name, value);
    }
    if !parts.headers.contains_key(header::HOST) {
        request = request.header(header::HOST, address);
    }
    let request = request
        .body(Body::from(body))
        .map_err(|error| ApiError::bad_request(format!("cannot proxy this request: {error}")))?;
    let response = sender.send_request(request).await.map_err(unreachable)?;
    let (mut head, incoming) = response.into_parts();
    for name in HOP_BY_HOP {
        head.headers.remove(name);
    }
    Ok(Response::from_parts(head, Body::new(incoming)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_connection_headers_stay_behind() {
        for name in [
            "authorization",
            "connection",
            "upgrade",
            "impersonate-user",
            "content-length",
        ] {
            assert!(!forwarded(&HeaderName::from_static(name)), "{name}");
        }
        for name in [
            "accept",
            "user-agent",
            "content-type",
            "x-forwarded-for",
            "cookie",
        ] {
            assert!(forwarded(&HeaderName::from_static(name)), "{name}");
        }
    }
}
