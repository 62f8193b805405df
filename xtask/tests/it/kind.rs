//! `--cluster kind` end to end with a fake `kind` on PATH: a shell script that records its
//! arguments and, for `create cluster`, writes the kubeconfig of an API server this test runs
//! (kind's own would point at the node container). What is checked is what xtask asks kind to
//! do, and that a cluster it created never outlives a run that did not keep it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_labs_apiserver::testing::TestApiServer;

/// Guards against a hang; never a timed assertion.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Writes `script` to `path` as an executable through a child `sh`, so that this process
/// never holds the file open for writing: the tests beside this one spawn processes, and a
/// child forked while this process had the file open keeps that descriptor until it execs;
/// running the script in that moment failed with ETXTBSY ("Text file busy", seen in a
/// `cargo test --workspace` run). Written by another process, no child of this one can
/// hold it.
fn write_executable(path: &Path, script: &str) {
    use std::io::Write as _;
    let mut writer = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).unwrap();
    drop(stdin);
    assert!(
        writer.wait().unwrap().success(),
        "writing {}",
        path.display()
    );
}

struct FakeKind {
    dir: PathBuf,
}

impl FakeKind {
    /// A fake kind of release `release` whose `create cluster` sleeps `create_seconds`, then
    /// copies `kubeconfig` where `--kubeconfig` says (as kind writes the new cluster's).
    fn new(test: &str, release: &str, create_seconds: u32, kubeconfig: &str) -> FakeKind {
        let dir = std::env::temp_dir().join(format!("xtask-kind-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("source-kubeconfig"), kubeconfig).unwrap();
        let script = format!(
            r#"#!/bin/sh
echo "$*" >> '{log}'
case "$1" in
  version) echo 'kind {release} go1.24.6 linux/amd64' ;;
  create)
    sleep {create_seconds}
    while [ "$#" -gt 0 ]; do
      if [ "$1" = "--kubeconfig" ]; then cp '{source}' "$2"; fi
      shift
    done ;;
esac
exit 0
"#,
            log = dir.join("log").display(),
            source = dir.join("source-kubeconfig").display(),
        );
        write_executable(&dir.join("bin/kind"), &script);
        FakeKind { dir }
    }

    /// `cargo xtask ARGS` with the fake kind first on PATH.
    fn xtask(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        let path = std::env::var("PATH").unwrap_or_default();
        command
            .args(args)
            .env("PATH", format!("{}:{path}", self.dir.join("bin").display()))
            // What the run leaves for a kept cluster (its kubeconfig) goes with the fake.
            .env("TMPDIR", &self.dir)
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        command
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The cluster name of the `create cluster` call.
    fn created_name(&self) -> String {
        let calls = self.calls();
        let create = calls
            .iter()
            .find(|call| call.starts_with("create cluster --name "))
            .unwrap_or_else(|| panic!("no create call: {calls:?}"));
        create.split(' ').nth(3).unwrap().to_string()
    }
}

impl Drop for FakeKind {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_one_error_line(output: &Output, starts: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("error: {starts}")), "{stderr}");
}

#[test]
fn without_kind_on_path_the_run_stops_with_one_line_and_exit_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["lab", "statefulset-dns", "--cluster", "kind"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_one_error_line(&output, "--cluster kind needs the `kind` binary on PATH");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("https://kind.sigs.k8s.io/"), "{stderr}");
    assert!(stderr.contains("--kubeconfig PATH"), "{stderr}");
}

#[test]
fn an_old_kind_is_refused_naming_both_releases() {
    let fake = FakeKind::new("old", "v0.29.0", 0, "");
    let output = fake
        .xtask(&[
            "lab",
            "--all",
            "--cluster",
            "kind",
            "--k8s-version",
            "v1.36",
        ])
        .output()
        .unwrap();
    assert_one_error_line(
        &output,
        "kind v0.29.0 on PATH is older than kind v0.32.0, which published the node image for Kubernetes v1.36",
    );
    assert_eq!(fake.calls(), ["version"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_up_creates_a_kind_cluster_from_the_pinned_image_and_leaves_it_up() {
    let api = TestApiServer::start().await.unwrap();
    let fake = FakeKind::new("up", "v0.30.0", 0, &api.https_kubeconfig());
    let out = fake.dir.join("out/kubeconfig");
    let output = fake
        .xtask(&[
            "cluster",
            "up",
            "--cluster",
            "kind",
            "--kubeconfig-out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let name = fake.created_name();
    let calls = fake.calls();
    assert_eq!(calls.len(), 2, "no delete after `cluster up`: {calls:?}");
    assert!(
        calls[1].starts_with(&format!(
            "create cluster --name {name} --image kindest/node:v1.33.4@sha256:25a6018e48dfcaee478f4a59af81157a437f15e6e140bf103f85a2e7cd0cbbf2 --wait 5m --kubeconfig /"
        )),
        "{calls:?}"
    );
    assert!(
        stdout.contains(&format!("kind cluster {name} v1.33.0")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("kind delete cluster --name {name}")),
        "{stdout}"
    );
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.contains(&api.server.https_url()), "{written}");
    api.shutdown().await;
}

/// Waits until the fake kind in `dir` logged a `create` call, as the hang guard allows.
fn wait_for_create(dir: &Path) {
    let start = Instant::now();
    let created = || {
        std::fs::read_to_string(dir.join("log"))
            .is_ok_and(|log| log.lines().any(|call| call.starts_with("create ")))
    };
    while !created() {
        assert!(start.elapsed() < HANG_GUARD, "kind create never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on the PID of a child this test spawned and has not reaped yet.
    let result = unsafe { libc::kill(i32::try_from(pid).unwrap(), signal) };
    assert_eq!(result, 0);
}

async fn stopped_by(signal_number: i32, exit: i32, test: &str, args: &[&str]) {
    let api = TestApiServer::start().await.unwrap();
    let fake = FakeKind::new(test, "v0.30.0", 2, &api.https_kubeconfig());
    let child = fake
        .xtask(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dir = fake.dir.clone();
    tokio::task::spawn_blocking(move || wait_for_create(&dir))
        .await
        .unwrap();
    signal(child.id(), signal_number);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(exit),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let name = fake.created_name();
    let calls = fake.calls();
    let deletes: Vec<&String> = calls
        .iter()
        .filter(|call| call.starts_with(&format!("delete cluster --name {name} --kubeconfig ")))
        .collect();
    assert_eq!(deletes.len(), 1, "{calls:?}");
    assert_eq!(calls.last(), Some(deletes[0]), "{calls:?}");
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lab_run_stopped_by_sigint_while_kind_creates_deletes_the_cluster() {
    stopped_by(
        libc::SIGINT,
        130,
        "lab-int",
        &["lab", "statefulset-dns", "--cluster", "kind"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_up_stopped_by_sigterm_while_kind_creates_deletes_the_cluster() {
    stopped_by(
        libc::SIGTERM,
        143,
        "up-term",
        &["cluster", "up", "--cluster", "kind"],
    )
    .await;
}
