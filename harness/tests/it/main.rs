//! The harness's integration tests, one binary (`cargo test -p k8s-labs-harness --test it`).

mod keep;
mod live_progress;
mod skip;
mod support;
