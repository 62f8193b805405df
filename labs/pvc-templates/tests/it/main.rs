//! The lab's tests, one binary (`cargo test -p lab-pvc-templates --test it`).

mod embedded;
mod explained;
mod manifests;
