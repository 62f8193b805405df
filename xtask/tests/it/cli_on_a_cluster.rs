//! `cargo xtask lab` as a user runs it, against an embedded cluster started separately and
//! reached through its kubeconfig — the same path a kind, k3s or cloud cluster takes: the one
//! end-to-end run of every lab (all in parallel, every report written and checked, the
//! transcripts compared with the committed handouts), and a run interrupted by SIGINT that
//! must leave no namespace behind and exit 130.
//!
//! Needs root and `scripts/install-deps` (the embedded cluster runs pods with runc).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{lab_namespaces, start_cluster};
use k8s_labs_harness::Language;
use k8s_labs_harness::expect::unified_diff;
use k8s_labs_harness::report::transcript::transcript_file_name;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn xtask() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    command
}

/// Every lab of the registry, with the number of its steps: each runs end to end once per
/// `cargo test --workspace`, here.
fn registered_labs() -> Vec<(&'static str, usize)> {
    xtask::registry::LABS
        .iter()
        .map(|entry| (entry.name, (entry.lab)().steps().len()))
        .collect()
}

fn committed_handouts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../handouts")
}

/// The one end-to-end run of every lab: `cargo xtask lab --all` in parallel through a
/// kubeconfig, as a user runs it. Every step of every lab passes (none skipped) and each
/// namespace is deleted; the JUnit and JSON reports say so; each line carries its lab's
/// prefix; and the transcripts are the committed handouts (handouts/<lab>.md and
/// <lab>.zh.md), exactly, after redaction, so course material cannot drift from what the
/// cluster really does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lab_passes_through_the_cli_with_its_reports_and_the_committed_handouts() {
    let _turn = common::cluster_turn().await;
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
    for (lab, _) in registered_labs() {
        assert!(
            stdout.contains(&format!("[{lab}] PASSED {lab}")),
            "each lab's lines carry its prefix:\n{stdout}"
        );
    }
    assert!(left.is_empty(), "namespaces left: {left:?}");

    // The JSON report: every step of every lab ran and passed, none skipped, and each lab
    // deleted its namespace.
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["passed"], serde_json::json!(true), "{results:#}");
    let labs = results["labs"].as_array().unwrap();
    assert_eq!(labs.len(), registered_labs().len(), "{results:#}");
    for (lab, steps) in registered_labs() {
        let report = labs
            .iter()
            .find(|report| report["lab"] == serde_json::json!(lab))
            .unwrap_or_else(|| panic!("no report of {lab}: {results:#}"));
        assert_eq!(report["passed"], serde_json::json!(true), "{report:#}");
        let statuses: Vec<&str> = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|step| step["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            vec!["passed"; steps],
            "every step of {lab} ran and passed (none skipped):\n{report:#}"
        );
        assert_eq!(
            report["namespace_deleted"],
            serde_json::json!(true),
            "{report:#}"
        );
    }

    // The JUnit report: a suite per lab, a case per step, no failure.
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<testsuites name=\"k8s-labs\"")
            && junit.contains("failures=\"0\" errors=\"0\""),
        "{junit}"
    );
    for (lab, steps) in registered_labs() {
        assert!(
            junit.contains(&format!("<testsuite name=\"{lab}\" tests=\"{steps}\"")),
            "{junit}"
        );
    }

    // The transcripts are the committed handouts, and no handout is stale.
    let fresh = dir.join("handouts");
    let mut expected_files = Vec::new();
    let mut drifted = Vec::new();
    for (lab, _) in registered_labs() {
        for language in [Language::En, Language::Zh] {
            let name = transcript_file_name(lab, language);
            let actual = std::fs::read_to_string(fresh.join(&name)).unwrap();
            let committed = std::fs::read_to_string(committed_handouts().join(&name))
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
    let mut committed_files: Vec<String> = std::fs::read_dir(committed_handouts())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .collect();
    committed_files.sort();
    expected_files.sort();
    assert_eq!(committed_files, expected_files, "files in handouts/");
    let handout = std::fs::read_to_string(fresh.join("statefulset-dns.md")).unwrap();
    assert!(handout.contains("$ kubectl apply -f web.yaml"), "{handout}");
    assert!(
        !handout.contains("lab-statefulset-dns-"),
        "the namespace is redacted"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A pod whose image cannot be pulled shows ErrImagePull after each try and ImagePullBackOff
/// while it waits for the next, so which one a run catches depends on timing: they are one
/// state for the comparison with the handouts.
fn same_pull_state(handout: &str) -> String {
    handout.replace("ImagePullBackOff", "ErrImagePull")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_lab_deletes_the_namespace_and_exits_130() {
    let _turn = common::cluster_turn().await;
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
