//! What the `cargo xtask` binary and its tests share: the registry of the project's labs.

pub mod registry;
