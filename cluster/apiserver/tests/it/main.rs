//! The API server's integration tests, one binary (`cargo test -p k8s-labs-apiserver --test it`;
//! `-- watch::` runs the tests of one former file). Each test starts its own `TestApiServer`,
//! so they run in parallel.

mod api;
mod connections;
mod decoding;
mod deletion;
mod fuzz;
mod kubectl;
mod kubectl_auth;
mod kubectl_drain;
mod kubectl_explain;
mod kubectl_ingress;
mod limits;
mod paging;
mod paging_clients;
mod pod_security_kubectl;
mod port_forward_kubectl;
mod protobuf_kubectl;
mod proxy;
mod streaming_kube;
mod streaming_kubectl;
mod support;
mod table_kubectl;
mod validation;
mod watch;
mod workloads;
