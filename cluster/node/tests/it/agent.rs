//! The whole node agent against the real embedded API server, through kube-rs only: a pod is
//! scheduled, runs real nginx, gets Ready with a pod IP, answers exec through the node
//! connection and through the API server, and is gone (network namespace included) after
//! deletion. Needs root.

use crate::common;

use std::time::{Duration, Instant};

use common::{Cluster, NODE, collect, pod, running_and_ready, wait_for_event};
use futures::StreamExt;
use k8s_labs_net::netns;
use k8s_labs_node_api::{ExecRequest, ExitStatus, LogRequest};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, AttachParams, DeleteParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nginx_pod_runs_serves_exec_and_is_removed_on_deletion() {
    let cluster = Cluster::start().await;
    let node: Node = Api::<Node>::all(cluster.client.clone())
        .get(NODE)
        .await
        .unwrap();
    let node_status = node.status.unwrap();
    let ready = node_status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    assert!(
        node_status
            .node_info
            .unwrap()
            .container_runtime_version
            .starts_with("runc://")
    );

    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let started = Instant::now();
    pods.create(&PostParams::default(), &pod("web-0", "nginx"))
        .await
        .unwrap();
    let running = tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(pods.clone(), "web-0", running_and_ready),
    )
    .await
    .expect("web-0 Running and Ready")
    .unwrap()
    .unwrap();
    eprintln!("pod create → Running+Ready: {:?}", started.elapsed());
    let status = running.status.clone().unwrap();
    let pod_ip = status.pod_ip.clone().unwrap();
    assert!(pod_ip.starts_with("10.244."), "{pod_ip}");
    assert_eq!(
        running.spec.as_ref().unwrap().node_name.as_deref(),
        Some(NODE)
    );
    let container = &status.container_statuses.unwrap()[0];
    assert_eq!(container.image, "docker.io/library/nginx:latest");
    assert!(
        container
            .container_id
            .as_deref()
            .unwrap()
            .starts_with("runc://")
    );
    assert!(container.state.as_ref().unwrap().running.is_some());

    // exec through the node connection, as the API server calls it.
    let connection = cluster.nodes.get(NODE).unwrap();
    let session = connection
        .exec(ExecRequest {
            namespace: "default".into(),
            pod: "web-0".into(),
            container: "main".into(),
            command: vec!["curl".into(), "-s".into(), "localhost".into()],
            stdin: false,
            stdout: true,
            stderr: true,
            tty: false,
        })
        .await
        .unwrap();
    let stdout = collect(session.stdout.unwrap()).await;
    assert!(
        stdout.contains("<title>Welcome to nginx!</title>"),
        "{stdout}"
    );
    assert_eq!(session.exit.await.unwrap(), ExitStatus::Code(0));

    // exec through the API server, as kubectl exec and the labs do.
    let mut process = pods
        .exec(
            "web-0",
            ["hostname"],
            &AttachParams::default().stderr(false),
        )
        .await
        .unwrap();
    let mut output = String::new();
    let mut stdout = tokio_util::io::ReaderStream::new(process.stdout().unwrap());
    while let Some(chunk) = stdout.next().await {
        output.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    process.join().await.unwrap();
    assert_eq!(output, "web-0\n");

    // The access log of that curl is in the container's log.
    let logs = connection
        .logs(LogRequest {
            namespace: "default".into(),
            pod: "web-0".into(),
            container: "main".into(),
            follow: false,
            previous: false,
            tail_lines: None,
            timestamps: false,
        })
        .await
        .unwrap();
    let log: Vec<u8> = logs.map(|chunk| chunk.unwrap().to_vec()).concat().await;
    assert!(String::from_utf8_lossy(&log).contains("\"GET / HTTP/1.1\" 200"));

    for reason in ["Scheduled", "Pulled", "Created", "Started"] {
        wait_for_event(&cluster.client, |event| {
            event.involved_object.name.as_deref() == Some("web-0")
                && event.reason.as_deref() == Some(reason)
        })
        .await;
    }

    let uid = running.metadata.uid.clone().unwrap();
    let pod_netns = format!("k8s-labs-{}-pod-{uid}", cluster.network.instance());
    assert!(netns::netns_path(&pod_netns).exists());
    pods.delete("web-0", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(40),
        await_condition(pods.clone(), "web-0", conditions::is_deleted(&uid)),
    )
    .await
    .expect("web-0 deleted")
    .unwrap();
    assert!(
        !netns::netns_path(&pod_netns).exists(),
        "the pod's netns is removed"
    );
    cluster.assert_pod_removed(&uid).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_missing_from_the_catalog_leaves_the_pod_in_err_image_pull() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("missing", "example-image"))
        .await
        .unwrap();
    let waiting_reason = |pod: Option<&Pod>| {
        pod.and_then(|pod| pod.status.as_ref())
            .and_then(|status| status.container_statuses.as_ref())
            .and_then(|statuses| statuses.first())
            .and_then(|status| status.state.as_ref())
            .and_then(|state| state.waiting.as_ref())
            .and_then(|waiting| waiting.reason.clone())
    };
    let pulling = tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(pods.clone(), "missing", move |pod: Option<&Pod>| {
            matches!(
                waiting_reason(pod).as_deref(),
                Some("ErrImagePull" | "ImagePullBackOff")
            )
        }),
    )
    .await
    .expect("ErrImagePull")
    .unwrap()
    .unwrap();
    let status = pulling.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let failed = wait_for_event(&cluster.client, |event| {
        event.reason.as_deref() == Some("Failed") && event.type_.as_deref() == Some("Warning")
    })
    .await;
    let message = failed.message.unwrap();
    assert!(
        message
            .contains("failed to pull and unpack image \"docker.io/library/example-image:latest\""),
        "{message}"
    );
    assert_eq!(failed.source.unwrap().component.as_deref(), Some("kubelet"));
    let uid = pulling.metadata.uid.unwrap();
    pods.delete("missing", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(pods.clone(), "missing", conditions::is_deleted(&uid)),
    )
    .await
    .expect("deleted")
    .unwrap();
    cluster.assert_pod_removed(&uid).await;
    cluster.stop().await;
}
