//! The controllers' integration tests, one binary (`cargo test -p k8s-labs-controllers --test it`;
//! `-- statefulset::` runs one former file). Each test starts its own API server and
//! controllers, so they run in parallel.

mod common;
mod deletion;
mod endpoints;
mod job;
mod namespace_and_gc;
mod replicaset;
mod statefulset;
mod volumes;
