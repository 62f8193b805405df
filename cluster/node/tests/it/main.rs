//! The node agent's integration tests, one binary (`cargo test -p k8s-labs-node --test it`;
//! `-- containment::` runs one former file). Needs root. The tests run side by side, each with
//! a node of its own under `common::TEST_RUN_ROOT`; `leftovers` has the run root alone.

mod agent;
mod agent_deletion;
mod agent_lifecycle;
mod agent_tty;
mod agent_volumes;
mod archive_pods;
mod common;
mod containment;
mod ephemeral_storage;
mod leftovers;
mod registry_pods;
mod registry_pull;
mod resources;
mod runtime;
mod scheduling;
mod security_context;
mod user_namespace;
