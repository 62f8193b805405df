//! Resource limits of pods and containers, enforced with cgroups (v1 or v2) as the kubelet
//! enforces them: a memory limit is a hard limit whose breach the kernel answers with an OOM
//! kill (reported as `OOMKilled`), a CPU limit a CFS quota, a CPU request a share; every pod
//! has a pids limit ([`POD_PIDS_LIMIT`]).

mod hierarchy;
mod limits;
mod oom;
mod tree;
mod usage;

pub use limits::ContainerLimits;
pub use tree::{ContainerCgroup, NodeCgroups, POD_PIDS_LIMIT, PodCgroup, remove_recorded};
pub use usage::{CgroupUsage, UsageFiles};
