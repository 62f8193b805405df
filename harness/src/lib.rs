//! The harness every lab stands on: where a lab runs ([`provider`]), how manifests are
//! applied ([`apply`]), how it waits ([`wait`]) and runs commands ([`exec`]), how claims are
//! checked ([`expect`]) and reported ([`console`], [`progress`], [`report`], [`diagnostics`]), and the
//! Lab/Step model ([`lab`], [`context`]) with its runner ([`runner`]).
//! A lab only describes steps; it never waits, diffs or cleans up.

pub mod apply;
pub mod console;
pub mod context;
pub mod diagnostics;
pub mod errors;
pub mod exec;
pub mod expect;
mod kept_values;
pub mod lab;
pub mod progress;
pub mod provider;
pub mod report;
pub mod runner;
mod skip;
pub mod table;
/// Needs the `embedded` feature (its lab tests start the embedded cluster).
#[cfg(feature = "embedded")]
pub mod testing;
pub mod wait;
pub mod workload;

pub use console::Console;
pub use context::StepContext;
pub use expect::Mismatch;
/// Facts about a Pod (Ready, Running and Ready, terminal, terminating), the same the
/// embedded cluster's controllers decide on.
pub use k8s_labs_podutil as pod;
pub use kept_values::ValueKey;
pub use lab::{Lab, Language, Step, StepOutcome};
pub use provider::{ClusterFacts, Provider};
pub use report::{LabReport, StepResult};
pub use runner::{Keep, Pacer, RunOptions};
pub use skip::Skip;
pub use tokio_util::sync::CancellationToken;
