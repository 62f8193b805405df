//! Containers with `tty: true`, as `kubectl run -i --tty` makes them: the shell runs on a
//! terminal, attach types into it and resizes it, the log is the terminal's output, and the
//! attached client leaving closes stdin (`stdinOnce`), which ends the shell. Needs root.

use crate::common;

use bytes::Bytes;
use common::{
    Cluster, create_pod, delete_and_wait, first_container, request, running_and_ready, wait_for,
};
use futures::AsyncReadExt as _;
use k8s_labs_node_api::{ExitStatus, TerminalSize};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};

/// The output as a terminal shows it. A tty container's shell runs on runc's foreground
/// terminal relay (`runc run`), which clears `onlcr` on the container's terminal after the
/// shell may have started (opencontainers/runc#2425): now and then its lines end in `\r\r\n`.
/// A terminal shows that exactly like `\r\n`. (An exec's terminal is the node's own and is
/// checked byte for byte.)
fn as_shown(output: &str) -> String {
    output.replace("\r\r\n", "\r\n")
}

/// Reads the session's output into `seen` until `text` shows up after byte `from` of it, as
/// `shown` renders what was seen.
async fn read_until_from(
    output: &mut tokio::sync::mpsc::Receiver<Bytes>,
    seen: &mut String,
    from: usize,
    text: &str,
    shown: fn(&str) -> String,
) {
    while !shown(&seen[from..]).contains(text) {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), output.recv())
            .await
            .unwrap_or_else(|_| panic!("no {text:?} within 20 s: {seen:?}"))
            .unwrap_or_else(|| panic!("the output ended before {text:?}: {seen:?}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// The bytes as they came.
fn exact(output: &str) -> String {
    output.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tty_container_runs_its_shell_on_a_terminal_that_attach_drives() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let created = create_pod(
        &pods,
        serde_json::json!({
            "metadata": {"name": "dns-test"},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main",
                "image": "busybox:1.28", "stdin": true, "stdinOnce": true, "tty": true}]},
        }),
    )
    .await;
    wait_for(&pods, "dns-test", running_and_ready).await;
    // The shell puts its terminal in raw mode before its first prompt. A line typed before
    // that is echoed by the terminal, then again by the shell's line editor, which redraws
    // it: wait for the prompt in the log.
    let log = pods
        .log_stream(
            "dns-test",
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    let mut log = std::pin::pin!(log);
    let mut logged = Vec::new();
    while !String::from_utf8_lossy(&logged).contains("/ # ") {
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(std::time::Duration::from_secs(20), log.read(&mut chunk))
            .await
            .expect("the first prompt within 20 s")
            .unwrap();
        assert_ne!(read, 0, "the log ended before the prompt: {logged:?}");
        logged.extend_from_slice(&chunk[..read]);
    }
    let connection = cluster.nodes.get(common::NODE).unwrap();

    let mut attach = request("dns-test", &[]);
    attach.stdin = true;
    attach.tty = true;
    attach.stderr = false;
    let session = connection.attach(attach).await.unwrap();
    assert!(session.stderr.is_none());
    let stdin = session.stdin.unwrap();
    let mut stdout = session.stdout.unwrap();
    let resize = session.resize.expect("a tty container can be resized");
    resize
        .send(TerminalSize {
            width: 101,
            height: 33,
        })
        .await
        .unwrap();
    let mut seen = String::new();
    // The shell's line editor redraws its line when the size changes (SIGWINCH): typing
    // before that redraw would be redrawn part way through.
    read_until_from(&mut stdout, &mut seen, 0, "\x1b[J", as_shown).await;
    let typed_from = seen.len();
    // The shell is on a terminal of the size the client set (runc relays the size to the
    // container's own terminal on SIGWINCH; `stty size` asks that terminal).
    stdin
        .send(Bytes::from_static(b"tty; stty size\r"))
        .await
        .unwrap();
    // Up to the next prompt and busybox's cursor position query after it: the shell is
    // waiting for input again (a hangup while it writes would make it exit 2, not 0).
    read_until_from(
        &mut stdout,
        &mut seen,
        typed_from,
        "33 101\r\n/ # \x1b[6n",
        as_shown,
    )
    .await;
    assert!(as_shown(&seen).contains("/dev/pts/0\r\n"), "{seen:?}");

    // The client leaves: with stdinOnce its stdin closes; the shell reads end of file and
    // exits 0, so the pod succeeds.
    drop(stdin);
    drop(stdout);
    drop(resize);
    drop(session.exit);
    let done = wait_for(&pods, "dns-test", |pod| {
        pod.and_then(|pod| pod.status.as_ref())
            .and_then(|status| status.phase.as_deref())
            == Some("Succeeded")
    })
    .await;
    let terminated = first_container(Some(&done))
        .unwrap()
        .state
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(terminated.exit_code, 0);
    // The log is what the terminal showed: the echo of the typed line and the answers. (busybox
    // asks the terminal for the cursor position after each prompt; this client does not answer,
    // so a line typed before the query times out is redrawn part way through.)
    let log = pods.logs("dns-test", &LogParams::default()).await.unwrap();
    assert!(
        log.contains("stty size\r\n/dev/pts/0\r\n33 101\r\n"),
        "{log:?}"
    );
    delete_and_wait(&cluster, &pods, &created).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_of_a_tty_container_exiting_ends_the_attach_with_success() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let created = create_pod(
        &pods,
        serde_json::json!({
            "metadata": {"name": "shell"},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main",
                "image": "busybox", "stdin": true, "stdinOnce": true, "tty": true}]},
        }),
    )
    .await;
    wait_for(&pods, "shell", running_and_ready).await;
    let connection = cluster.nodes.get(common::NODE).unwrap();
    let mut attach = request("shell", &[]);
    attach.stdin = true;
    attach.tty = true;
    attach.stderr = false;
    let session = connection.attach(attach).await.unwrap();
    let stdin = session.stdin.unwrap();
    let mut stdout = session.stdout.unwrap();
    stdin.send(Bytes::from_static(b"exit 4\r")).await.unwrap();
    while stdout.recv().await.is_some() {}
    assert_eq!(session.exit.await.unwrap(), ExitStatus::Code(4));
    let done = wait_for(&pods, "shell", |pod| {
        pod.and_then(|pod| pod.status.as_ref())
            .and_then(|status| status.phase.as_deref())
            == Some("Failed")
    })
    .await;
    let terminated = first_container(Some(&done))
        .unwrap()
        .state
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(terminated.exit_code, 4);
    delete_and_wait(&cluster, &pods, &created).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_with_a_tty_follows_the_clients_terminal_size() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let created = create_pod(
        &pods,
        serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "main", "image": "busybox",
                "command": ["sh", "-c", "while true; do sleep 3600; done"]}]},
        }),
    )
    .await;
    wait_for(&pods, "web", running_and_ready).await;
    let connection = cluster.nodes.get(common::NODE).unwrap();

    // The process starts on a terminal with the kernel's defaults, which nobody changes under
    // it: `\n` goes out as `\r\n` (onlcr), once, and the node relays the bytes as they are.
    let mut settings = request("web", &["stty", "-a"]);
    settings.tty = true;
    settings.stderr = false;
    let session = connection.exec(settings).await.unwrap();
    let mut stdout = session.stdout.unwrap();
    let mut shown = String::new();
    while let Some(chunk) = stdout.recv().await {
        shown.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(session.exit.await.unwrap(), ExitStatus::Code(0));
    let flags: Vec<&str> = shown.split_whitespace().collect();
    assert!(
        flags.contains(&"onlcr") && !flags.contains(&"-onlcr"),
        "{shown:?}"
    );
    assert!(
        shown.ends_with("\r\n") && !shown.contains("\r\r\n") && !shown.contains("\n\n"),
        "{shown:?}"
    );

    let mut exec = request("web", &["sh"]);
    exec.stdin = true;
    exec.tty = true;
    exec.stderr = false;
    let session = connection.exec(exec).await.unwrap();
    let stdin = session.stdin.unwrap();
    let mut stdout = session.stdout.unwrap();
    let resize = session.resize.unwrap();
    let mut seen = String::new();
    for (width, height) in [(80u16, 24u16), (100, 30)] {
        resize.send(TerminalSize { width, height }).await.unwrap();
        let wanted = format!("{height} {width}\r\n");
        // The size and the keys reach the terminal through two channels of the session, in
        // no set order; each try waits for the shell's answer.
        let mut tries = 0;
        while !seen.contains(&wanted) {
            tries += 1;
            assert!(tries < 50, "never {wanted:?}: {seen:?}");
            let from = seen.len();
            stdin
                .send(Bytes::from_static(b"stty size\r"))
                .await
                .unwrap();
            // The answer is followed by the next prompt.
            read_until_from(&mut stdout, &mut seen, from, "\r\n/ # ", exact).await;
        }
    }
    stdin
        .send(Bytes::from_static(b"echo $TERM; exit 3\r"))
        .await
        .unwrap();
    while let Some(chunk) = stdout.recv().await {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("\r\nxterm\r\n"), "{seen:?}");
    assert_eq!(session.exit.await.unwrap(), ExitStatus::Code(3));
    delete_and_wait(&cluster, &pods, &created).await;
    cluster.stop().await;
}
