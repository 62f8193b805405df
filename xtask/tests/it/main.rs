//! The xtask's integration tests, one binary (`cargo test -p xtask --test it`; `-- walk::` runs
//! one former file). Tests that run an embedded cluster take `common::cluster_turn`.

mod check;
mod cli_on_a_cluster;
mod common;
mod images;
mod kind;
mod sigkill;
mod walk;
