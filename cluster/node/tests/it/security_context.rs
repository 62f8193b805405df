//! A pod's `securityContext` is enforced, not just accepted: the user and groups, read-only
//! root, capabilities, no_new_privs and seccomp, as seen from inside the container through
//! `/proc/self/status`; and `runAsNonRoot` on a root image is refused with the kubelet's
//! CreateContainerConfigError. Needs root, as the node does.

use crate::common;

use common::{Cluster, create_pod, delete_and_wait, first_waiting, run_to_end, wait_for};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::{Value, json};

const STATUS_LINES: &str = "grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status";

/// Runs `script` in a busybox pod with the given pod and container security contexts; its log.
async fn run(
    cluster: &Cluster,
    name: &str,
    pod_context: Value,
    context: Value,
    script: &str,
) -> String {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let manifest = json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "securityContext": pod_context, "containers": [{
            "name": "main", "image": "busybox", "command": ["sh", "-c", script],
            "securityContext": context}]},
    });
    run_to_end(cluster, &pods, manifest).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_security_context_is_what_the_process_gets() {
    let cluster = Cluster::start().await;

    let defaults = run(
        &cluster,
        "defaults",
        json!({}),
        json!({}),
        &format!("id -u; {STATUS_LINES}"),
    )
    .await;
    assert_eq!(
        defaults,
        "0\nCapEff:\t00000000a80425fb\nNoNewPrivs:\t0\nSeccomp:\t0\n"
    );

    let user = run(
        &cluster,
        "user",
        json!({"runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4000]}),
        json!({}),
        "id -u; id -g; id -G",
    )
    .await;
    assert_eq!(user, "1000\n3000\n3000 4000\n");

    let locked = run(
        &cluster,
        "locked",
        json!({"seccompProfile": {"type": "RuntimeDefault"}}),
        json!({"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
               "capabilities": {"drop": ["ALL"]}}),
        &format!("touch /written 2>&1; echo touch $?; echo tmp > /tmp/ok && echo tmp ok; {STATUS_LINES}; unshare -r true 2>&1; echo unshare $?"),
    )
    .await;
    assert_eq!(
        locked,
        "touch: /written: Read-only file system\ntouch 1\ntmp ok\nCapEff:\t0000000000000000\n\
         NoNewPrivs:\t1\nSeccomp:\t2\nunshare: unshare(0x10000000): Operation not permitted\nunshare 1\n"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_as_non_root_on_a_root_image_is_a_create_container_config_error() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let created = create_pod(
        &pods,
        json!({
            "metadata": {"name": "nonroot"},
            "spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{
                "name": "main", "image": "busybox", "command": ["sleep", "3600"]}]},
        }),
    )
    .await;
    let refused = wait_for(&pods, "nonroot", |pod| {
        first_waiting(pod)
            .is_some_and(|waiting| waiting.reason.as_deref() == Some("CreateContainerConfigError"))
    })
    .await;
    let waiting = first_waiting(Some(&refused)).unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    assert_eq!(
        waiting.message.unwrap(),
        format!(
            "container has runAsNonRoot and image will run as root (pod: \"nonroot_default({uid})\", container: main)"
        )
    );
    delete_and_wait(&cluster, &pods, &created).await;
    cluster.stop().await;
}
