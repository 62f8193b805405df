//! Images pulled from OCI registries: references normalized as Docker does, manifests and
//! blobs fetched with oci-client (plain HTTP only for registries on this machine), blobs
//! stored by digest after checking it, each layer unpacked once into its own directory
//! (whiteouts as overlayfs marks them), and each image's root filesystem unpacked from its
//! layers, whiteouts applied, into a directory per image digest. [`crate::images`] decides
//! when to pull and from where. Images also come from archives (`docker save`, OCI layouts),
//! and the store is pruned of what no running container uses.

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

pub use archive::{LoadOptions, LoadedImage, load_archive};
pub use config::ImageConfig;
pub use digest::{sha256_digest, verify_file};
pub use layer::{Whiteouts, apply_layer};
pub use layered::visible;
pub use platform::{host_architecture, host_platform};
pub use progress::PULL_PROGRESS;
pub use prune::{NamedImage, PruneReport, prune_images};
pub use pull::{PullOptions, Puller, registry_answered};
pub use pull_error::describe_pull_error;
pub use reference::is_local;
pub use reference::{PullReference, ReferenceError};
pub use references::ReferenceRecord;
pub use store::{ImageRecord, PullStore, StoredImage};
