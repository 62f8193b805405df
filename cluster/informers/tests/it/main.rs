//! The crate's integration tests, one binary (`cargo test -p k8s-labs-informers --test it`).

mod informers;
mod pod_informer;
