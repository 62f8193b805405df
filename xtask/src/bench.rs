//! `cargo xtask bench …`: speed and scale figures of the embedded cluster, printed, never
//! asserted (our machines are noisy; a timed assertion would be a flaky test).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_labs_cluster::{ClusterConfig, EmbeddedCluster};
use k8s_labs_harness::pod::is_pod_ready;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

use crate::Exit;

/// The benchmarks.
#[derive(clap::Subcommand)]
pub(crate) enum BenchCommand {
    /// Time from a condition becoming true to the next step starting: watch vs 1 s polling.
    WaitLatency {
        /// Conditions measured per waiter.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=500))]
        rounds: u16,
    },
    /// The API server's RSS before, while and after holding 5 ConfigMaps of 1 MiB.
    ApiserverMemory {
        /// Small writes after the deletions (the history keeps this many events).
        #[arg(long, default_value_t = crate::bench_memory::DEFAULT_SMALL_WRITES)]
        small_writes: usize,
    },
    /// Time to scale a ReplicaSet of nginx pods from FROM to TO Ready pods.
    ReplicasetScale {
        #[arg(long, default_value_t = 3)]
        from: i32,
        #[arg(long, default_value_t = 100)]
        to: i32,
    },
}

/// `cargo xtask bench …`: figures on stdout; a cluster error exits 3.
pub(crate) async fn bench(command: BenchCommand) -> Exit {
    let result = match command {
        BenchCommand::WaitLatency { rounds } => {
            crate::bench_wait::wait_latency(usize::from(rounds)).await
        }
        BenchCommand::ApiserverMemory { small_writes } => {
            crate::bench_memory::apiserver_memory(small_writes).await
        }
        BenchCommand::ReplicasetScale { from, to } => {
            if from < 1 || to <= from {
                eprintln!("error: --from must be at least 1 and --to larger than --from");
                return Exit::Usage;
            }
            replicaset_scale(from, to).await
        }
    };
    match result {
        Ok(()) => Exit::Passed,
        Err(error) => {
            eprintln!("error: {error:#}");
            Exit::Cluster
        }
    }
}

/// How long one scaling phase may take before the benchmark gives up and says so.
const PHASE_LIMIT: Duration = Duration::from_secs(600);

/// Times the embedded cluster scaling a ReplicaSet of nginx pods from `from` to `to` Ready
/// pods through the scale subresource (what `kubectl scale rs` does), and prints the figures.
pub async fn replicaset_scale(from: i32, to: i32) -> Result<()> {
    let started = Instant::now();
    let cluster = EmbeddedCluster::start(ClusterConfig::default()).await?;
    let cluster_start = started.elapsed();
    let outcome = scale_on(&cluster, from, to).await;
    let stopping = Instant::now();
    let stopped = cluster.stop().await;
    let cluster_stop = stopping.elapsed();
    let (to_from, to_to) = outcome?;
    stopped?;
    println!("bench replicaset-scale (embedded cluster, nginx pods)");
    println!(
        "  cluster start:             {:>8.2} s",
        cluster_start.as_secs_f64()
    );
    println!(
        "  0 -> {from} Ready pods:          {:>8.2} s",
        to_from.as_secs_f64()
    );
    println!(
        "  {from} -> {to} Ready pods:        {:>8.2} s",
        to_to.as_secs_f64()
    );
    println!(
        "  per added pod:             {:>8.1} ms",
        to_to.as_secs_f64() * 1000.0 / f64::from((to - from).max(1))
    );
    println!(
        "  cluster stop ({to} pods):   {:>8.2} s",
        cluster_stop.as_secs_f64()
    );
    Ok(())
}

async fn scale_on(cluster: &EmbeddedCluster, from: i32, to: i32) -> Result<(Duration, Duration)> {
    let client = cluster.client().await?;
    let namespace = "bench-replicaset-scale";
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": namespace } }))?;
    namespaces.create(&PostParams::default(), &ns).await?;
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let replicaset: ReplicaSet = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "bench" },
        "spec": {
            "replicas": from,
            "selector": { "matchLabels": { "app": "bench" } },
            "template": {
                "metadata": { "labels": { "app": "bench" } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx" }] },
            },
        },
    }))?;

    let phase = Instant::now();
    replicasets
        .create(&PostParams::default(), &replicaset)
        .await
        .context("creating the ReplicaSet")?;
    wait_for_ready_pods(&pods, from).await?;
    let to_from = phase.elapsed();

    let phase = Instant::now();
    let scale = serde_json::json!({ "spec": { "replicas": to } });
    replicasets
        .patch_scale("bench", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .context("scaling the ReplicaSet")?;
    wait_for_ready_pods(&pods, to).await?;
    let to_to = phase.elapsed();

    namespaces
        .delete(namespace, &DeleteParams::default())
        .await
        .context("deleting the namespace")?;
    Ok((to_from, to_to))
}

/// Waits, by watch, until `count` pods of the namespace are Ready.
async fn wait_for_ready_pods(pods: &Api<Pod>, count: i32) -> Result<()> {
    let wanted = usize::try_from(count).unwrap_or(0);
    let waiting = async {
        let mut ready = BTreeSet::new();
        let mut stream = watcher(pods.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(pod) = stream.try_next().await? {
            let name = pod.metadata.name.clone().unwrap_or_default();
            if is_pod_ready(&pod) {
                ready.insert(name);
            } else {
                ready.remove(&name);
            }
            if ready.len() >= wanted {
                return Ok(());
            }
        }
        anyhow::bail!(
            "the pod watch ended with {} of {wanted} pods Ready",
            ready.len()
        )
    };
    tokio::time::timeout(PHASE_LIMIT, waiting)
        .await
        .with_context(|| format!("{count} pods were not Ready within {PHASE_LIMIT:?}"))?
}
