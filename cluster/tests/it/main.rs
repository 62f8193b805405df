//! The embedded cluster's integration tests, one binary (`cargo test -p k8s-labs-cluster --test it`;
//! `-- kubectl_tty::` runs one former file). Every test starts an embedded cluster and takes
//! `support::cluster_turn` first (two clusters at a time).

mod embedded;
mod kubectl_deletion;
mod kubectl_deployment;
mod kubectl_graceful;
mod kubectl_jobs;
mod kubectl_port_forward;
mod kubectl_run_attach;
mod kubectl_statefulset;
mod kubectl_top;
mod kubectl_tty;
mod kubectl_tutorial;
mod service_proxy;
mod support;
