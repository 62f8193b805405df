//! `kubectl top pods|nodes` with the real kubectl 1.33 on the embedded cluster, which serves
//! `metrics.k8s.io/v1beta1` itself from its containers' cgroups (no metrics-server): the
//! tutorial's nginx pods, a busybox pod that burns a CPU and one that holds 60 MiB of a
//! memory-backed emptyDir. The node samples every second here (a start option; the default
//! is metrics-server's 15 s); every number is a real cgroup reading. Needs root and
//! `scripts/install-deps`, as the other embedded-cluster tests do.

use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_labs_cluster::ClusterConfig;
use support::kubectl::Kubectl;

fn web_yaml() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests/statefulset-dns/web.yaml")
        .display()
        .to_string()
}

/// A pod that keeps one CPU busy, and one that writes 60 MiB into a tmpfs (whose pages count
/// against its memory cgroup, and are not file cache the kernel could drop) and keeps them.
const LOAD_YAML: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: burner
spec:
  containers:
  - name: burn
    image: busybox:1.28
    command: ['sh', '-c', 'while :; do :; done']
---
apiVersion: v1
kind: Pod
metadata:
  name: holder
spec:
  containers:
  - name: hold
    image: busybox:1.28
    command: ['sh', '-c', 'dd if=/dev/zero of=/data/fill bs=1048576 count=60 && sleep 3600']
    volumeMounts:
    - name: data
      mountPath: /data
  volumes:
  - name: data
    emptyDir:
      medium: Memory
";

/// One row of `kubectl top`: its name columns, then CPU in millicores and memory in MiB.
#[derive(Debug, Clone)]
struct Row {
    names: Vec<String>,
    millicores: u64,
    mebibytes: u64,
}

/// The header's columns and the rows of a `kubectl top` table with `names` name columns
/// before CPU and memory (each followed by its percentage for nodes).
fn parse(output: &str, names: usize) -> (Vec<String>, Vec<Row>) {
    parse_with(output, names, false)
}

fn parse_with(output: &str, names: usize, percentages: bool) -> (Vec<String>, Vec<Row>) {
    let memory_column = if percentages { names + 2 } else { names + 1 };
    let mut lines = output.lines();
    let header = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let rows = lines
        .map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            let number = |text: &str, unit: &str| -> u64 {
                text.strip_suffix(unit)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{text:?} in {line:?} is not a number of {unit}"))
            };
            Row {
                names: columns[..names].iter().map(|s| s.to_string()).collect(),
                millicores: number(columns[names], "m"),
                mebibytes: number(columns[memory_column], "Mi"),
            }
        })
        .collect();
    (header, rows)
}

fn row<'a>(rows: &'a [Row], name: &str) -> &'a Row {
    rows.iter()
        .find(|row| row.names.last().is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("no row for {name}: {rows:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_top_shows_the_pods_cgroup_usage() {
    let _turn = crate::support::cluster_turn().await;
    let scratch = support::scratch_dir("kubectl-top");
    let config = ClusterConfig {
        metrics_period: Duration::from_secs(1),
        ..ClusterConfig::default()
    };
    let (cluster, kubeconfig) = support::start_cluster_with(&scratch, config).await;
    let k = Kubectl::new(33, &kubeconfig, &scratch);

    let resources = k
        .ok(&["api-resources", "--api-group=metrics.k8s.io", "-o", "wide"])
        .await;
    let resources: Vec<Vec<&str>> = resources
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        resources[1..],
        [
            vec![
                "nodes",
                "metrics.k8s.io/v1beta1",
                "false",
                "NodeMetrics",
                "get,list"
            ],
            vec![
                "pods",
                "metrics.k8s.io/v1beta1",
                "true",
                "PodMetrics",
                "get,list"
            ],
        ],
        "{resources:?}"
    );

    k.ok(&["apply", "-f", &web_yaml()]).await;
    let load = scratch.join("load.yaml");
    std::fs::write(&load, LOAD_YAML).expect("writing load.yaml");
    k.ok(&["apply", "-f", load.to_str().expect("a UTF-8 path")])
        .await;
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=180s"])
        .await;
    k.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/burner",
        "pod/holder",
        "--timeout=120s",
    ])
    .await;

    // Until every pod has two samples (and the holder has written its 60 MiB), kubectl says
    // the metrics are not available yet or leaves a pod out.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (header, rows) = loop {
        let output = k.run(&["top", "pods"]).await;
        if output.success {
            let (header, rows) = parse(&output.stdout, 1);
            let has = |name: &str| rows.iter().any(|row| row.names[0] == name);
            let all = ["web-0", "web-1", "web-2", "burner", "holder"]
                .iter()
                .all(|name| has(name));
            if all && row(&rows, "holder").mebibytes >= 60 {
                break (header, rows);
            }
        }
        assert!(
            Instant::now() < deadline,
            "kubectl top pods: {}{}",
            output.stdout,
            output.stderr
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(header, ["NAME", "CPU(cores)", "MEMORY(bytes)"]);
    let burner = row(&rows, "burner");
    for nginx in ["web-0", "web-1", "web-2"] {
        let nginx = row(&rows, nginx);
        // An idle nginx: a master and its workers waiting, a few MiB.
        assert!(nginx.millicores < 100, "{nginx:?}");
        assert!((1..100).contains(&nginx.mebibytes), "{nginx:?}");
        assert!(
            burner.millicores > 4 * nginx.millicores + 100,
            "{burner:?} {nginx:?}"
        );
    }
    // A whole CPU of the machine's; far below it even on a busy machine.
    assert!(burner.millicores >= 200, "{burner:?}");
    assert!(row(&rows, "holder").mebibytes < 100, "{rows:?}");

    // Only the nginx pods, by label, as kubectl passes the selector to the Metrics API.
    let (_, selected) = parse(&k.ok(&["top", "pods", "-l", "app=nginx"]).await, 1);
    let mut names: Vec<&str> = selected.iter().map(|row| row.names[0].as_str()).collect();
    names.sort();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);

    let (header, containers) = parse(&k.ok(&["top", "pod", "--containers"]).await, 2);
    assert_eq!(header, ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]);
    let names = |pod: &str| -> Vec<String> {
        containers
            .iter()
            .filter(|row| row.names[0] == pod)
            .map(|row| row.names[1].clone())
            .collect()
    };
    assert_eq!(names("web-0"), ["nginx"]);
    assert_eq!(names("burner"), ["burn"]);
    assert_eq!(names("holder"), ["hold"]);

    let (header, nodes) = parse_with(&k.ok(&["top", "nodes"]).await, 1, true);
    assert_eq!(
        header,
        ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    );
    let node = row(&nodes, "k8s-labs-node");
    // Every pod of the node: at least the burner's CPU and the holder's memory.
    assert!(node.millicores >= 200, "{node:?}");
    assert!(node.mebibytes >= 60, "{node:?}");

    let missing = k.fails(&["top", "pod", "nosuch"]).await;
    assert_eq!(
        missing,
        "Error from server (NotFound): pods \"nosuch\" not found\n"
    );

    // The objects themselves, as metrics-server writes them.
    let raw = k
        .ok(&[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-0",
        ])
        .await;
    let object: serde_json::Value = serde_json::from_str(&raw).expect("PodMetrics JSON");
    assert_eq!(object["kind"], "PodMetrics");
    assert_eq!(object["metadata"]["labels"]["app"], "nginx");
    // The time between the node's two latest samples: about its period (a Go duration).
    let window = object["window"].as_str().unwrap_or_default();
    let seconds: f64 = match window.strip_suffix("ms") {
        Some(millis) => millis.parse::<f64>().unwrap_or(0.0) / 1000.0,
        None => window.trim_end_matches('s').parse().unwrap_or(0.0),
    };
    assert!((0.5..3.0).contains(&seconds), "{object}");
    let cpu = object["containers"][0]["usage"]["cpu"]
        .as_str()
        .unwrap_or_default();
    assert!(
        cpu == "0" || cpu.ends_with(['n', 'u', 'm']),
        "nanocores: {object}"
    );
    let memory = object["containers"][0]["usage"]["memory"]
        .as_str()
        .unwrap_or_default();
    assert!(memory.ends_with("Ki") || memory.ends_with("Mi"), "{object}");
    let raw = k
        .ok(&["get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"])
        .await;
    let list: serde_json::Value = serde_json::from_str(&raw).expect("NodeMetricsList JSON");
    assert_eq!(list["kind"], "NodeMetricsList");
    assert_eq!(list["items"][0]["metadata"]["name"], "k8s-labs-node");

    // `kubectl get` asks for a Table: metrics-server's columns.
    let table = k.ok(&["get", "podmetrics", "web-0"]).await;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "CPU", "MEMORY", "WINDOW"], "{table}");

    cluster.stop().await.expect("the cluster stops cleanly");
    let _ = std::fs::remove_dir_all(&scratch);
}
