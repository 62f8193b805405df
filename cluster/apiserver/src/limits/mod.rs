//! kube-apiserver's limits on requests and connections, with its default figures: requests in
//! flight (`--max-requests-inflight`, `--max-mutating-requests-inflight`), the request timeout
//! (`--request-timeout`, `?timeout=`) and the time a client has to send a request head.
//! Configurable so that tests can use small figures instead of waiting for the real ones.

pub mod go_duration;
pub mod in_flight;
pub mod long_running;
pub mod timeout;

use std::time::Duration;

/// The limits a server applies; [`ServingLimits::default`] is kube-apiserver 1.33's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingLimits {
    /// Read-only requests (get, list) served at once; 0 is no limit. Upstream's default: 400.
    pub max_requests_inflight: usize,
    /// Other (mutating) requests served at once; 0 is no limit. Upstream's default: 200.
    pub max_mutating_requests_inflight: usize,
    /// The longest a request that is not long-running may take, and the cap on `?timeout=`.
    /// Upstream's default: 60 s.
    pub request_timeout: Duration,
    /// How long a client has to finish the TLS handshake and each request head. Upstream's
    /// `ReadHeaderTimeout`: 32 s, "just shy of requestTimeoutUpperBound".
    pub read_header_timeout: Duration,
}

impl Default for ServingLimits {
    fn default() -> Self {
        ServingLimits {
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
            request_timeout: Duration::from_secs(60),
            read_header_timeout: Duration::from_secs(32),
        }
    }
}
