//! The Job controller against the embedded API server; the test plays the kubelet (it marks
//! the Job's pod Succeeded). A Job with `ttlSecondsAfterFinished: 0` completes, and is then
//! deleted in the foreground: its pod first, then the Job.

use crate::common;

use common::set_pod_status;
use futures::StreamExt as _;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, ResourceExt as _};
use serde_json::json;

#[tokio::test]
async fn a_completed_job_with_a_ttl_is_deleted_with_its_pod() {
    let cluster = common::start().await;
    let ns = "ttl";
    cluster.namespace(ns).await;
    let job: Job = cluster
        .create(
            ns,
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
                "spec": {"ttlSecondsAfterFinished": 0, "template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox:1.28"}]}}}}),
        )
        .await;
    let pods = Api::<Pod>::namespaced(cluster.client.clone(), ns);
    let mut applied = watcher(
        pods.clone(),
        watcher::Config::default().labels("job-name=once"),
    )
    .applied_objects()
    .boxed();
    let pod = tokio::time::timeout(common::HANG_GUARD, applied.next())
        .await
        .expect("the Job's pod never appeared")
        .expect("a pod")
        .expect("no watch error");
    let owner = &pod.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Job", job.uid().unwrap().as_str())
    );
    assert_eq!(pod.labels()["batch.kubernetes.io/job-name"], "once");
    set_pod_status(&cluster.client, ns, &pod.name_any(), "Succeeded", false).await;

    let jobs = Api::<Job>::namespaced(cluster.client.clone(), ns);
    let gone = await_condition(jobs, "once", |job: Option<&Job>| job.is_none());
    tokio::time::timeout(common::HANG_GUARD, gone)
        .await
        .expect("the finished Job was never deleted")
        .unwrap();
    assert!(cluster.list::<Pod>(ns).await.is_empty());
    let events: Vec<String> = cluster
        .list::<Event>(ns)
        .await
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some("once"))
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default()
            )
        })
        .collect();
    assert!(
        events.contains(&format!(
            "SuccessfulCreate: Created pod: {}",
            pod.name_any()
        )),
        "{events:?}"
    );
    assert!(
        events.contains(&"Completed: Job completed".to_string()),
        "{events:?}"
    );
    cluster.stop().await;
}
