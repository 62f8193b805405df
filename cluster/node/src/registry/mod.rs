//! Images pulled from OCI registries: references normalized as Docker does, manifests and
//! blobs fetched with oci-client (plain HTTP only for registries on this machine), blobs
//! stored by digest after checking it, each layer unpacked once into its own directory
//! (whiteouts as overlayfs marks them), and each image's root filesystem unpacked from its
//! layers, whiteouts applied, into a directory per image digest. The node's image manager
//! decides when to pull and from where. Images also come from archives (`docker save`, OCI
//! layouts), and the store is pruned of what no running container uses.
//!
//! A public module, not root re-exports: the store and its pulls are one group that
//! `cargo xtask images` and the integration tests use apart from the agent.

mod archive;
mod config;
mod digest;
mod layer;
mod layered;
mod platform;
mod progress;
mod prune;
mod pull;
mod pull_error;
mod reference;
mod references;
mod store;

// What other crates use: the store `cargo xtask images` loads, lists and prunes, and what
// the integration tests pull and check with. PULL_PROGRESS is the log target xtask's default
// filter lets through.
pub use archive::{LoadOptions, load_archive};
pub use digest::sha256_digest;
pub use layered::visible;
pub use platform::host_architecture;
pub use progress::PULL_PROGRESS;
pub use prune::{NamedImage, PruneReport, prune_images};
pub use pull::Puller;
pub use store::{PullStore, StoredImage};

pub(crate) use config::ImageConfig;
pub(crate) use pull::{PullOptions, registry_answered};
pub(crate) use pull_error::describe_pull_error;
pub(crate) use reference::PullReference;
pub(crate) use reference::is_local;
pub(crate) use references::ReferenceRecord;
