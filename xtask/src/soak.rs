//! `cargo xtask soak`: every lab, `--jobs` at a time, round after round on one cluster while
//! other processes keep cores busy, as on a loaded CI machine. Races that a single run rarely
//! shows come out as a failed round, or as steps that passed only after retries; both are
//! counted in the summary.

use std::process::Stdio;
use std::time::Instant;

use k8s_labs_harness::{Console, Lab, LabReport, Provider, RunOptions};

use crate::run_labs::{exit_of, run_all};
use crate::{Exit, Stop, cancel_on_signal};

/// Processes that keep cores busy (`sh` busy loops), killed by their PIDs when dropped.
struct BusyCores {
    _children: Vec<tokio::process::Child>,
}

impl BusyCores {
    fn start(count: usize) -> std::io::Result<BusyCores> {
        let mut children = Vec::new();
        for _ in 0..count {
            children.push(
                tokio::process::Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .stdin(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()?,
            );
        }
        Ok(BusyCores {
            _children: children,
        })
    }
}

/// What one round showed.
struct Round {
    passed: bool,
    seconds: f64,
    /// `lab: step (N tries; first: why)` for each step where a try failed before it passed.
    retried: Vec<String>,
}

impl Round {
    fn of(reports: &[LabReport], seconds: f64) -> Round {
        let retried = reports
            .iter()
            .flat_map(|report| {
                report.steps.iter().filter_map(|step| {
                    let reason = step.first_failed_try.as_deref()?;
                    Some(format!(
                        "{}: {} ({} tries; first: {})",
                        report.lab,
                        step.name,
                        step.tries,
                        reason.lines().next().unwrap_or_default()
                    ))
                })
            })
            .collect();
        Round {
            passed: exit_of(reports) == Exit::Passed,
            seconds,
            retried,
        }
    }
}

/// Runs `labs` `rounds` times on the cluster `connect` yields, with `busy_cores` busy loops
/// beside; exit 0 when every round passed, 1 otherwise.
pub async fn soak<F>(
    labs: Vec<Lab>,
    connect: F,
    rounds: usize,
    jobs: usize,
    busy_cores: usize,
) -> Exit
where
    F: std::future::Future<Output = Result<Provider, Exit>>,
{
    let provider = match connect.await {
        Ok(provider) => provider,
        Err(exit) => return exit,
    };
    let busy = match BusyCores::start(busy_cores) {
        Ok(busy) => busy,
        Err(error) => {
            eprintln!("error: cannot start the busy loops ({error}); try --busy-cores 0");
            let _ = provider.stop().await;
            return Exit::Usage;
        }
    };
    let (cancel, signals) = cancel_on_signal();
    let options = RunOptions::default();
    let console = Console::stdout();
    let mut results = Vec::new();
    for round in 1..=rounds {
        let started = Instant::now();
        let round_console = console.prefixed(&format!("round {round}"));
        let reports = run_all(&labs, &provider, &round_console, &cancel, &options, jobs).await;
        let result = Round::of(&reports, started.elapsed().as_secs_f64());
        println!(
            "soak: round {round}/{rounds} {} in {:.1} s{}",
            if result.passed { "passed" } else { "FAILED" },
            result.seconds,
            if result.retried.is_empty() {
                String::new()
            } else {
                format!("; retried: {}", result.retried.join(", "))
            }
        );
        results.push(result);
        if cancel.is_cancelled() {
            break;
        }
    }
    drop(busy);
    let stopped = provider.stop().await;
    let passed = results.iter().filter(|round| round.passed).count();
    let retried: usize = results.iter().map(|round| round.retried.len()).sum();
    let mut seconds: Vec<f64> = results.iter().map(|round| round.seconds).collect();
    seconds.sort_by(f64::total_cmp);
    let median = seconds.get(seconds.len() / 2).copied().unwrap_or_default();
    println!(
        "soak: {passed} of {} rounds passed ({} labs, --jobs {jobs}, {busy_cores} busy cores); \
         {retried} steps passed only after retries; median round {median:.1} s",
        results.len(),
        labs.len()
    );
    if let Err(error) = stopped {
        eprintln!("error: stopping the cluster failed: {error:#}; check for leftover processes");
        return Exit::Cluster;
    }
    if cancel.is_cancelled() {
        return Exit::Signal(signals.await.unwrap_or(Stop::Interrupt));
    }
    signals.abort();
    if passed == results.len() {
        Exit::Passed
    } else {
        Exit::ClaimFailed
    }
}
