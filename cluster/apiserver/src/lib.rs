//! The embedded Kubernetes API server: an in-memory versioned store behind the Kubernetes
//! REST API (discovery, CRUD, watch, patch, server-side apply, subresources), so that
//! kube-rs, kubectl and the cluster's own controllers, node agent and DNS talk to it exactly
//! as they would to kube-apiserver.
//!
//! The crate's surface is [`ApiServer`] and its [`ApiServerConfig`] (with [`ServingLimits`]),
//! the figures tests check the server against ([`HISTORY_LEN`], [`MAX_OBJECT_BYTES`]), the
//! protobuf decoder a kubectl test reads kubectl's request bodies with ([`decode_object`],
//! failing with an [`ApiError`]), and [`testing`]: a server and a client for it in one call,
//! for the tests of every cluster crate. The modules behind them are private.

mod bootstrap;
mod context;
mod convert;
mod default_ingress_class;
mod defaults;
mod delete;
mod discovery;
mod errors;
mod eviction;
mod field_labels;
mod field_validation;
mod handlers;
mod ipalloc;
mod limits;
mod metrics;
mod openapi;
mod openapi_schemas;
mod openapi_v2;
mod paging;
mod patch;
mod pod_security;
mod protobuf;
mod proxy;
mod qos;
mod registry;
mod reviews;
mod routes;
mod scale;
mod selectors;
mod services;
mod serving;
mod store;
mod streaming;
mod table;
pub mod testing;
mod tls;
mod update;
mod validation;
mod watch;

pub use errors::{ApiError, ApiResult};
pub use limits::ServingLimits;
pub use protobuf::decode_object;
pub use store::{HISTORY_LEN, MAX_OBJECT_BYTES};

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::context::ServerState;
use crate::ipalloc::IpAllocator;
use crate::limits::in_flight::InFlight;
use crate::store::Store;

/// How to run the API server.
#[derive(Debug, Clone)]
pub struct ApiServerConfig {
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The bearer token every request must carry (health endpoints excepted).
    pub token: String,
    /// The Service cluster IP range, e.g. "10.96.0.0/12"; its first IP is the `kubernetes`
    /// Service's.
    pub service_cidr: String,
    /// The version reported by `/version`, e.g. "v1.33.0".
    pub kubernetes_version: String,
    /// The node agents reachable for exec, attach and logs.
    pub nodes: k8s_labs_node_api::NodeConnections,
    /// Requests in flight, request and header timeouts; the default is kube-apiserver's.
    pub limits: ServingLimits,
    /// How many changes the store keeps for watches and lists that start at a past
    /// resourceVersion ([`HISTORY_LEN`] unless configured); one older than that is answered
    /// 410 Gone, as etcd answers a revision it compacted.
    pub history_len: usize,
}

/// A running API server.
pub struct ApiServer {
    address: SocketAddr,
    ca_pem: String,
    state: Arc<ServerState>,
    server: JoinHandle<()>,
}

impl ApiServer {
    /// Binds, creates the built-in objects (namespaces, the `kubernetes` Service) and starts
    /// serving; the server accepts connections when this returns.
    pub async fn start(config: ApiServerConfig) -> anyhow::Result<ApiServer> {
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding the API server to {}", config.bind))?;
        let address = listener.local_addr()?;
        let state = Arc::new(ServerState {
            store: Store::with_history_limits(config.history_len, store::HISTORY_BYTES),
            ips: IpAllocator::new(&config.service_cidr)?,
            token: config.token,
            kubernetes_version: config.kubernetes_version,
            nodes: config.nodes,
            address,
            shutdown: CancellationToken::new(),
            watch_timing: watch::WatchTiming::default(),
            in_flight: InFlight::new(&config.limits),
        });
        bootstrap::create_builtin_objects(&state)?;
        let certificates =
            tls::generate(&[address.ip().to_string(), state.ips.first().to_string()])?;
        // The timeout wraps everything (authentication included), as upstream's filter does.
        let app = routes::router(state.clone()).layer(axum::middleware::from_fn_with_state(
            config.limits.request_timeout,
            limits::timeout::request_deadline,
        ));
        let server = serving::spawn(
            listener,
            certificates.acceptor,
            app,
            config.limits.read_header_timeout,
            state.shutdown.clone(),
        );
        tracing::info!(%address, "API server listening");
        Ok(ApiServer {
            address,
            ca_pem: certificates.ca_pem,
            state,
            server,
        })
    }

    /// The URL clients use, e.g. "https://127.0.0.1:41234": the port speaks TLS only, with a
    /// certificate from [`ApiServer::ca_certificate_pem`].
    pub fn https_url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// The PEM of the CA that signed the serving certificate (`certificate-authority-data`
    /// in a kubeconfig is its base64).
    pub fn ca_certificate_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The events and the bytes of objects the store's history keeps (for figures such as
    /// `cargo xtask bench apiserver-memory`: what deleted objects still hold).
    pub fn history_usage(&self) -> (usize, usize) {
        self.state.store.history_usage()
    }

    /// Stops accepting requests, ends open watches and waits (briefly) for the server to stop.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        let mut server = self.server;
        if tokio::time::timeout(std::time::Duration::from_secs(5), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
    }
}
