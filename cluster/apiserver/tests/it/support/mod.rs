//! What the API server's tests share: the real kubectl against a `TestApiServer` (`kubectl`),
//! a fake node that runs exec, attach, logs and port-forward as local processes (`streaming`),
//! the generators of hostile requests for the fuzz test (`fuzz`), and a short history.

pub mod fuzz;
pub mod kubectl;
pub mod streaming;

/// The history the tests of what lies past it give their server: reached in a few hundred
/// writes instead of [`k8s_labs_apiserver::HISTORY_LEN`]'s ten thousand, which cost ~13 s of
/// CPU in a debug build and check nothing more (the bound is the same code at any length).
pub const SHORT_HISTORY: usize = 200;
