//! Cluster DNS for the embedded cluster, answering like CoreDNS's kubernetes plugin.
//!
//! It is a plain API client: kube-runtime reflectors keep Services and EndpointSlices in
//! memory (exactly what CoreDNS watches), and a hickory server answers from them. So it
//! behaves the same against the embedded API server and a real kube-apiserver, and its
//! answers follow every change as soon as the watch event arrives.
//!
//! Names outside the cluster domain get NXDOMAIN: the cluster has no upstream resolver
//! (CoreDNS would forward them, and the upstream answers NXDOMAIN for names such as the
//! bare `web-0.nginx.` a resolver tries at the end of its search list).

mod cluster_view;
mod handler;
mod names;
mod records;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use hickory_server::Server;
use hickory_server::proto::rr::Name;
use k8s_labs_informers::ServiceInformers;
use kube::Client;

use crate::handler::ClusterDnsHandler;
use crate::records::Zone;

/// How long a TCP client may stay idle before the connection is closed (hickory's guard
/// against clients holding connections open).
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-connection buffer of outgoing TCP responses.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Settings of the DNS zone, as in a CoreDNS Corefile (`kubernetes cluster.local { ttl 5 }`).
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// The cluster domain, e.g. "cluster.local" (with or without the final dot).
    pub cluster_domain: String,
    /// TTL of every answer in seconds; 5 like CoreDNS, so clients see changes quickly.
    pub ttl: u32,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            cluster_domain: "cluster.local".into(),
            ttl: 5,
        }
    }
}

/// A running cluster DNS server: the hickory server and the informers feeding it.
pub struct DnsServer {
    server: Server<ClusterDnsHandler>,
    informers: ServiceInformers,
}

impl DnsServer {
    /// Serves on sockets bound by the caller (inside the cluster's node network namespace, on
    /// the kube-dns Service IP, port 53); never binds anything itself, so the caller decides
    /// in which network namespace DNS is reachable.
    ///
    /// Returns once the informers hold the initial list of Services and EndpointSlices, so
    /// the first query is already answered from the cluster's state.
    pub async fn start(
        client: Client,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
        config: DnsConfig,
    ) -> anyhow::Result<DnsServer> {
        let domain = config.cluster_domain.trim_end_matches('.');
        let origin = Name::from_ascii(format!("{domain}."))
            .with_context(|| format!("invalid cluster domain {:?}", config.cluster_domain))?;
        let serial = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| u32::try_from(elapsed.as_secs()).unwrap_or(u32::MAX))
            .unwrap_or(1);

        let informers = ServiceInformers::start(client, "cluster DNS").await?;

        udp.set_nonblocking(true)
            .context("setting the DNS UDP socket non-blocking")?;
        tcp.set_nonblocking(true)
            .context("setting the DNS TCP listener non-blocking")?;
        let udp = tokio::net::UdpSocket::from_std(udp).context("registering the DNS UDP socket")?;
        let tcp =
            tokio::net::TcpListener::from_std(tcp).context("registering the DNS TCP listener")?;

        let mut server = Server::new(ClusterDnsHandler {
            zone: Zone {
                origin,
                ttl: config.ttl,
                serial,
            },
            services: informers.services.clone(),
            endpoint_slices: informers.endpoint_slices.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        Ok(DnsServer { server, informers })
    }

    /// Stops answering and stops the watches.
    pub async fn shutdown(mut self) {
        if let Err(error) = self.server.shutdown_gracefully().await {
            tracing::warn!(%error, "cluster DNS server stopped with an error");
        }
        drop(self.informers);
    }
}
