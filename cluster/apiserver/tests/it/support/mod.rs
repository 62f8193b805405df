//! What the API server's tests share: the real kubectl against a `TestApiServer` (`kubectl`),
//! a fake node that runs exec, attach, logs and port-forward as local processes (`streaming`),
//! and the generators of hostile requests for the fuzz test (`fuzz`).

pub mod fuzz;
pub mod kubectl;
pub mod streaming;
