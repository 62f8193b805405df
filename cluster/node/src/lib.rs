//! The node agent of the embedded cluster: what the kubelet (and, for this single-node cluster,
//! the scheduler) does, on runc. It is an API client like the kubelet: it registers its Node,
//! binds unscheduled pods to itself unless it is cordoned or tainted against them, runs the pods bound to it in sandboxes (a network
//! namespace per pod, an overlay root filesystem per container), reports their status and
//! events through the API, and serves exec, attach, logs and resource metrics to the API
//! server through
//! [`k8s_labs_node_api::NodeConnection`].
//!
//! Containers run images of the image catalog (`images.yaml`), each a root filesystem built
//! from the host's Debian packages, because the machines this runs on have no registry.
//!
//! The crate's surface is the agent as the cluster starts it ([`NodeAgent`], [`NodeConfig`],
//! the instance claim and the host checks), the layers below it that the integration tests
//! drive without an API server (sandboxes, cgroups, containers under [`Runc`]), and
//! [`registry`]: the pulled-image store `cargo xtask images` loads, lists and prunes. The
//! modules behind them are private.

mod agent;
mod attach;
mod catalog;
mod cgroups;
mod claims;
mod connection;
mod console_exec;
mod container_exit;
mod container_io;
mod container_stop;
mod containers;
mod context;
mod debian_packages;
mod empty_dir;
mod events;
mod eviction;
mod grace;
mod idmap;
mod image_store;
mod image_user;
mod images;
mod instance;
mod metrics;
mod metrics_sampler;
mod mounts;
mod node_object;
mod oci_spec;
mod pod_worker;
mod port_forward;
mod pre_stop;
mod preflight;
mod probes;
mod reaper;
mod reference;
pub mod registry;
mod rootfs;
mod runtime;
mod sandbox;
mod scheduler;
mod security_context;
mod status;
mod sub_path;
mod terminal;
mod user_namespace;
mod volume_watch;
mod watchdog;

// The agent, as the cluster starts it: its configuration, the directories it keeps, the
// instance claim that keeps two clusters apart, and what it needs from the host.
pub use agent::{NODE_ROOT, NodeAgent, NodeConfig, NodeHandle};
pub use eviction::DEFAULT_EVICTION_PERIOD;
pub use image_store::{DEFAULT_IMAGE_DIR, DEFAULT_PULLED_IMAGE_DIR};
pub use images::ImageSources;
pub use instance::{RUN_ROOT, claim_instance, cleanup_leftovers};
pub use metrics::DEFAULT_METRICS_PERIOD;
pub use mounts::{mounts_under, unmount_under};
pub use preflight::preflight;
pub use user_namespace::{FIRST_HOST_ID, IDS_PER_POD, NODE_NAMESPACES, NodeUserNamespaces};

// The layers below the agent, which the integration tests drive without an API server: a
// pod's sandbox, its cgroups and volumes, and its containers under runc.
pub use catalog::Catalog;
pub use cgroups::{NodeCgroups, POD_PIDS_LIMIT};
pub use claims::ClaimedVolumes;
pub use container_stop::stop_container;
pub use containers::{
    ContainerKey, ContainerLaunch, ContainerRegistry, RunningContainer, start_container,
};
pub use grace::Grace;
pub use image_store::ImageStore;
pub use images::RunnableImage;
pub use runtime::{Runc, StartError};
pub use sandbox::{
    DnsSettings, PodIdentity, PodSandbox, SandboxHost, create_sandbox, remove_sandbox,
};
