//! What wakes the pod workers waiting for a claim to bind: a watch on PersistentVolumeClaims
//! and PersistentVolumes (as the kubelet's informers), counted into a `watch` channel. A
//! worker whose volumes could not be resolved retries as soon as any claim or volume changes,
//! instead of only after its back-off.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Bumps `changes` on every claim or volume event until `shutdown`.
pub async fn follow_volume_changes(
    client: Client,
    changes: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    let claims = watcher(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .map(|event| event.map(|_| ()));
    let volumes = watcher(
        Api::<PersistentVolume>::all(client),
        watcher::Config::default(),
    )
    .default_backoff()
    .map(|event| event.map(|_| ()));
    let mut events = std::pin::pin!(futures::stream::select(claims, volumes));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.next() => match event {
                Some(Ok(())) => changes.send_modify(|count| *count = count.wrapping_add(1)),
                Some(Err(error)) => tracing::debug!("watching volumes and claims: {error}"),
                None => return,
            },
        }
    }
}
