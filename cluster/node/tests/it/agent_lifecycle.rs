//! Pod lifecycles through the real API server: one-shot pods, crash loops, readiness probes,
//! attach, followed logs and exec with a tty. Needs root.

use crate::common;

use bytes::Bytes;
use common::{
    Cluster, collect, create_pod, delete_and_wait, first_container, pod_from, request,
    runc_processes, running_and_ready, stat_field, wait_for, wait_for_event,
};
use futures::StreamExt;
use k8s_labs_node_api::{ExitStatus, LogRequest, NodeError};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams, PostParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shot_busybox_pod_succeeds_and_its_log_has_the_output() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let script = "echo hello from $(hostname); readlink $(command -v nslookup)";
    let created = create_pod(
        &pods,
        serde_json::json!({
            "metadata": {"name": "dns-test"},
            "spec": {"restartPolicy": "Never", "containers": [
                {"name": "main", "image": "busybox:1.28", "command": ["sh", "-c", script]}]},
        }),
    )
    .await;
    let done = wait_for(&pods, "dns-test", |pod| {
        pod.and_then(|pod| pod.status.as_ref())
            .and_then(|status| status.phase.as_deref())
            == Some("Succeeded")
    })
    .await;
    let container = first_container(Some(&done)).unwrap();
    let terminated = container.state.unwrap().terminated.unwrap();
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (0, Some("Completed"))
    );
    let log = pods.logs("dns-test", &LogParams::default()).await.unwrap();
    assert_eq!(log, "hello from dns-test\n/usr/bin/nslookup\n");
    delete_and_wait(&cluster, &pods, &created).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_container_is_restarted_then_backs_off() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let created = create_pod(
        &pods,
        serde_json::json!({
            "metadata": {"name": "crasher"},
            "spec": {"containers": [
                {"name": "main", "image": "busybox", "command": ["sh", "-c", "exit 7"]}]},
        }),
    )
    .await;
    let backing_off = wait_for(&pods, "crasher", |pod| {
        first_container(pod)
            .and_then(|status| status.state)
            .and_then(|state| state.waiting)
            .and_then(|waiting| waiting.reason)
            .as_deref()
            == Some("CrashLoopBackOff")
    })
    .await;
    let container = first_container(Some(&backing_off)).unwrap();
    assert!(container.restart_count >= 1, "{container:?}");
    let last = container.last_state.unwrap().terminated.unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (7, Some("Error")));
    assert_eq!(
        backing_off.status.unwrap().phase.as_deref(),
        Some("Running")
    );
    wait_for_event(&cluster.client, |event| {
        event.reason.as_deref() == Some("BackOff")
    })
    .await;
    delete_and_wait(&cluster, &pods, &created).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_probes_run_from_inside_the_pod() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let with_probe = |name: &str, path: &str| {
        pod_from(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "nginx",
                "ports": [{"name": "http", "containerPort": 80}],
                "readinessProbe": {"httpGet": {"path": path, "port": "http"}, "periodSeconds": 1}}]},
        }))
    };
    let good = pods
        .create(&PostParams::default(), &with_probe("good", "/"))
        .await
        .unwrap();
    let bad = pods
        .create(&PostParams::default(), &with_probe("bad", "/nope"))
        .await
        .unwrap();
    wait_for(&pods, "good", running_and_ready).await;
    // (Probes before nginx listens fail with "connection refused"; then nginx answers 404.)
    wait_for_event(&cluster.client, |event| {
        event.reason.as_deref() == Some("Unhealthy")
            && event.involved_object.name.as_deref() == Some("bad")
            && event.message.as_deref()
                == Some("Readiness probe failed: HTTP probe failed with statuscode: 404")
    })
    .await;
    let bad_now = pods.get("bad").await.unwrap();
    assert!(
        !running_and_ready(Some(&bad_now)),
        "a failing probe keeps the pod unready"
    );
    assert!(
        first_container(Some(&bad_now))
            .unwrap()
            .state
            .unwrap()
            .running
            .is_some()
    );
    delete_and_wait(&cluster, &pods, &good).await;
    delete_and_wait(&cluster, &pods, &bad).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_follow_logs_and_tty_exec_reach_the_container() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let script = "echo ready; read line; echo \"got $line\"";
    let created = create_pod(
        &pods,
        serde_json::json!({
            "metadata": {"name": "talker"},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main",
                "image": "busybox", "stdin": true, "stdinOnce": true,
                "command": ["sh", "-c", script]}]},
        }),
    )
    .await;
    wait_for(&pods, "talker", running_and_ready).await;
    let connection = cluster.nodes.get(common::NODE).unwrap();

    // exec gets the image's environment: busybox's applet directory first on PATH.
    let which = connection
        .exec(request("talker", &["sh", "-c", "command -v nslookup"]))
        .await
        .unwrap();
    assert_eq!(
        collect(which.stdout.unwrap()).await,
        "/.k8s-labs/bin/nslookup\n"
    );

    // `runc exec` with pipes runs outside our process group: Ctrl-C's SIGINT to the
    // foreground process group must not reach it (it forwards signals to the process). With a
    // tty, `runc exec --detach` has exited once the process runs (as under containerd), and
    // the process, in a session of its own, is the node's child (it waits for it).
    let ours = nix::unistd::getpgrp().as_raw();
    for tty in [false, true] {
        let mut waiting = request("talker", &["sh", "-c", "echo started; read line"]);
        waiting.stdin = true;
        waiting.tty = tty;
        waiting.stderr = !tty;
        let session = connection.exec(waiting).await.unwrap();
        let stdin = session.stdin.unwrap();
        let mut stdout = session.stdout.unwrap();
        // Once the command writes, `runc exec` runs for sure.
        let mut output = Vec::new();
        while !String::from_utf8_lossy(&output).contains("started") {
            output.extend_from_slice(&stdout.recv().await.unwrap());
        }
        let execs = runc_processes(&cluster.state_dir, "exec");
        if tty {
            assert_eq!(execs, Vec::<i32>::new(), "runc exec --detach has exited");
            let shells = processes_with_args(&["sh", "-c", "echo started; read line"]);
            assert_eq!(shells.len(), 1, "{shells:?}");
            assert_eq!(
                stat_field(shells[0], 1),
                std::process::id() as i32,
                "its parent"
            );
            assert_ne!(
                stat_field(shells[0], 2),
                ours,
                "the exec'd shell in our group"
            );
        } else {
            assert_eq!(execs.len(), 1, "{execs:?}");
            assert_ne!(stat_field(execs[0], 2), ours, "runc exec in our group");
        }
        stdin.send(Bytes::from_static(b"done\n")).await.unwrap();
        drop(stdin);
        while stdout.recv().await.is_some() {}
        assert_eq!(
            session.exit.await.unwrap(),
            ExitStatus::Code(0),
            "tty {tty}"
        );
    }

    let mut tty_request = request("talker", &["tty"]);
    tty_request.tty = true;
    tty_request.stderr = false;
    let tty = connection.exec(tty_request).await.unwrap();
    assert!(tty.stderr.is_none());
    let output = collect(tty.stdout.unwrap()).await;
    assert!(output.starts_with("/dev/pts/"), "{output:?}");
    assert_eq!(tty.exit.await.unwrap(), ExitStatus::Code(0));

    let following = connection
        .logs(LogRequest {
            namespace: "default".into(),
            pod: "talker".into(),
            container: "main".into(),
            follow: true,
            previous: false,
            tail_lines: None,
            timestamps: false,
        })
        .await
        .unwrap();
    let mut attach_request = request("talker", &[]);
    attach_request.stdin = true;
    let session = connection.attach(attach_request).await.unwrap();
    let stdin = session.stdin.unwrap();
    stdin.send(Bytes::from_static(b"hello\n")).await.unwrap();
    drop(stdin);
    let attached = collect(session.stdout.unwrap()).await;
    // The first attach to a `kubectl run -i` container (stdin, stdinOnce) also gets what it
    // wrote before: "ready" came long before this attach (exec ran in between).
    assert_eq!(attached, "ready\ngot hello\n");
    assert_eq!(session.exit.await.unwrap(), ExitStatus::Code(0));
    // An ended container refuses an attach, so that kubectl shows the log instead.
    let again = request("talker", &[]);
    assert!(matches!(
        connection.check_attach(&again),
        Err(NodeError::BadRequest(_))
    ));
    assert!(connection.attach(again).await.is_err());
    // The followed log has everything and ends with the container.
    let log: Vec<u8> = following
        .map(|chunk| chunk.unwrap().to_vec())
        .concat()
        .await;
    assert_eq!(String::from_utf8(log).unwrap(), "ready\ngot hello\n");

    let missing = connection.exec(request("nobody", &["true"])).await;
    assert!(missing.is_err());
    delete_and_wait(&cluster, &pods, &created).await;
    cluster.stop().await;
}

/// The processes whose command line is exactly `args`.
fn processes_with_args(args: &[&str]) -> Vec<i32> {
    let wanted: Vec<u8> = args
        .iter()
        .flat_map(|arg| [arg.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<i32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            (cmdline == wanted).then_some(pid)
        })
        .collect()
}
