//! kube-apiserver's max-in-flight filter (`WithMaxInFlightLimit`): read-only requests (get,
//! list) and the others (mutating) each have a number of slots; a request that finds its pool
//! full is refused at once with 429 and `Retry-After: 1`, never queued. Long-running requests
//! take no slot.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode, header};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ServingLimits;
use super::long_running::is_long_running;

/// The body `tooManyRequests` writes with Go's `http.Error` (which adds the newline).
pub const TOO_MANY_REQUESTS_BODY: &str = "Too many requests, please try again later.\n";

/// The two pools of slots; `None` where the limit is 0 (no limit).
pub struct InFlight {
    read_only: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
}

/// A request's slot, given back when the request has been answered.
pub type Slot = Option<OwnedSemaphorePermit>;

/// The pool was full; answered with [`too_many_requests`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolFull;

impl IntoResponse for PoolFull {
    fn into_response(self) -> Response {
        too_many_requests()
    }
}

impl InFlight {
    /// Pools sized by `limits`.
    pub fn new(limits: &ServingLimits) -> InFlight {
        let pool = |size: usize| (size > 0).then(|| Arc::new(Semaphore::new(size)));
        InFlight {
            read_only: pool(limits.max_requests_inflight),
            mutating: pool(limits.max_mutating_requests_inflight),
        }
    }

    /// Takes a slot for the request (none for long-running requests or an unlimited pool),
    /// or the 429 answer when its pool is full.
    pub fn admit(&self, parts: &Parts) -> Result<Slot, PoolFull> {
        if is_long_running(&parts.method, &parts.uri) {
            return Ok(None);
        }
        // The verbs get, list and watch are read-only; HEAD is a get for resources.
        let pool = if matches!(parts.method, Method::GET | Method::HEAD) {
            &self.read_only
        } else {
            &self.mutating
        };
        match pool {
            None => Ok(None),
            Some(pool) => match pool.clone().try_acquire_owned() {
                Ok(slot) => Ok(Some(slot)),
                Err(_) => Err(PoolFull),
            },
        }
    }
}

/// Upstream's `tooManyRequests`: `Retry-After: 1` and Go's `http.Error` (plain text, not a
/// Status object).
pub fn too_many_requests() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::RETRY_AFTER, HeaderValue::from_static("1")),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        TOO_MANY_REQUESTS_BODY,
    )
        .into_response()
}
