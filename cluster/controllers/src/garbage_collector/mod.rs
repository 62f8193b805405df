//! The garbage collector, as kube-controller-manager's (`pkg/controller/garbagecollector`).
//!
//! It keeps a graph of every object's uid, owner references, deletion state and finalizers,
//! fed by watches on every resource discovery lists (with `list`, `watch` and `delete`), and
//! turns each change into work ([`graph`]); the work reads the objects and their owners live
//! from the API server before acting ([`attempt`]), because the watches of different
//! resources are not ordered with respect to each other:
//! - an object whose owners are all gone is deleted (Background, or as its own deletion
//!   finalizers say); references to gone owners are removed from objects that keep a live one;
//! - an owner deleted with `propagationPolicy: Orphan` carries the `orphan` finalizer: its
//!   dependents lose their reference to it, then the finalizer comes off and the API server
//!   removes the owner;
//! - an owner deleted with `Foreground` carries `foregroundDeletion`: its dependents are
//!   deleted, and once none with `blockOwnerDeletion: true` is left the finalizer comes off.
//!
//! Work that fails (a conflict, the API server busy) is tried again after a growing pause,
//! as upstream's rate-limited work queues do.

mod attempt;
mod graph;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use futures::stream::SelectAll;
use kube::api::{ApiResource, DynamicObject};
use kube::discovery::{Discovery, Scope, verbs};
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::task::JoinSet;

use attempt::{Collector, ResourceMap};
use graph::{Graph, Node, Task};

/// The first pause before failed work is tried again; it doubles up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// Runs until `shutdown` resolves. Discovery failures are retried with a pause (the
/// API server may still be starting its discovery documents).
pub(crate) async fn run(
    client: Client,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    tokio::select! {
        () = shutdown => {}
        () = collect(client) => {}
    }
}

async fn collect(client: Client) {
    let resources = loop {
        match watchable_resources(&client).await {
            Ok(resources) => break resources,
            Err(error) => {
                tracing::debug!(%error, "garbage collector discovery failed, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let by_kind: ResourceMap = resources
        .iter()
        .map(|(resource, namespaced)| {
            (
                graph::resource_key(resource),
                (resource.clone(), *namespaced),
            )
        })
        .collect();

    // Work waits until every watch has listed once (upstream starts its workers after
    // `WaitForNamedCacheSync`): a graph still missing dependents would let a foreground
    // deletion finish early.
    let mut unsynced: HashSet<graph::ResourceKey> = by_kind.keys().cloned().collect();
    let mut pending = Vec::new();
    let mut events = SelectAll::new();
    for (resource, namespaced) in resources {
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let stream = watcher(api, watcher::Config::default())
            .map(move |event| (resource.clone(), namespaced, event))
            .boxed();
        events.push(stream);
    }

    let collector = Collector {
        client: &client,
        by_kind: &by_kind,
    };
    let mut work = Work::default();
    let mut graph = Graph::default();
    loop {
        let tasks = tokio::select! {
            Some((resource, namespaced, event)) = events.next() => {
                if matches!(event, Ok(watcher::Event::InitDone)) {
                    unsynced.remove(&graph::resource_key(&resource));
                }
                observe(&mut graph, &resource, namespaced, event)
            }
            Some(Ok(task)) = work.retries.join_next(), if !work.retries.is_empty() => vec![task],
            else => break,
        };
        pending.extend(tasks);
        if unsynced.is_empty() {
            work.process(&collector, &graph, std::mem::take(&mut pending))
                .await;
        }
    }
}

/// Feeds one watch event into the graph; returns the work it calls for.
fn observe(
    graph: &mut Graph,
    resource: &ApiResource,
    namespaced: bool,
    event: Result<watcher::Event<DynamicObject>, watcher::Error>,
) -> Vec<Task> {
    match event {
        Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
            Node::of(resource, namespaced, &object).map_or_else(Vec::new, |node| graph.apply(node))
        }
        Ok(watcher::Event::Delete(object)) => object
            .metadata
            .uid
            .as_deref()
            .map_or_else(Vec::new, |uid| graph.remove(uid)),
        Ok(watcher::Event::Init) => {
            graph.relist_started(resource);
            Vec::new()
        }
        Ok(watcher::Event::InitDone) => graph.relist_done(resource),
        Err(error) => {
            tracing::trace!(%error, "garbage collector watch error (retrying)");
            Vec::new()
        }
    }
}

/// The work in progress: failed tasks waiting to be tried again, and how often each failed.
#[derive(Default)]
struct Work {
    retries: JoinSet<Task>,
    failures: HashMap<Task, u32>,
}

impl Work {
    /// Runs `tasks` and the work they lead to, each task once per round; failures are
    /// scheduled again after their back-off.
    async fn process(&mut self, collector: &Collector<'_>, graph: &Graph, tasks: Vec<Task>) {
        let mut queue: VecDeque<Task> = tasks.into();
        let mut done = HashSet::new();
        while let Some(task) = queue.pop_front() {
            if !done.insert(task.clone()) {
                continue;
            }
            match collector.run(graph, &task).await {
                Ok(next) => {
                    self.failures.remove(&task);
                    queue.extend(next);
                }
                Err(error) => {
                    tracing::debug!(
                        error = format!("{error:#}"),
                        ?task,
                        "garbage collector work failed; retrying"
                    );
                    self.retry_later(task);
                }
            }
        }
    }

    fn retry_later(&mut self, task: Task) {
        let failures = self.failures.entry(task.clone()).or_default();
        let delay = FIRST_RETRY_DELAY
            .saturating_mul(2_u32.saturating_pow(*failures))
            .min(MAX_RETRY_DELAY);
        *failures = failures.saturating_add(1);
        self.retries.spawn(async move {
            tokio::time::sleep(delay).await;
            task
        });
    }
}

/// Every resource the collector can follow: list, watch and delete.
async fn watchable_resources(client: &Client) -> anyhow::Result<Vec<(ApiResource, bool)>> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .context("discovering the API resources")?;
    Ok(discovery
        .groups()
        .flat_map(|group| group.recommended_resources())
        .filter(|(_, capabilities)| {
            capabilities.supports_operation(verbs::LIST)
                && capabilities.supports_operation(verbs::WATCH)
                && capabilities.supports_operation(verbs::DELETE)
        })
        .map(|(resource, capabilities)| (resource, capabilities.scope == Scope::Namespaced))
        .collect())
}
