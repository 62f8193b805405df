//! The one-node scheduler as kube-scheduler filters: a cordoned node keeps a new pod Pending
//! with `PodScheduled=False` and a `FailedScheduling` event in kube-scheduler's words, takes
//! a pod that tolerates the cordon at once, and the pending pod once uncordoned. Needs root,
//! as the node does.

use crate::common;

use common::{
    Cluster, NODE, create_pod, delete_and_wait, running_and_ready, wait_for, wait_for_event,
};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

const UNSCHEDULABLE: &str = "0/1 nodes are available: 1 node(s) were unschedulable. \
    preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";

fn sleeper(name: &str, tolerations: serde_json::Value) -> serde_json::Value {
    json!({"metadata": {"name": name}, "spec": {"tolerations": tolerations,
        "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "600"]}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cordoned_node_takes_new_pods_once_uncordoned() {
    let cluster = Cluster::start().await;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let cordon = |on: bool| Patch::Merge(json!({"spec": {"unschedulable": on}}));
    nodes
        .patch(NODE, &PatchParams::default(), &cordon(true))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");

    let waits = create_pod(&pods, sleeper("waits", json!([]))).await;
    let pending = wait_for(&pods, "waits", |pod| {
        pod.and_then(|pod| pod.status.as_ref()?.conditions.as_ref()?.first().cloned())
            .is_some_and(|condition| condition.type_ == "PodScheduled")
    })
    .await;
    let condition = pending.status.unwrap().conditions.unwrap()[0].clone();
    assert_eq!(
        (
            condition.status.as_str(),
            condition.reason.as_deref(),
            condition.message.as_deref()
        ),
        ("False", Some("Unschedulable"), Some(UNSCHEDULABLE))
    );
    assert_eq!(pending.spec.unwrap().node_name, None);
    let uid = waits.metadata.uid.clone().unwrap();
    let event = wait_for_event(&cluster.client, |event| {
        event.reason.as_deref() == Some("FailedScheduling")
            && event.involved_object.uid.as_deref() == Some(uid.as_str())
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.message.as_deref(), Some(UNSCHEDULABLE));

    // A pod that tolerates the cordon's taint is bound at once (as DaemonSet pods are).
    let tolerates = json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                            "effect": "NoSchedule"}]);
    let tolerating = create_pod(&pods, sleeper("tolerates", tolerates)).await;
    wait_for(&pods, "tolerates", running_and_ready).await;

    nodes
        .patch(NODE, &PatchParams::default(), &cordon(false))
        .await
        .unwrap();
    let running = wait_for(&pods, "waits", running_and_ready).await;
    assert_eq!(running.spec.unwrap().node_name.as_deref(), Some(NODE));
    delete_and_wait(&cluster, &pods, &waits).await;
    delete_and_wait(&cluster, &pods, &tolerating).await;
    cluster.stop().await;
}
