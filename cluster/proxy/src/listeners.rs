//! Keeps the node's addresses and the proxy's listeners equal to the route table.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use k8s_labs_net::NodeNetwork;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::blocking::blocking;
use crate::forward;
use crate::routes::RouteTable;

/// The listeners and addresses the proxy owns, and where it publishes what it serves.
pub(crate) struct Listeners {
    network: Arc<NodeNetwork>,
    /// One accept loop per `clusterIP:port`; aborting it closes the listener and every
    /// connection that went through it.
    serving: BTreeMap<SocketAddrV4, JoinHandle<()>>,
    /// Cluster IPs this proxy put on the bridge (and so removes again).
    addresses: BTreeSet<Ipv4Addr>,
    routes: watch::Sender<RouteTable>,
}

impl Listeners {
    pub(crate) fn new(network: Arc<NodeNetwork>, routes: watch::Sender<RouteTable>) -> Self {
        Listeners {
            network,
            serving: BTreeMap::new(),
            addresses: BTreeSet::new(),
            routes,
        }
    }

    /// Closes the listeners and removes the addresses `table` no longer has, adds what it
    /// newly has, then publishes the routes actually served. A failure (e.g. a port in use)
    /// is logged; returns whether everything in `table` is served, so the caller retries.
    pub(crate) async fn sync(&mut self, mut table: RouteTable) -> bool {
        let gone: Vec<SocketAddrV4> = self
            .serving
            .keys()
            .filter(|addr| !table.contains_key(addr))
            .copied()
            .collect();
        for addr in gone {
            if let Some(task) = self.serving.remove(&addr) {
                task.abort();
                let _ = task.await;
                tracing::info!(%addr, "service proxy stopped listening");
            }
        }
        let wanted_ips: BTreeSet<Ipv4Addr> = table.keys().map(|addr| *addr.ip()).collect();
        let unused: Vec<Ipv4Addr> = self.addresses.difference(&wanted_ips).copied().collect();
        for ip in unused {
            let network = self.network.clone();
            match blocking(move || network.remove_local_address(ip)).await {
                Ok(()) => {
                    self.addresses.remove(&ip);
                }
                Err(error) => tracing::warn!(%ip, "removing a cluster IP: {error:#}"),
            }
        }
        for ip in wanted_ips.difference(&self.addresses.clone()) {
            let (network, ip) = (self.network.clone(), *ip);
            match blocking(move || network.add_local_address(ip)).await {
                Ok(()) => {
                    self.addresses.insert(ip);
                }
                Err(error) => tracing::warn!(%ip, "adding a cluster IP: {error:#}"),
            }
        }
        let new: Vec<SocketAddrV4> = table
            .keys()
            .filter(|addr| !self.serving.contains_key(addr) && self.addresses.contains(addr.ip()))
            .copied()
            .collect();
        for addr in new {
            match self.listen(addr).await {
                Ok(task) => {
                    tracing::info!(%addr, "service proxy listening");
                    self.serving.insert(addr, task);
                }
                Err(error) => tracing::warn!(%addr, "listening on a Service port: {error:#}"),
            }
        }
        let wanted = table.len();
        table.retain(|addr, _| self.serving.contains_key(addr));
        let complete = table.len() == wanted && self.addresses.is_subset(&wanted_ips);
        self.routes.send_replace(table);
        complete
    }

    async fn listen(&self, addr: SocketAddrV4) -> anyhow::Result<JoinHandle<()>> {
        let network = self.network.clone();
        let listener = blocking(move || {
            let listener = network.bind_tcp(SocketAddr::V4(addr))?;
            listener.set_nonblocking(true)?;
            Ok(listener)
        })
        .await?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        Ok(tokio::spawn(forward::serve(
            listener,
            addr,
            self.routes.subscribe(),
            self.network.clone(),
        )))
    }
}
