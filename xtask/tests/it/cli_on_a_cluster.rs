//! `cargo xtask lab` as a user runs it, against an embedded cluster started separately and
//! reached through its kubeconfig — the same path a kind, k3s or cloud cluster takes:
//! all labs in parallel with every report written, and a run interrupted by SIGINT that
//! must leave no namespace behind and exit 130.
//!
//! Needs root and `scripts/install-deps` (the embedded cluster runs pods with runc).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{lab_namespaces, start_cluster};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// One embedded cluster at a time: the tests take turns.
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn xtask() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_labs_pass_in_parallel_through_a_kubeconfig_and_write_their_reports() {
    let _turn = CLUSTER.lock().await;
    let (cluster, kubeconfig, dir) = start_cluster("all").await;
    let output = xtask()
        .args(["lab", "--all", "--jobs", "3", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--junit")
        .arg(dir.join("junit.xml"))
        .arg("--json")
        .arg(dir.join("results.json"))
        .arg("--transcript")
        .arg(dir.join("handouts"))
        .output()
        .await
        .unwrap();
    let left = lab_namespaces(&cluster).await;
    cluster.stop().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for lab in ["statefulset-dns", "replicaset-scale", "pvc-templates"] {
        assert!(
            stdout.contains(&format!("[{lab}] PASSED {lab}")),
            "each lab's lines carry its prefix:\n{stdout}"
        );
        assert!(dir.join(format!("handouts/{lab}.md")).is_file());
        assert!(dir.join(format!("handouts/{lab}.zh.md")).is_file());
    }
    assert!(left.is_empty(), "namespaces left: {left:?}");

    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<testsuites name=\"k8s-labs\"")
            && junit.contains("failures=\"0\" errors=\"0\""),
        "{junit}"
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["passed"], serde_json::json!(true));
    assert_eq!(results["labs"].as_array().unwrap().len(), 3);
    let handout = std::fs::read_to_string(dir.join("handouts/statefulset-dns.md")).unwrap();
    assert!(handout.contains("$ kubectl apply -f web.yaml"), "{handout}");
    assert!(
        !handout.contains("lab-statefulset-dns-"),
        "the namespace is redacted"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_lab_deletes_the_namespace_and_exits_130() {
    let _turn = CLUSTER.lock().await;
    let (cluster, kubeconfig, dir) = start_cluster("sigint").await;
    let mut child = xtask()
        .args(["lab", "statefulset-dns", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = String::new();
    // Interrupt while the pods are starting (step 2 waits for them).
    let reached_step_2 = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("[2/") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(reached_step_2, "the lab did not reach step 2:\n{seen}");
    let namespaces_during = lab_namespaces(&cluster).await;
    let pid = Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    kill(pid, Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(90), child.wait())
        .await
        .expect("xtask exits after SIGINT")
        .unwrap();
    while let Some(line) = lines.next_line().await.unwrap() {
        seen.push_str(&line);
        seen.push('\n');
    }
    let left = lab_namespaces(&cluster).await;
    cluster.stop().await.unwrap();
    assert_eq!(namespaces_during.len(), 1, "{namespaces_during:?}");
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("INTERRUPTED statefulset-dns"), "{seen}");
    assert!(seen.contains("deleted"), "{seen}");
    assert!(left.is_empty(), "namespaces left after SIGINT: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
