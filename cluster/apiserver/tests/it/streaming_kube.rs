//! exec, attach and logs through the API server, driven by kube-rs 5 (the labs' client),
//! against a node that runs real local processes.

use std::time::Duration;

use crate::support::streaming::{NodeEvent, running_pod, start};
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, LogParams, PostParams, TerminalSize};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn read_all(reader: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut text = String::new();
    reader.unwrap().read_to_string(&mut text).await.unwrap();
    text
}

/// Waits for the next event of the fake node; the timeout only turns a hang into a failure.
async fn next_event(events: &mut tokio::sync::mpsc::UnboundedReceiver<NodeEvent>) -> NodeEvent {
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("the node saw nothing")
        .expect("the node is gone")
}

fn api_error<T>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message),
        Err(other) => panic!("expected an API error, got {other:?}"),
        Ok(_) => panic!("expected an API error, got success"),
    }
}

#[tokio::test]
async fn exec_streams_stdout_and_stderr_and_reports_the_exit_code() {
    let harness = start().await;
    let pods = running_pod(&harness.client, "web-0").await;

    let mut process = pods
        .exec(
            "web-0",
            ["sh", "-c", "echo out; echo err >&2; exit 3"],
            &AttachParams::default(),
        )
        .await
        .unwrap();
    let status = process.take_status().unwrap();
    let (stdout, stderr) = tokio::join!(read_all(process.stdout()), read_all(process.stderr()));
    let status = status.await.unwrap();
    assert_eq!(stdout, "out\n");
    assert_eq!(stderr, "err\n");
    assert_eq!(status.status.as_deref(), Some("Failure"));
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let cause = &status.details.unwrap().causes.unwrap()[0];
    assert_eq!(cause.reason.as_deref(), Some("ExitCode"));
    assert_eq!(cause.message.as_deref(), Some("3"));
    assert_eq!(
        status.message.as_deref(),
        Some(
            "command terminated with non-zero exit code: error executing command [sh -c echo out; echo err >&2; exit 3], exit code 3"
        )
    );
    process.join().await.unwrap();

    let mut process = pods
        .exec("web-0", ["true"], &AttachParams::default())
        .await
        .unwrap();
    let status = process.take_status().unwrap().await.unwrap();
    assert_eq!(status.status.as_deref(), Some("Success"));
}

#[tokio::test]
async fn exec_pipes_stdin_and_closes_it() {
    let harness = start().await;
    let pods = running_pod(&harness.client, "web-0").await;

    let params = AttachParams::default().stdin(true).stderr(false);
    let mut process = pods
        .exec("web-0", ["sh", "-c", "cat; echo done"], &params)
        .await
        .unwrap();
    let mut stdin = process.stdin().unwrap();
    let stdout = process.stdout();
    let status = process.take_status().unwrap();
    stdin.write_all(b"hello from stdin\n").await.unwrap();
    // Closing stdin sends the v5 close signal; cat sees end of file and the command ends.
    stdin.shutdown().await.unwrap();
    assert_eq!(read_all(stdout).await, "hello from stdin\ndone\n");
    assert_eq!(status.await.unwrap().status.as_deref(), Some("Success"));
}

#[tokio::test]
async fn exec_with_a_tty_forwards_resizes_and_merges_output() {
    let mut harness = start().await;
    let pods = running_pod(&harness.client, "web-0").await;

    let mut process = pods
        .exec(
            "web-0",
            ["sh", "-c", "read line; echo \"got $line\"; echo oops >&2"],
            &AttachParams::interactive_tty(),
        )
        .await
        .unwrap();
    let mut resize = process.terminal_size().unwrap();
    let mut stdin = process.stdin().unwrap();
    let stdout = process.stdout();
    let status = process.take_status().unwrap();
    futures::SinkExt::send(
        &mut resize,
        TerminalSize {
            width: 120,
            height: 40,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        next_event(&mut harness.events).await,
        NodeEvent::Resized(k8s_labs_node_api::TerminalSize {
            width: 120,
            height: 40
        })
    );
    stdin.write_all(b"abc\n").await.unwrap();
    assert_eq!(read_all(stdout).await, "got abc\noops\n");
    assert_eq!(status.await.unwrap().status.as_deref(), Some("Success"));
}

#[tokio::test]
async fn a_client_that_goes_away_ends_the_session_on_the_node() {
    let mut harness = start().await;
    let pods = running_pod(&harness.client, "web-0").await;

    let params = AttachParams::default().stdin(true);
    let mut process = pods
        .exec("web-0", ["sh", "-c", "echo ready; cat"], &params)
        .await
        .unwrap();
    let mut stdout = process.stdout().unwrap();
    let mut first = [0u8; 6];
    stdout.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"ready\n");
    // The process waits on stdin forever; the client disconnects instead of closing it.
    process.abort();
    drop(process);
    assert_eq!(
        next_event(&mut harness.events).await,
        NodeEvent::SessionDropped("exec")
    );
}

#[tokio::test]
async fn attach_connects_to_the_main_process() {
    let harness = start().await;
    let pods = running_pod(&harness.client, "web-0").await;

    let mut process = pods
        .attach(
            "web-0",
            &AttachParams::default().stdin(true).container("main"),
        )
        .await
        .unwrap();
    let mut stdin = process.stdin().unwrap();
    let (stdout, stderr) = (process.stdout(), process.stderr());
    let status = process.take_status().unwrap();
    stdin.write_all(b"one\ntwo\n").await.unwrap();
    stdin.shutdown().await.unwrap();
    let (stdout, stderr) = tokio::join!(read_all(stdout), read_all(stderr));
    assert_eq!(stdout, "main got one\nmain got two\n");
    assert_eq!(stderr, "bye\n");
    assert_eq!(status.await.unwrap().status.as_deref(), Some("Success"));
}

#[tokio::test]
async fn exec_errors_are_status_answers_like_the_real_server() {
    let harness = start().await;
    let pods = running_pod(&harness.client, "web-0").await;

    let wrong_container = AttachParams::default().container("nope");
    let (code, message) = api_error(pods.exec("web-0", ["true"], &wrong_container).await);
    assert_eq!(
        (code, message.as_str()),
        (400, "container nope is not valid for pod web-0")
    );

    let unscheduled: Pod = serde_json::from_value(json!({"metadata": {"name": "pending"},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &unscheduled)
        .await
        .unwrap();
    let (code, message) = api_error(
        pods.exec("pending", ["true"], &AttachParams::default())
            .await,
    );
    assert_eq!(
        (code, message.as_str()),
        (400, "pod pending does not have a host assigned")
    );

    let (code, _) = api_error(
        pods.exec("missing", ["true"], &AttachParams::default())
            .await,
    );
    assert_eq!(code, 404);
}

#[tokio::test]
async fn logs_honour_tail_and_limit_bytes() {
    let harness = start().await;
    let pods = running_pod(&harness.client, "web-0").await;

    let all = pods.logs("web-0", &LogParams::default()).await.unwrap();
    assert_eq!(all, "line 1\nline 2\nline 3\nline 4\nline 5\n");
    let tail = LogParams {
        tail_lines: Some(2),
        ..LogParams::default()
    };
    assert_eq!(pods.logs("web-0", &tail).await.unwrap(), "line 4\nline 5\n");
    let limited = LogParams {
        limit_bytes: Some(10),
        ..LogParams::default()
    };
    assert_eq!(pods.logs("web-0", &limited).await.unwrap(), "line 1\nlin");

    let previous = LogParams {
        previous: true,
        ..LogParams::default()
    };
    let (code, message) = api_error(pods.logs("web-0", &previous).await);
    assert_eq!(code, 400);
    assert_eq!(
        message,
        "previous terminated container \"main\" in pod \"web-0\" not found"
    );
}

#[tokio::test]
async fn followed_logs_stream_until_the_client_leaves() {
    let mut harness = start().await;
    let pods = running_pod(&harness.client, "web-0").await;

    let follow = LogParams {
        follow: true,
        ..LogParams::default()
    };
    let stream = pods.log_stream("web-0", &follow).await.unwrap();
    let lines: Vec<String> = stream.lines().take(3).try_collect().await.unwrap();
    assert_eq!(lines, ["line 1", "line 2", "line 3"]);
    // Dropping the client's stream ends the node's log stream (no task left behind).
    assert_eq!(
        next_event(&mut harness.events).await,
        NodeEvent::SessionDropped("log")
    );
}

#[tokio::test]
async fn logs_of_a_container_not_started_yet_say_so() {
    let harness = start().await;
    let pods: Api<Pod> = Api::namespaced(harness.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "web-1"},
        "spec": {"nodeName": crate::support::streaming::NODE,
                 "containers": [{"name": "nginx", "image": "nginx"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "nginx",
        "ready": false, "restartCount": 0, "image": "nginx", "imageID": "",
        "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
    pods.patch_status(
        "web-1",
        &Default::default(),
        &kube::api::Patch::Merge(&status),
    )
    .await
    .unwrap();
    let (code, message) = api_error(pods.logs("web-1", &LogParams::default()).await);
    assert_eq!(code, 400);
    assert_eq!(
        message,
        "container \"nginx\" in pod \"web-1\" is waiting to start: ContainerCreating"
    );
    let (code, _) = api_error(pods.exec("web-1", ["true"], &AttachParams::default()).await);
    assert_eq!(code, 400);
}
