//! What every part of the node agent shares: the API client, the runtime, the images, the
//! network and the registry of containers.

use std::path::PathBuf;
use std::sync::Arc;

use k8s_labs_net::NodeNetwork;
use tokio::sync::watch;

use crate::cgroups::NodeCgroups;
use crate::containers::ContainerRegistry;
use crate::events::EventRecorder;
use crate::eviction::watched::WatchedPods;
use crate::images::ImageManager;
use crate::metrics::MetricsStore;
use crate::runtime::Runc;
use crate::sandbox::DnsSettings;
use crate::user_namespace::NodeUserNamespaces;

pub struct NodeContext {
    pub client: kube::Client,
    pub node_name: String,
    pub network: Arc<NodeNetwork>,
    pub runc: Runc,
    /// The node's cgroup tree: pods' and containers' limits.
    pub cgroups: NodeCgroups,
    /// The node's user namespace and its pods' id ranges; `None` where the kernel cannot
    /// give pods one.
    pub user_namespaces: Option<NodeUserNamespaces>,
    /// Pulled and catalog images, and where to pull from.
    pub images: ImageManager,
    pub registry: ContainerRegistry,
    pub pods_dir: PathBuf,
    /// The node's own root directory, where `hostPath` volumes live (as a kind node's are in
    /// its container): `<state dir>/node-root`, never the machine's `/`.
    pub node_root: PathBuf,
    /// The node's own scratch space for execs (console sockets, pid files): `<state dir>/exec`,
    /// out of every pod's reach.
    pub exec_dir: PathBuf,
    pub dns: DnsSettings,
    pub events: EventRecorder,
    /// The pods whose storage the eviction check measures (see [`crate::eviction`]).
    pub eviction: WatchedPods,
    /// How often the eviction check measures them.
    pub eviction_period: std::time::Duration,
    /// Bumped on every PersistentVolumeClaim or PersistentVolume change (see
    /// [`crate::volume_watch`]): what pods waiting for a claim to bind wait on.
    pub volume_changes: watch::Sender<u64>,
    /// The latest samples of the containers' CPU and memory (see [`crate::metrics`]).
    pub metrics: MetricsStore,
}
