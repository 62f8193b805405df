//! The node agent's main loop: registers the Node, watches pods through the API (a kube-runtime
//! watcher, as the kubelet's informer), hands unscheduled pods to the scheduler (see
//! [`crate::scheduler`]: the scheduler's job in a one-node cluster), and runs one pod worker
//! per pod bound here.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_labs_net::NodeNetwork;
use k8s_labs_node_api::NodeConnection;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::cgroups::NodeCgroups;
use crate::connection::RuncNodeConnection;
use crate::containers::ContainerRegistry;
use crate::context::NodeContext;
use crate::events::EventRecorder;
use crate::eviction::WatchedPods;
use crate::image_store::ImageStore;
use crate::images::{ImageManager, ImageSources};
use crate::node_object::{NodeFacts, register_node};
use crate::pod_worker::{PodUpdate, PodWorker};
use crate::registry::PullStore;
use crate::runtime::Runc;
use crate::sandbox::DnsSettings;
use crate::scheduler::Scheduler;
use crate::user_namespace::NodeUserNamespaces;
use crate::watchdog::Watchdog;

/// How the node agent is set up.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The Node's name.
    pub node_name: String,
    /// The instance directory (`/run/k8s-labs/<instance>`): runc state, pod sandboxes, logs.
    pub state_dir: PathBuf,
    /// The node network, which the pods' namespaces are attached to.
    pub network: Arc<NodeNetwork>,
    /// The cluster DNS Service IP every pod's resolv.conf names.
    pub dns_ip: Ipv4Addr,
    /// The cluster domain (`cluster.local`) of the pods' DNS search list.
    pub cluster_domain: String,
    /// What the Node reports as `kubeletVersion` (`v1.33.0`).
    pub kubelet_version: String,
    /// The node's user namespace (which owns `network`'s namespace) and its pods' id ranges;
    /// `None` where the machine cannot give pods user namespaces (see
    /// [`NodeUserNamespaces::create`]).
    pub user_namespaces: Option<NodeUserNamespaces>,
    /// Where the catalog's image root filesystems are built and kept across starts
    /// ([`crate::image_store::DEFAULT_IMAGE_DIR`] unless configured).
    pub image_dir: PathBuf,
    /// Where pulled images are kept across starts (see [`crate::registry::PullStore`];
    /// [`crate::image_store::DEFAULT_PULLED_IMAGE_DIR`] unless configured).
    pub pulled_image_dir: PathBuf,
    /// Where images are pulled from ([`ImageSources::discover`] reads the configured ones).
    pub image_sources: ImageSources,
    /// How often the node samples its containers' CPU and memory for `kubectl top`
    /// ([`crate::metrics::DEFAULT_METRICS_PERIOD`] unless configured).
    pub metrics_period: std::time::Duration,
    /// How often the node measures its pods' storage and evicts those over their limits
    /// ([`crate::eviction::DEFAULT_EVICTION_PERIOD`] unless configured).
    pub eviction_period: std::time::Duration,
}

/// The node's root directory under its state directory: where `hostPath` volumes live.
pub const NODE_ROOT: &str = "node-root";

/// Starts node agents.
pub struct NodeAgent;

impl NodeAgent {
    /// Registers the Node and starts watching pods; returns once the Node is registered.
    pub async fn start(client: Client, config: NodeConfig) -> Result<NodeHandle> {
        let runc_root = config.state_dir.join("runc");
        let pods_dir = config.state_dir.join("pods");
        let node_root = config.state_dir.join(NODE_ROOT);
        let exec_dir = config.state_dir.join("exec");
        for dir in [&runc_root, &pods_dir, &node_root, &exec_dir] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let instance = config
            .state_dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .context("the node's state directory has no name")?;
        let cgroups = NodeCgroups::create(&config.state_dir, &instance)?;
        let user_namespaces = config.user_namespaces.clone();
        let watchdog = Watchdog::start(&runc_root)?;
        let images = ImageManager::new(
            Catalog::embedded()?,
            ImageStore::new(config.image_dir.clone()),
            PullStore::open(&config.pulled_image_dir)?,
            config.image_sources.clone(),
        );
        let facts = NodeFacts {
            node_name: config.node_name.clone(),
            internal_ip: config.network.gateway(),
            kubelet_version: config.kubelet_version.clone(),
            pod_cidr: config.network.pod_cidr().to_string(),
        };
        register_node(&client, &facts).await?;
        let (events, events_task) = EventRecorder::start(client.clone(), config.node_name.clone());
        let context = Arc::new(NodeContext {
            client,
            node_name: config.node_name.clone(),
            network: config.network.clone(),
            runc: Runc::new(runc_root),
            exec_dir,
            cgroups,
            user_namespaces,
            images,
            registry: ContainerRegistry::default(),
            pods_dir,
            node_root,
            dns: DnsSettings {
                nameserver: config.dns_ip,
                cluster_domain: config.cluster_domain.clone(),
            },
            events,
            eviction: WatchedPods::default(),
            eviction_period: config.eviction_period,
            volume_changes: watch::channel(0).0,
            metrics: crate::metrics::MetricsStore::new(config.metrics_period),
        });
        let shutdown = CancellationToken::new();
        let (pods_on_node, _) = watch::channel(BTreeSet::new());
        let main = tokio::spawn(run(context.clone(), shutdown.clone(), pods_on_node.clone()));
        Ok(NodeHandle {
            inner: Arc::new(HandleInner {
                context,
                watchdog: Mutex::new(Some(watchdog)),
                shutdown,
                pods_on_node,
                tasks: Mutex::new(Some((main, events_task))),
            }),
        })
    }
}

/// A running node agent; clones share it.
#[derive(Clone)]
pub struct NodeHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    context: Arc<NodeContext>,
    /// Kills the containers if this process dies without stopping the node.
    watchdog: Mutex<Option<Watchdog>>,
    shutdown: CancellationToken,
    pods_on_node: watch::Sender<BTreeSet<String>>,
    tasks: Mutex<Option<(JoinHandle<()>, JoinHandle<()>)>>,
}

impl NodeHandle {
    /// What the API server calls for exec, attach, logs, port forwarding and resource
    /// metrics of this node's pods.
    pub fn connection(&self) -> Arc<dyn NodeConnection> {
        Arc::new(RuncNodeConnection::new(self.inner.context.clone()))
    }

    /// The uids of the pods this node has something of (a worker that has not finished: the
    /// sandbox, containers or teardown still there). A pod can be gone from the API before its
    /// teardown ends (a terminal pod is deleted at once); a uid leaves this set only once
    /// everything of the pod on the node is removed.
    pub fn pods_on_node(&self) -> watch::Receiver<BTreeSet<String>> {
        self.inner.pods_on_node.subscribe()
    }

    /// The node's name.
    pub fn node_name(&self) -> &str {
        &self.inner.context.node_name
    }

    /// Stops watching, kills every container, removes every sandbox (mounts, pod network
    /// namespaces, directories). Pods stay in the API, as when a kubelet stops.
    pub async fn shutdown(self) -> Result<()> {
        self.inner.shutdown.cancel();
        let tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some((main, events_task)) = tasks {
            let _ = main.await;
            events_task.abort();
        }
        // Whatever a worker could not remove: containers runc still knows, mounts, pod dirs.
        let context = self.inner.context.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            for id in context.runc.list_blocking().unwrap_or_default() {
                context.runc.force_delete_blocking(&id);
            }
            crate::mounts::unmount_under(&context.pods_dir)?;
            context.cgroups.remove()
        })
        .await
        .context("cleaning up after the pod workers")??;
        let watchdog = self
            .inner
            .watchdog
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(watchdog) = watchdog {
            tokio::task::spawn_blocking(move || watchdog.stop())
                .await
                .context("stopping the container watchdog")?;
        }
        Ok(())
    }
}

struct Worker {
    updates: watch::Sender<PodUpdate>,
    task: JoinHandle<()>,
}

async fn run(
    context: Arc<NodeContext>,
    shutdown: CancellationToken,
    pods_on_node: watch::Sender<BTreeSet<String>>,
) {
    let api: Api<Pod> = Api::all(context.client.clone());
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut workers: HashMap<String, Worker> = HashMap::new();
    let mut finished: HashSet<String> = HashSet::new();
    let scheduler = Scheduler::start(
        context.client.clone(),
        context.node_name.clone(),
        context.events.clone(),
        shutdown.clone(),
    );
    let (finished_tx, mut finished_rx) = mpsc::unbounded_channel::<String>();
    let mut listed: Option<HashSet<String>> = None;
    let volume_watch = tokio::spawn(crate::volume_watch::follow_volume_changes(
        context.client.clone(),
        context.volume_changes.clone(),
        shutdown.clone(),
    ));
    let eviction = tokio::spawn(crate::eviction::run(context.clone(), shutdown.clone()));
    let metrics = tokio::spawn(crate::metrics_sampler::run(
        context.clone(),
        shutdown.clone(),
    ));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(uid) = finished_rx.recv() => {
                workers.remove(&uid);
                finished.insert(uid);
                pods_on_node.send_replace(workers.keys().cloned().collect());
            }
            item = stream.next() => {
                let Some(item) = item else { break };
                let event = match item {
                    Ok(event) => event,
                    Err(error) => {
                        tracing::warn!("watching pods: {error}");
                        continue;
                    }
                };
                let mut agent = Agent {
                    context: &context,
                    shutdown: &shutdown,
                    workers: &mut workers,
                    finished: &finished,
                    scheduler: &scheduler,
                    finished_tx: &finished_tx,
                };
                agent.on_event(event, &mut listed);
                pods_on_node.send_if_modified(|known| {
                    let now: BTreeSet<String> = workers.keys().cloned().collect();
                    let changed = *known != now;
                    *known = now;
                    changed
                });
            }
        }
    }
    // The workers see the cancellation too and tear their pods down.
    for (_, worker) in workers {
        let _ = worker.task.await;
    }
    volume_watch.abort();
    eviction.abort();
    metrics.abort();
    pods_on_node.send_replace(BTreeSet::new());
}

struct Agent<'a> {
    context: &'a Arc<NodeContext>,
    shutdown: &'a CancellationToken,
    workers: &'a mut HashMap<String, Worker>,
    finished: &'a HashSet<String>,
    scheduler: &'a Scheduler,
    finished_tx: &'a mpsc::UnboundedSender<String>,
}

impl Agent<'_> {
    /// One event of the watch of every pod: a pod to start or update, or gone. After a
    /// (re)list, the pods the list no longer holds are gone.
    fn on_event(&mut self, event: watcher::Event<Pod>, listed: &mut Option<HashSet<String>>) {
        match event {
            watcher::Event::Init => *listed = Some(HashSet::new()),
            watcher::Event::InitApply(pod) => {
                if let (Some(listed), Some(uid)) = (listed.as_mut(), pod.metadata.uid.clone()) {
                    listed.insert(uid);
                }
                self.on_pod(pod);
            }
            watcher::Event::InitDone => {
                if let Some(listed) = listed.take() {
                    for (uid, worker) in self.workers.iter() {
                        if !listed.contains(uid) {
                            let _ = worker.updates.send(PodUpdate::Gone);
                        }
                    }
                }
            }
            watcher::Event::Apply(pod) => self.on_pod(pod),
            watcher::Event::Delete(pod) => {
                if let Some(uid) = pod.metadata.uid.clone() {
                    self.scheduler.forget(uid);
                }
                let worker = pod
                    .metadata
                    .uid
                    .as_ref()
                    .and_then(|uid| self.workers.get(uid));
                if let Some(worker) = worker {
                    let _ = worker.updates.send(PodUpdate::Gone);
                }
            }
        }
    }
}

impl Agent<'_> {
    fn on_pod(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        if self.finished.contains(&uid) {
            return;
        }
        let spec = pod.spec.as_ref();
        let node_name = spec
            .and_then(|spec| spec.node_name.clone())
            .unwrap_or_default();
        if node_name.is_empty() {
            let scheduler = spec.and_then(|spec| spec.scheduler_name.as_deref());
            if pod.metadata.deletion_timestamp.is_none()
                && scheduler.is_none_or(|name| name == "default-scheduler")
            {
                self.scheduler.offer(pod);
            }
            return;
        }
        if node_name != self.context.node_name {
            return;
        }
        // A mirror pod is the API's copy of a pod that runs without the API (a kubelet's
        // static pod; here the in-process cluster DNS, see cluster/src/dns_pod.rs): the
        // kubelet never runs one, it only reports it.
        if pod
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|annotations| annotations.contains_key("kubernetes.io/config.mirror"))
        {
            return;
        }
        let pod = Arc::new(pod);
        if let Some(worker) = self.workers.get(&uid) {
            let _ = worker.updates.send(PodUpdate::Present(pod));
            return;
        }
        let phase = pod.status.as_ref().and_then(|status| status.phase.clone());
        let terminal = matches!(phase.as_deref(), Some("Succeeded" | "Failed"));
        if terminal && pod.metadata.deletion_timestamp.is_none() {
            return; // finished before this agent started; nothing runs for it
        }
        let (updates, receiver) = watch::channel(PodUpdate::Present(pod.clone()));
        let worker = match PodWorker::new(
            self.context.clone(),
            pod,
            receiver,
            self.shutdown.child_token(),
        ) {
            Ok(worker) => worker,
            Err(error) => {
                tracing::warn!("pod {uid}: {error:#}");
                return;
            }
        };
        let finished_tx = self.finished_tx.clone();
        let worker_uid = uid.clone();
        let task = tokio::spawn(async move {
            worker.run().await;
            let _ = finished_tx.send(worker_uid);
        });
        self.workers.insert(uid, Worker { updates, task });
    }
}
