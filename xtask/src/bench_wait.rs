//! `cargo xtask bench wait-latency`: how long after a condition becomes true the next step of
//! a lab starts, with the harness's watch-driven waits and with a 1 s poller as the baseline.
//!
//! A lab of 2×N steps runs on the embedded cluster: each "change" step makes a ConfigMap's
//! value true after a random delay (recording the moment just before the PATCH is sent) and
//! waits for it; the "next" step that follows records when it started. The figure is the gap,
//! measured through the real runner, so it includes the runner's own step overhead.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use k8s_labs_cluster::ClusterConfig;
use k8s_labs_harness::wait::wait_for;
use k8s_labs_harness::{CancellationToken, Console, Lab, Provider, Step, StepContext, StepOutcome};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use rand::Rng;

/// Timeout of each bench step.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// The ConfigMap whose value the steps wait for.
const CONFIG_MAP: &str = "latency";
/// The poller's interval (the baseline: what a `sleep 1` loop in a shell script does).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
enum Waiter {
    Watch,
    Poll,
}

/// Moments shared between a change step and the step after it.
#[derive(Default)]
struct Timings {
    changed_at: Mutex<Option<Instant>>,
    gaps: Mutex<Vec<Duration>>,
}

/// Runs the bench for `rounds` conditions per waiter and prints the figures.
pub async fn wait_latency(rounds: usize) -> Result<()> {
    let provider = Provider::embedded(ClusterConfig::default()).await?;
    let outcome = measure(&provider, rounds).await;
    provider.stop().await?;
    let (watch, poll) = outcome?;
    println!("bench wait-latency (embedded cluster; condition true -> next step starts)");
    print_figures("watch (harness)", &watch);
    print_figures("poll every 1 s", &poll);
    Ok(())
}

async fn measure(provider: &Provider, rounds: usize) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let mut results = Vec::new();
    for waiter in [Waiter::Watch, Waiter::Poll] {
        let timings = Arc::new(Timings::default());
        let lab = bench_lab(rounds, waiter, &timings);
        let report = lab
            .run(provider, &Console::capturing(), &CancellationToken::new())
            .await;
        if !report.passed() {
            let step = report
                .failed_step()
                .map(|step| format!("{}: {:?}", step.name, step.result))
                .or(report.error.clone())
                .unwrap_or_default();
            return Err(anyhow!("the bench lab failed: {step}"));
        }
        let gaps = timings
            .gaps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        results.push(gaps);
    }
    let poll = results.pop().unwrap_or_default();
    let watch = results.pop().unwrap_or_default();
    Ok((watch, poll))
}

fn bench_lab(rounds: usize, waiter: Waiter, timings: &Arc<Timings>) -> Lab {
    let mut lab = Lab::new("bench-wait", "wait latency", "manifests").step(Step::new(
        "create the ConfigMap",
        "kubectl create configmap latency",
        STEP_TIMEOUT,
        create_config_map,
    ));
    for round in 1..=rounds {
        let change = timings.clone();
        let next = timings.clone();
        lab = lab
            .step(Step::new(
                &format!("change {round}"),
                "kubectl patch configmap latency",
                STEP_TIMEOUT,
                move |ctx| change_and_wait(ctx, round, waiter, change.clone()),
            ))
            .step(Step::new(
                &format!("next {round}"),
                "true",
                STEP_TIMEOUT,
                move |_| record_gap(next.clone()),
            ));
    }
    lab
}

async fn create_config_map(ctx: StepContext) -> Result<StepOutcome> {
    let config_map: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": { "name": CONFIG_MAP },
        "data": { "round": "0" },
    }))?;
    Api::<ConfigMap>::namespaced(ctx.client(), ctx.namespace())
        .create(&PostParams::default(), &config_map)
        .await
        .context("creating the ConfigMap")?;
    Ok(StepOutcome::passed(""))
}

fn round_of(config_map: Option<&ConfigMap>) -> Option<String> {
    config_map?.data.as_ref()?.get("round").cloned()
}

async fn change_and_wait(
    ctx: StepContext,
    round: usize,
    waiter: Waiter,
    timings: Arc<Timings>,
) -> Result<StepOutcome> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client(), ctx.namespace());
    let wanted = round.to_string();
    let delay = Duration::from_millis(rand::rng().random_range(100..1100));
    let changer = {
        let api = api.clone();
        let wanted = wanted.clone();
        let timings = timings.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            *timings
                .changed_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
            let patch = serde_json::json!({ "data": { "round": wanted } });
            api.patch(CONFIG_MAP, &PatchParams::default(), &Patch::Merge(&patch))
                .await
        })
    };
    match waiter {
        Waiter::Watch => {
            wait_for(api, CONFIG_MAP, "the new round", ctx.deadline(), |object| {
                round_of(object) == Some(wanted.clone())
            })
            .await?;
        }
        Waiter::Poll => loop {
            let current = api.get_opt(CONFIG_MAP).await?;
            if round_of(current.as_ref()) == Some(wanted.clone()) {
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        },
    }
    changer.await??;
    Ok(StepOutcome::passed(""))
}

async fn record_gap(timings: Arc<Timings>) -> Result<StepOutcome> {
    let now = Instant::now();
    let changed = timings
        .changed_at
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .ok_or_else(|| anyhow!("the change step recorded no moment"))?;
    timings
        .gaps
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(now.saturating_duration_since(changed));
    Ok(StepOutcome::passed(""))
}

fn print_figures(name: &str, gaps: &[Duration]) {
    let mut sorted = gaps.to_vec();
    sorted.sort();
    let at = |fraction: f64| {
        let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    };
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    println!(
        "  {name:<16} n={:<3} median {:>7.1} ms   p90 {:>7.1} ms   max {:>7.1} ms",
        sorted.len(),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(1.0)),
    );
}
