//! `cargo xtask bench apiserver-memory`: the API server's memory after large objects (issue
//! 14's figure: RSS after creating and deleting 5 ConfigMaps of 1 MiB each, within 50 MB of
//! the baseline). The server runs in this process, with the client that drives it; the RSS
//! is read from /proc/self/status. After the deletions, small writes fill the store's
//! history (10,000 events) so that the large objects' events leave it; `malloc_trim(0)`
//! figures separate what glibc keeps freed from what is in use. Printed, never asserted.

use anyhow::{Context, Result};
use k8s_labs_apiserver::HISTORY_LEN;
use k8s_labs_apiserver::testing::TestApiServer;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// How many large objects, and how large.
const OBJECTS: usize = 5;
const OBJECT_BYTES: usize = 1024 * 1024;
const NAMESPACE: &str = "default";

/// This process's resident set size in bytes (VmRSS).
fn rss() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .context("no VmRSS in /proc/self/status")?;
    Ok(kib * 1024)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

/// Runs the benchmark with `small_writes` small writes after the deletions (the store's
/// history keeps the last events: enough writes move the large ones out of it).
pub async fn apiserver_memory(small_writes: usize) -> Result<()> {
    let api = TestApiServer::start().await?;
    let outcome = measure(&api, small_writes).await;
    api.shutdown().await;
    let figures = outcome?;
    println!("bench apiserver-memory (API server in this process; RSS from /proc/self/status)");
    let baseline = figures[0].1;
    for (what, bytes, history) in &figures {
        let delta_mb = (*bytes as f64 - baseline as f64) / 1_000_000.0;
        println!(
            "  {what:<34} {:>8.1} MB  ({delta_mb:>+7.1} MB)  history: {} events, {:.1} MB",
            mb(*bytes),
            history.0,
            mb(history.1 as u64),
        );
    }
    Ok(())
}

type Figure = (String, u64, (usize, usize));

async fn measure(api: &TestApiServer, small_writes: usize) -> Result<Vec<Figure>> {
    let config_maps: Api<ConfigMap> = Api::namespaced(api.client.clone(), NAMESPACE);
    let figure = |what: &str| -> Result<Figure> {
        Ok((what.to_string(), rss()?, api.server.history_usage()))
    };
    // Warm up every path the run takes, so that the baseline holds what they allocate once.
    let small: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "small"}, "data": {"n": "0"}}))?;
    config_maps.create(&PostParams::default(), &small).await?;
    write_small(&config_maps, 10).await?;
    let mut figures = vec![figure("baseline")?];
    let mut peak = figures[0].1;
    for index in 0..OBJECTS {
        let large: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": format!("large-{index}")},
            "data": {"big": "x".repeat(OBJECT_BYTES)},
        }))?;
        config_maps
            .create(&PostParams::default(), &large)
            .await
            .with_context(|| format!("creating large-{index}"))?;
        peak = peak.max(rss()?);
    }
    figures.push(figure(&format!("{OBJECTS} x 1 MiB ConfigMaps created"))?);
    peak = peak.max(figures[1].1);
    for index in 0..OBJECTS {
        config_maps
            .delete(&format!("large-{index}"), &DeleteParams::default())
            .await
            .with_context(|| format!("deleting large-{index}"))?;
        peak = peak.max(rss()?);
    }
    figures.push(figure("deleted")?);
    trim();
    figures.push(figure("  then malloc_trim(0)")?);
    write_small(&config_maps, small_writes).await?;
    figures.push(figure(&format!("after {small_writes} small writes"))?);
    trim();
    figures.push(figure("  then malloc_trim(0)")?);
    figures.insert(2, ("peak (creating, deleting)".to_string(), peak, (0, 0)));
    Ok(figures)
}

/// Gives glibc's free memory back to the system, so that the figure after it is what is
/// still in use: the difference is memory the allocator keeps for reuse, not a leak.
fn trim() {
    // SAFETY: malloc_trim only walks and shrinks glibc's own heaps; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `count` small writes (one data value changed each time).
async fn write_small(config_maps: &Api<ConfigMap>, count: usize) -> Result<()> {
    for n in 0..count {
        let patch = json!({"data": {"n": n.to_string()}});
        config_maps
            .patch("small", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .context("patching the small ConfigMap")?;
    }
    Ok(())
}

/// The default number of small writes: the history's length, so that none of the large
/// objects' events is left in it.
pub const DEFAULT_SMALL_WRITES: usize = HISTORY_LEN;
