//! The lab's tests, one binary (`cargo test -p lab-statefulset-dns --test it`).

mod embedded;
mod explained;
