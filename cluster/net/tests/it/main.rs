//! The crate's integration tests, one binary (`cargo test -p k8s-labs-net --test it`).

mod node_network;
