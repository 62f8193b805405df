//! Service proxy of the embedded cluster: what kube-proxy does, in the way of its historic
//! userspace mode.
//!
//! Pods reach a Service's cluster IP through their default route, the gateway on the bridge
//! `cni0` in the node network namespace. The proxy makes each proxied cluster IP a local /32
//! address of that bridge and listens on `clusterIP:port` inside the node namespace (one TCP
//! listener per Service port). Each accepted connection goes to the next ready endpoint
//! (round robin) at the target port the EndpointSlice carries; the connection to the pod is
//! made from a socket created inside the node namespace, so the host namespace never sends
//! cluster traffic.
//!
//! Like kube-proxy: no ready endpoint → the connection is rejected at once (reset); the
//! endpoint refuses (e.g. a `targetPort` nothing listens on) → the next endpoint is tried and,
//! when all refuse, the client connection is reset, so a client such as curl fails at once
//! with "connection reset" / "empty reply" instead of hanging.
//!
//! What is proxied: see [`routes::route_table`]. `default/kubernetes` is never proxied (its
//! endpoints are the API server on the host's loopback). Callers pass what else to leave
//! alone, e.g. `kube-system/kube-dns`, whose IP the DNS server itself listens on.
//!
//! Inputs are kube-runtime reflectors on Services and EndpointSlices (the same objects
//! kube-proxy watches), so it behaves the same against any API server; every watch event
//! recomputes the route table and updates listeners and addresses to match.

mod blocking;
mod forward;
mod listeners;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use k8s_labs_informers::ServiceInformers;
use k8s_labs_net::NodeNetwork;
use kube::Client;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::listeners::Listeners;
pub use crate::routes::{RouteTable, ServiceRoute};

/// How soon a sync that could not serve everything is tried again without a new event.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// A running service proxy.
pub struct ServiceProxy {
    informers: ServiceInformers,
    sync_loop: JoinHandle<()>,
    stop: oneshot::Sender<()>,
    listeners: Arc<tokio::sync::Mutex<Listeners>>,
    routes: watch::Receiver<RouteTable>,
}

impl ServiceProxy {
    /// Starts watching Services and EndpointSlices and returns once the Services that exist
    /// are served (their addresses on the bridge, their listeners bound).
    ///
    /// `skip` lists (namespace, name) of Services not to proxy, e.g. the kube-dns Service
    /// whose address the DNS server already serves.
    pub async fn start(
        client: Client,
        network: Arc<NodeNetwork>,
        skip: Vec<(String, String)>,
    ) -> anyhow::Result<ServiceProxy> {
        let informers = ServiceInformers::start(client, "the service proxy").await?;
        let changed = informers.changed();

        let (routes_sender, routes) = watch::channel(RouteTable::new());
        let listeners = Arc::new(tokio::sync::Mutex::new(Listeners::new(
            network,
            routes_sender,
        )));
        let services = informers.services.clone();
        let slices = informers.endpoint_slices.clone();
        let table = || routes::route_table(&services.state(), &slices.state(), &skip);
        let mut complete = listeners.lock().await.sync(table()).await;

        let (stop, mut stopped) = oneshot::channel();
        let loop_listeners = listeners.clone();
        let sync_loop = tokio::spawn(async move {
            loop {
                // After a failed sync (a port in use, an `ip` error) retry on a timer too,
                // not only at the next watch event.
                let retry = async {
                    if complete {
                        std::future::pending::<()>().await;
                    }
                    tokio::time::sleep(RETRY_AFTER_FAILURE).await;
                };
                tokio::select! {
                    _ = &mut stopped => break,
                    () = changed.notified() => {}
                    () = retry => {}
                }
                let table = routes::route_table(&services.state(), &slices.state(), &skip);
                complete = loop_listeners.lock().await.sync(table).await;
            }
        });
        Ok(ServiceProxy {
            informers,
            sync_loop,
            stop,
            listeners,
            routes,
        })
    }

    /// What the proxy serves right now: every listening `clusterIP:port` and its ready
    /// endpoints. Changes after the listeners and addresses changed, so a caller waiting for
    /// a route (`wait_for`) can connect as soon as it appears.
    pub fn routes(&self) -> watch::Receiver<RouteTable> {
        self.routes.clone()
    }

    /// Stops watching, closes every listener (and the connections through it) and removes
    /// the addresses the proxy added.
    pub async fn shutdown(self) {
        // The loop finishes the sync it may be in, so no address is added behind our back.
        let _ = self.stop.send(());
        if let Err(error) = self.sync_loop.await {
            tracing::warn!(%error, "service proxy sync loop ended abnormally");
        }
        drop(self.informers);
        if !self.listeners.lock().await.sync(RouteTable::new()).await {
            tracing::warn!("the service proxy could not remove everything it added");
        }
    }
}
