//! The lab's tests, one binary (`cargo test -p lab-replicaset-scale --test it`).

mod embedded;
mod explained;
mod manifests;
