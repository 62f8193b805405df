//! The node agent of the embedded cluster: what the kubelet (and, for this single-node cluster,
//! the scheduler) does, on runc. It is an API client like the kubelet: it registers its Node,
//! binds unscheduled pods to itself, runs the pods bound to it in sandboxes (a network
//! namespace per pod, an overlay root filesystem per container), reports their status and
//! events through the API, and serves exec, attach, logs and resource metrics to the API
//! server through
//! [`k8s_labs_node_api::NodeConnection`].
//!
//! Containers run images of the image catalog (`images.yaml`), each a root filesystem built
//! from the host's Debian packages, because the machines this runs on have no registry.

mod agent;
mod attach;
pub mod catalog;
pub mod cgroups;
pub mod claims;
mod connection;
mod console_exec;
mod container_exit;
pub mod container_io;
pub mod container_stop;
pub mod containers;
mod context;
pub mod debian_packages;
pub mod empty_dir;
pub mod events;
pub mod eviction;
pub mod grace;
mod idmap;
pub mod image_store;
pub mod image_user;
pub mod images;
mod instance;
pub mod metrics;
mod metrics_sampler;
pub mod mounts;
mod node_object;
pub mod oci_spec;
mod pod_worker;
mod port_forward;
pub mod pre_stop;
mod preflight;
mod probes;
mod reaper;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod runtime;
pub mod sandbox;
pub mod security_context;
pub mod status;
pub mod sub_path;
pub mod terminal;
pub mod user_namespace;
mod volume_watch;
mod watchdog;

pub use agent::{NODE_ROOT, NodeAgent, NodeConfig, NodeHandle};
pub use connection::RuncNodeConnection;
pub use instance::{RUN_ROOT, claim_instance, cleanup_leftovers};
pub use preflight::preflight;
