//! What every handler gets: the shared server state and the parsed request target.

use std::sync::Arc;

use k8s_labs_node_api::NodeConnections;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::errors::{ApiError, ApiResult};
use crate::ipalloc::IpAllocator;
use crate::registry::ResourceInfo;
use crate::store::Store;

/// State shared by all requests.
pub struct ServerState {
    pub store: Store,
    pub ips: IpAllocator,
    pub token: String,
    pub kubernetes_version: String,
    pub nodes: NodeConnections,
    /// The address clients reach the server on (for `serverAddressByClientCIDRs`).
    pub address: std::net::SocketAddr,
    /// Cancelled at shutdown so that open watches end.
    pub shutdown: CancellationToken,
    /// When watches get bookmarks and how long they wait for the store (upstream's timing;
    /// tests may change it).
    pub watch_timing: crate::watch::WatchTiming,
    /// The slots of `--max-requests-inflight` and `--max-mutating-requests-inflight`.
    pub in_flight: crate::limits::in_flight::InFlight,
}

pub type Shared = Arc<ServerState>;

/// The resource, namespace, name and subresource a request path names.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: &'static ResourceInfo,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The legacy `/watch/` path prefix was used.
    pub watch_path: bool,
}

impl Target {
    /// The namespace as the store keys it ("" for cluster-scoped objects).
    pub fn store_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    pub fn name(&self) -> ApiResult<&str> {
        self.name
            .as_deref()
            .ok_or_else(ApiError::method_not_allowed)
    }
}

/// The query parameters of a request.
#[derive(Debug, Clone, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// A query of these `(name, value)` pairs, for unit tests.
    #[cfg(test)]
    pub fn of(pairs: &[(&str, &str)]) -> Query {
        Query(
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// `dryRun=All` (the only dry-run value).
    pub fn dry_run(&self) -> bool {
        self.0.iter().any(|(k, v)| k == "dryRun" && v == "All")
    }
}

/// A string field of an object, by JSON pointer.
pub fn str_at<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}
