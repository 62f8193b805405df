//! kube-apiserver's request deadline (`WithRequestDeadline`) and timeout filter
//! (`WithTimeoutForNonLongRunningRequests`): a request that is not long-running gets
//! `--request-timeout`, or the shorter positive `?timeout=` it asks for; one still unanswered
//! then is answered 504. Unlike Go, where the handler goroutine runs on after the 504, the
//! handler here is dropped at its next await (in practice: while it reads the request body,
//! which Go's `timeoutReader` also fails then).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use super::go_duration;
use super::long_running::is_long_running;
use crate::errors::ApiError;

/// What the timeout filter writes: `json.Encoder` on the bare `metav1.Status` of
/// `NewTimeoutError("request did not complete within the allotted timeout", 0)` (no kind or
/// apiVersion, empty details, a trailing newline).
pub const TIMEOUT_BODY: &str = "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"Timeout: \
    request did not complete within the allotted timeout\",\"reason\":\"Timeout\",\
    \"details\":{},\"code\":504}\n";

/// Upstream's `invalidTimeoutInURL`.
const INVALID_TIMEOUT: &str = "invalid timeout specified in the request URL";

/// The middleware: `maximum` is the server's request timeout.
pub async fn request_deadline(
    State(maximum): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    if is_long_running(request.method(), request.uri()) {
        return next.run(request).await;
    }
    let timeout = match deadline(request.uri(), maximum) {
        Ok(timeout) => timeout,
        Err(error) => return error.into_response(),
    };
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => timed_out(),
    }
}

/// The request's timeout: `?timeout=` when positive and below `maximum`, else `maximum`.
fn deadline(uri: &http::Uri, maximum: Duration) -> Result<Duration, ApiError> {
    let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default();
    // Go's `URL.Query().Get`: the first value; an empty one counts as absent.
    let Some((_, value)) = pairs.iter().find(|(key, _)| key == "timeout") else {
        return Ok(maximum);
    };
    if value.is_empty() {
        return Ok(maximum);
    }
    let nanos = go_duration::parse(value)
        .map_err(|error| ApiError::bad_request(format!("{INVALID_TIMEOUT} - {error}")))?;
    let requested = u64::try_from(nanos)
        .map(Duration::from_nanos)
        .unwrap_or_default();
    Ok(if requested > Duration::ZERO && requested < maximum {
        requested
    } else {
        maximum
    })
}

/// The 504 of the timeout filter; Go sniffs the unlabelled JSON as text.
fn timed_out() -> Response {
    (
        StatusCode::GATEWAY_TIMEOUT,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        TIMEOUT_BODY,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(uri: &str) -> Result<Duration, ApiError> {
        deadline(&uri.parse().unwrap(), Duration::from_secs(60))
    }

    #[test]
    fn the_requested_timeout_applies_below_the_maximum() {
        assert_eq!(of("/api/v1/pods").ok(), Some(Duration::from_secs(60)));
        assert_eq!(
            of("/api/v1/pods?timeout=5s").ok(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            of("/api/v1/pods?timeout=2m").ok(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            of("/api/v1/pods?timeout=0s").ok(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            of("/api/v1/pods?timeout=-1s").ok(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            of("/api/v1/pods?timeout=").ok(),
            Some(Duration::from_secs(60))
        );
    }
}
