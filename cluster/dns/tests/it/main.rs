//! The crate's integration tests, one binary (`cargo test -p k8s-labs-dns --test it`).

mod server;
