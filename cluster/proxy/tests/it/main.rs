//! The crate's integration tests, one binary (`cargo test -p k8s-labs-proxy --test it`).

mod proxy;
