//! The real kubectl against the API server: `exec` (WebSocket, kubectl 1.30+), `logs`, and
//! the answer an SPDY-only kubectl gets.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::streaming::{kubectl_kubeconfig, running_pod, start};
use k8s_labs_apiserver::testing::kubectl_binary;
use tokio::io::AsyncWriteExt;

struct Kubeconfig(PathBuf);

impl Kubeconfig {
    fn write(yaml: &str, test: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "k8s-labs-streaming-{}-{test}.kubeconfig",
            std::process::id()
        ));
        std::fs::write(&path, yaml).unwrap();
        Kubeconfig(path)
    }
}

impl Drop for Kubeconfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run(
    binary: &Path,
    kubeconfig: &Kubeconfig,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    let mut command = tokio::process::Command::new(binary);
    command
        .arg("--kubeconfig")
        .arg(&kubeconfig.0)
        .args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let output = child.wait_with_output().await.unwrap();
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn kubectl_exec_prints_the_output_and_exits_with_the_code() {
    let kubectl = kubectl_binary(33);
    let harness = start().await;
    running_pod(&harness.client, "web-1").await;
    let config = Kubeconfig::write(&kubectl_kubeconfig(&harness), "exec");

    let ok = run(
        &kubectl,
        &config,
        &["exec", "web-1", "--", "echo", "hi"],
        None,
        &[],
    )
    .await;
    assert_eq!(
        (ok.code, ok.stdout.as_str(), ok.stderr.as_str()),
        (Some(0), "hi\n", "")
    );

    let failed = run(
        &kubectl,
        &config,
        &["exec", "web-1", "--", "sh", "-c", "echo bad >&2; exit 3"],
        None,
        &[],
    )
    .await;
    assert_eq!(failed.code, Some(3));
    assert_eq!(failed.stderr, "bad\ncommand terminated with exit code 3\n");

    let piped = run(
        &kubectl,
        &config,
        &["exec", "-i", "web-1", "--", "cat"],
        Some("from stdin\n"),
        &[],
    )
    .await;
    assert_eq!(
        (piped.code, piped.stdout.as_str()),
        (Some(0), "from stdin\n")
    );

    let wrong = run(
        &kubectl,
        &config,
        &["exec", "web-1", "-c", "x", "--", "true"],
        None,
        &[],
    )
    .await;
    assert_eq!(wrong.code, Some(1));
    assert_eq!(
        wrong.stderr,
        "Error from server (BadRequest): container x is not valid for pod web-1\n"
    );
}

#[tokio::test]
async fn kubectl_logs_reads_the_container_log() {
    let kubectl = kubectl_binary(33);
    let harness = start().await;
    running_pod(&harness.client, "web-0").await;
    let config = Kubeconfig::write(&kubectl_kubeconfig(&harness), "logs");

    let logs = run(&kubectl, &config, &["logs", "web-0", "--tail=2"], None, &[]).await;
    assert_eq!(
        (logs.code, logs.stdout.as_str()),
        (Some(0), "line 4\nline 5\n"),
        "{}",
        logs.stderr
    );
}

#[tokio::test]
async fn an_spdy_only_kubectl_is_told_what_to_use() {
    let kubectl = kubectl_binary(29);
    let harness = start().await;
    running_pod(&harness.client, "web-0").await;
    let config = Kubeconfig::write(&kubectl_kubeconfig(&harness), "spdy");

    let spdy = run(
        &kubectl,
        &config,
        &["exec", "web-0", "--", "true"],
        None,
        &[],
    )
    .await;
    assert_eq!(spdy.code, Some(1));
    assert!(
        spdy.stderr
            .contains("this API server streams exec and attach over WebSocket only"),
        "{}",
        spdy.stderr
    );

    let websocket = [("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "true")];
    // 1.29's WebSocket client (alpha) can read a message before it has registered its streams,
    // and then discards output that arrived at once ("Unknown stream id 1"); later clients
    // register their streams under a lock first. Up to 3 tries.
    let mut tries = 0;
    let enabled = loop {
        let output = run(
            &kubectl,
            &config,
            &["exec", "web-0", "--", "echo", "hi"],
            None,
            &websocket,
        )
        .await;
        tries += 1;
        if tries == 3 || !output.stderr.contains("Unknown stream id") {
            break output;
        }
    };
    assert_eq!(
        (enabled.code, enabled.stdout.as_str()),
        (Some(0), "hi\n"),
        "{}",
        enabled.stderr
    );
}
