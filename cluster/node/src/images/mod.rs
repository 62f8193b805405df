//! The kubelet's image manager (`pkg/kubelet/images`): whether a container's image must be
//! pulled (its `imagePullPolicy`), from where (the sources of [`ImageSources`]: registry
//! mirrors, the registry itself, then the offline catalog), with whose credentials (the pod's
//! `imagePullSecrets`), and what the container then runs ([`RunnableImage`]).

mod credentials;
mod duration;
mod manager;
mod policy;
mod runnable;
mod sources;

pub use credentials::{Credential, parse_docker_config};
pub use duration::go_duration;
pub use manager::{EnsureError, Ensured, ImageManager};
pub use policy::PullPolicy;
pub use runnable::RunnableImage;
pub use sources::ImageSources;
