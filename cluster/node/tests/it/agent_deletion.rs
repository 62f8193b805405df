//! Deleting pods while they start, through the real API server: a pod marked for deletion
//! before its containers started is never started, and a pod deleted at any point of its
//! start-up is gone well within its grace period. Needs root.

use crate::common;

use std::time::{Duration, Instant};

use common::{Cluster, NODE};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;

fn nginx_pod(name: &str, node_name: Option<&str>) -> Pod {
    let mut spec = serde_json::json!({"containers": [{"name": "main", "image": "nginx"}]});
    if let Some(node_name) = node_name {
        spec["nodeName"] = serde_json::json!(node_name);
    }
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

/// Whether a status says that a container runs (or ran).
fn shows_a_started_container(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        || status.container_statuses.iter().flatten().any(|container| {
            container.container_id.is_some()
                || container
                    .state
                    .as_ref()
                    .is_some_and(|state| state.running.is_some() || state.terminated.is_some())
        })
}

/// Follows one pod by name until it is deleted; returns every version of it seen.
async fn versions_until_deleted(pods: Api<Pod>, name: String) -> Vec<Pod> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(pods, config));
    let mut seen = Vec::new();
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => seen.push(pod),
            watcher::Event::Delete(_) => return seen,
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
    panic!("the watch of {name} ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_before_its_containers_started_is_never_started() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    for round in 0..5 {
        let name = format!("early-{round}");
        let follower = tokio::spawn(versions_until_deleted(pods.clone(), name.clone()));
        // Already bound: the node starts making the sandbox as soon as it sees the pod, and
        // the deletion (30 s grace) arrives while it does.
        let created = pods
            .create(&PostParams::default(), &nginx_pod(&name, Some(NODE)))
            .await
            .unwrap();
        pods.delete(&name, &DeleteParams::default()).await.unwrap();
        let versions = tokio::time::timeout(Duration::from_secs(10), follower)
            .await
            .unwrap_or_else(|_| panic!("{name} still there after 10 s"))
            .unwrap();
        let started: Vec<_> = versions
            .iter()
            .filter(|pod| shows_a_started_container(pod))
            .map(|pod| pod.status.clone())
            .collect();
        assert!(
            started.is_empty(),
            "{name} was deleted before its containers started, yet: {started:?}"
        );
        cluster
            .assert_pod_removed(created.metadata.uid.as_deref().unwrap())
            .await;
    }
    cluster.stop().await;
}

/// When in its start-up a pod is deleted.
#[derive(Debug, Clone, Copy)]
enum DeletePoint {
    /// This long after the create call returned.
    After(Duration),
    /// Once the pod is bound to the node.
    Bound,
    /// Once the pod has its sandbox (a pod IP in its status).
    HasIp,
    /// Once its container is reported running.
    Running,
}

impl DeletePoint {
    async fn reach(self, pods: &Api<Pod>, name: &str) {
        let condition = move |pod: Option<&Pod>| {
            let Some(pod) = pod else { return true };
            let status = pod.status.as_ref();
            match self {
                DeletePoint::After(_) => true,
                DeletePoint::Bound => pod
                    .spec
                    .as_ref()
                    .is_some_and(|spec| spec.node_name.is_some()),
                DeletePoint::HasIp => status.is_some_and(|status| status.pod_ip.is_some()),
                DeletePoint::Running => status
                    .and_then(|status| status.phase.as_deref())
                    .is_some_and(|phase| phase == "Running"),
            }
        };
        if let DeletePoint::After(delay) = self {
            tokio::time::sleep(delay).await;
            return;
        }
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(pods.clone(), name, condition),
        )
        .await
        .unwrap_or_else(|_| panic!("{name} never reached {self:?}"))
        .unwrap();
    }
}

/// nginx exits at once on SIGTERM, so a pod deleted with the default 30 s grace period at any
/// point of its start-up (before the sandbox, while the container starts, just after) must be
/// gone long before SIGKILL would be due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_at_any_point_of_its_start_up_is_gone_well_within_its_grace_period() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    // Every 10 ms of the first 150 (binding, sandbox, runc, nginx reading its configuration),
    // and the moments the watch reports.
    let mut points: Vec<DeletePoint> = (0..=150)
        .step_by(10)
        .map(|ms| DeletePoint::After(Duration::from_millis(ms)))
        .collect();
    points.extend([DeletePoint::Bound, DeletePoint::HasIp, DeletePoint::Running]);
    let mut figures = Vec::new();
    for (round, point) in points.into_iter().enumerate() {
        let name = format!("quick-{round}");
        let created = pods
            .create(&PostParams::default(), &nginx_pod(&name, None))
            .await
            .unwrap();
        let uid = created.metadata.uid.clone().unwrap();
        point.reach(&pods, &name).await;
        let deleting = Instant::now();
        pods.delete(&name, &DeleteParams::default()).await.unwrap();
        tokio::time::timeout(
            Duration::from_secs(10),
            await_condition(pods.clone(), &name, conditions::is_deleted(&uid)),
        )
        .await
        .unwrap_or_else(|_| panic!("{name}, deleted at {point:?}, still there after 10 s"))
        .unwrap();
        let took = deleting.elapsed();
        eprintln!("{name}: deleted at {point:?}, gone after {took:?}");
        cluster.assert_pod_removed(&uid).await;
        figures.push(took);
    }
    figures.sort();
    eprintln!(
        "delete → gone over {} pods (30 s grace): median {:?}, max {:?}",
        figures.len(),
        figures[figures.len() / 2],
        figures[figures.len() - 1]
    );
    cluster.stop().await;
}
