//! The committed handouts (handouts/<lab>.md and <lab>.zh.md) are what a fresh run of every
//! lab writes, exactly, after redaction: course material cannot drift from what the cluster
//! really does. Runs `cargo xtask lab --all --transcript DIR` against an embedded cluster
//! reached through its kubeconfig, the way an instructor regenerates them.
//!
//! Needs root and `scripts/install-deps` (the embedded cluster runs pods with runc).

mod common;

use std::path::{Path, PathBuf};

use common::start_cluster;
use k8s_labs_harness::Language;
use k8s_labs_harness::expect::unified_diff;
use k8s_labs_harness::report::transcript::transcript_file_name;
use tokio::process::Command;

const LABS: [&str; 3] = ["statefulset-dns", "replicaset-scale", "pvc-templates"];

fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../handouts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_handouts_match_a_fresh_run() {
    let (cluster, kubeconfig, dir) = start_cluster("handouts").await;
    let fresh = dir.join("handouts");
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .args(["lab", "--all", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--transcript")
        .arg(&fresh)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    cluster.stop().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");

    let mut expected_files = Vec::new();
    let mut drifted = Vec::new();
    for lab in LABS {
        for language in [Language::En, Language::Zh] {
            let name = transcript_file_name(lab, language);
            let actual = std::fs::read_to_string(fresh.join(&name)).unwrap();
            let committed = std::fs::read_to_string(committed_dir().join(&name))
                .unwrap_or_else(|error| format!("(cannot read handouts/{name}: {error})\n"));
            if same_pull_state(&committed) != same_pull_state(&actual) {
                drifted.push(format!(
                    "handouts/{name} differs from a fresh run:\n{}",
                    unified_diff(&committed, &actual)
                ));
            }
            expected_files.push(name);
        }
    }
    assert!(
        drifted.is_empty(),
        "{}\nrerun `cargo xtask lab --all --transcript handouts/` to update the handouts",
        drifted.join("\n")
    );
    // No stale handout of a lab that no longer exists.
    let mut committed_files: Vec<String> = std::fs::read_dir(committed_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .collect();
    committed_files.sort();
    expected_files.sort();
    assert_eq!(committed_files, expected_files, "files in handouts/");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A pod whose image cannot be pulled shows ErrImagePull after each try and ImagePullBackOff
/// while it waits for the next, so which one a run catches depends on timing: they are one
/// state for this comparison.
fn same_pull_state(handout: &str) -> String {
    handout.replace("ImagePullBackOff", "ErrImagePull")
}
