//! A client for the controllers that can hold their watches of one kind: how a test makes a
//! controller's cache of its own objects fall behind the API server at an exact point, so
//! that a race plays out the same way every run.

use std::sync::{Arc, Mutex};

use http::{Method, Request};
use kube::Client;
use kube::client::Body;
use tokio::sync::watch;

/// What an armed gate holds, and how it reports and ends the hold.
struct Armed {
    watch_path: String,
    get_path: String,
    gets: watch::Sender<usize>,
    released: watch::Receiver<bool>,
}

/// Wraps a client; after [`WatchGate::arm`], every watch of one collection waits until the
/// test releases them (lists and other requests go on).
#[derive(Clone, Default)]
pub struct WatchGate(Arc<Mutex<Option<Armed>>>);

/// The test's side of one hold.
pub struct Hold {
    /// How many GETs of the object named when arming were sent: a controller's pass reads its
    /// object this way (once its cache holds it, from the list that precedes the held watch).
    pub gets: watch::Receiver<usize>,
    /// Send `true` (or drop) to let the held watches go on to the API server.
    pub release: watch::Sender<bool>,
}

impl Hold {
    /// Waits until at least `count` GETs of the object were sent; returns how many.
    pub async fn wait_for_gets(&mut self, count: usize) -> usize {
        let gets =
            tokio::time::timeout(super::HANG_GUARD, self.gets.wait_for(|gets| *gets >= count))
                .await
                .unwrap_or_else(|_| panic!("the object was not read {count} times"))
                .expect("the gate is gone");
        *gets
    }
}

impl WatchGate {
    /// A client that sends every request through `inner`, holding the watches armed for.
    pub fn client(&self, inner: Client) -> Client {
        let gate = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let gate = gate.clone();
            let inner = inner.clone();
            async move {
                if let Some(mut released) = gate.check(&request) {
                    let _ = released.wait_for(|released| *released).await;
                }
                inner.send(request).await
            }
        });
        Client::new(service, "default")
    }

    /// Holds every watch of `watch_path` (e.g. `/apis/apps/v1/replicasets`, what a
    /// controller of every ReplicaSet watches) until released, and counts the GETs of
    /// `get_path` (e.g. `/apis/apps/v1/namespaces/ns/replicasets/frontend`).
    pub fn arm(&self, watch_path: &str, get_path: &str) -> Hold {
        let (gets_tx, gets_rx) = watch::channel(0);
        let (release_tx, release_rx) = watch::channel(false);
        *self.0.lock().unwrap() = Some(Armed {
            watch_path: watch_path.to_string(),
            get_path: get_path.to_string(),
            gets: gets_tx,
            released: release_rx,
        });
        Hold {
            gets: gets_rx,
            release: release_tx,
        }
    }

    /// The release to wait for if `request` is a held watch; counts a GET of the object.
    fn check(&self, request: &Request<Body>) -> Option<watch::Receiver<bool>> {
        let mut armed = self.0.lock().unwrap();
        let armed = armed.as_mut()?;
        if request.method() != Method::GET {
            return None;
        }
        let is_watch = request.uri().query().unwrap_or_default().contains("watch=");
        let path = request.uri().path();
        if is_watch && path == armed.watch_path {
            return Some(armed.released.clone());
        }
        if !is_watch && path == armed.get_path {
            armed.gets.send_modify(|gets| *gets += 1);
        }
        None
    }
}
