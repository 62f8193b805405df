//! A client for the controllers that can hold one of their requests: how a test puts a
//! reconcile on hold at an exact point (between reading its object and listing its pods), so
//! that a race plays out the same way every run.

use std::sync::{Arc, Mutex};

use http::{Method, Request};
use kube::Client;
use kube::client::Body;
use tokio::sync::oneshot;

/// What an armed gate waits for, and how it reports and ends the hold.
struct Armed {
    path: String,
    held: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

/// Wraps a client; after [`ListGate::arm`], the first list (a GET of `path` that is not a
/// watch) waits until the test releases it.
#[derive(Clone, Default)]
pub struct ListGate(Arc<Mutex<Option<Armed>>>);

/// The test's side of one hold.
pub struct Hold {
    /// Resolves once the request is being held.
    pub held: oneshot::Receiver<()>,
    /// Send (or drop) to let the request go on to the API server.
    pub release: oneshot::Sender<()>,
}

impl ListGate {
    /// A client that sends every request through `inner`, holding the one armed for.
    pub fn client(&self, inner: Client) -> Client {
        let gate = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let gate = gate.clone();
            let inner = inner.clone();
            async move {
                if let Some(armed) = gate.take_if_matches(&request) {
                    let _ = armed.held.send(());
                    let _ = armed.release.await;
                }
                inner.send(request).await
            }
        });
        Client::new(service, "default")
    }

    /// Holds the next list of `path` (e.g. `/api/v1/namespaces/ns/pods`).
    pub fn arm(&self, path: &str) -> Hold {
        let (held_tx, held_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        *self.0.lock().unwrap() = Some(Armed {
            path: path.to_string(),
            held: held_tx,
            release: release_rx,
        });
        Hold {
            held: held_rx,
            release: release_tx,
        }
    }

    fn take_if_matches(&self, request: &Request<Body>) -> Option<Armed> {
        let mut armed = self.0.lock().unwrap();
        let is_list = request.method() == Method::GET
            && !request.uri().query().unwrap_or_default().contains("watch=");
        let matches = armed
            .as_ref()
            .is_some_and(|armed| is_list && request.uri().path() == armed.path);
        if matches { armed.take() } else { None }
    }
}
