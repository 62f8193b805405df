//! Verbs on workloads and storage that the tutorial runs by hand: `kubectl scale` (through the
//! scale subresource, as kubectl does), `kubectl delete pod`, and the waits that follow them —
//! a number of Ready pods of a selector, pods stuck on an image pull, a PVC Bound. Every wait
//! is driven by a watch and ends at the step's deadline.

use std::collections::BTreeMap;
use std::fmt::Debug;

use anyhow::{Context, Result, anyhow};
use futures::{StreamExt, pin_mut};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_stream};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::context::StepContext;
use k8s_labs_podutil::{
    container_waiting_reason, is_pod_ready, is_pod_running_and_ready, is_pod_terminating, pod_phase,
};

use crate::wait::wait_for;

/// The waiting reasons a kubelet reports for a container whose image cannot be pulled.
pub const IMAGE_PULL_FAILURES: [&str; 2] = ["ErrImagePull", "ImagePullBackOff"];

/// Whether `pods` are exactly `count` pods, none terminating, all Running and Ready.
pub fn are_ready_pods(pods: &[Pod], count: usize) -> bool {
    pods.len() == count
        && pods
            .iter()
            .all(|pod| !is_pod_terminating(pod) && is_pod_running_and_ready(pod))
}

/// Whether `pods` are exactly `count` pods, each with a container waiting on an image that
/// cannot be pulled.
pub fn are_image_pull_failures(pods: &[Pod], count: usize) -> bool {
    pods.len() == count
        && pods.iter().all(|pod| {
            container_waiting_reason(pod)
                .is_some_and(|reason| IMAGE_PULL_FAILURES.contains(&reason))
        })
}

impl StepContext {
    /// `kubectl scale <kind>/<name> --replicas=N`: a merge patch of the scale subresource,
    /// which is what kubectl sends; works for ReplicaSets and StatefulSets alike.
    pub async fn scale<K>(&self, name: &str, replicas: i32) -> Result<()>
    where
        K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        <K as Resource>::DynamicType: Default,
    {
        let kind = K::kind(&Default::default()).to_string();
        Api::<K>::namespaced(self.client(), self.namespace())
            .patch_scale(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "replicas": replicas } })),
            )
            .await
            .with_context(|| format!("cannot scale {kind} {name} to {replicas}"))?;
        Ok(())
    }

    /// `kubectl delete pod <name>`: asks for the deletion and returns; what replaces the pod
    /// is for the caller to wait for.
    pub async fn delete_pod(&self, name: &str) -> Result<()> {
        Api::<Pod>::namespaced(self.client(), self.namespace())
            .delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("cannot delete pod {name}"))?;
        Ok(())
    }

    /// Waits (by watch on the pods of `selector`) until `condition` holds for the pods that
    /// exist, sorted by name; returns them. `what` names the wait for the timeout message,
    /// which lists the pods as last seen.
    pub async fn wait_pods(
        &self,
        selector: &str,
        what: &str,
        condition: impl Fn(&[Pod]) -> bool,
    ) -> Result<Vec<Pod>> {
        let _waiting = self.waiting(what);
        let api: Api<Pod> = Api::namespaced(self.client(), self.namespace());
        let stream =
            watch_stream(api, watcher::Config::default().labels(selector)).default_backoff();
        pin_mut!(stream);
        let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
        let mut listing: BTreeMap<String, Pod> = BTreeMap::new();
        let mut listed = false;
        let watching = async {
            while let Some(event) = stream.next().await {
                let Ok(event) = event else { continue };
                match event {
                    Event::Init => listing.clear(),
                    Event::InitApply(pod) => {
                        listing.insert(pod.name_any(), pod);
                    }
                    Event::InitDone => {
                        pods = std::mem::take(&mut listing);
                        listed = true;
                    }
                    Event::Apply(pod) => {
                        pods.insert(pod.name_any(), pod);
                    }
                    Event::Delete(pod) => {
                        pods.remove(&pod.name_any());
                    }
                }
                if listed {
                    let current: Vec<Pod> = pods.values().cloned().collect();
                    if condition(&current) {
                        return Some(current);
                    }
                }
            }
            None
        };
        let result = tokio::time::timeout_at(self.deadline(), watching).await;
        match result {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(anyhow!("the pod watch for {what} ended unexpectedly")),
            Err(_) => Err(anyhow!(
                "timed out waiting for {what}; pods {selector} as last seen:\n{}",
                pods_summary(pods.values())
            )),
        }
    }

    /// Waits until exactly `count` pods of `selector` exist, all Running and Ready and none
    /// terminating (what `kubectl get pod` shows once a scale has settled).
    pub async fn wait_ready_pods(&self, selector: &str, count: usize) -> Result<Vec<Pod>> {
        let what = format!("exactly {count} Running and Ready pods {selector}");
        self.wait_pods(selector, &what, |pods| are_ready_pods(pods, count))
            .await
    }

    /// Waits until exactly `count` pods of `selector` exist and each has a container waiting
    /// with ErrImagePull or ImagePullBackOff.
    pub async fn wait_image_pull_failures(&self, selector: &str, count: usize) -> Result<Vec<Pod>> {
        let what = format!("{count} pods {selector} failing to pull their image");
        self.wait_pods(selector, &what, |pods| are_image_pull_failures(pods, count))
            .await
    }

    /// Waits (by watch) until PersistentVolumeClaim `name` is Bound; returns it.
    pub async fn wait_pvc_bound(&self, name: &str) -> Result<PersistentVolumeClaim> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client(), self.namespace());
        let what = format!("PersistentVolumeClaim {name} to be Bound");
        let _waiting = self.waiting(&what);
        wait_for(api, name, &what, self.deadline(), |claim| {
            claim.is_some_and(|claim| pvc_phase(claim) == "Bound")
        })
        .await?
        .ok_or_else(|| anyhow!("PersistentVolumeClaim {name} disappeared"))
    }
}

/// The phase of a PVC, `Pending` when it has none yet (as kubectl shows it).
pub fn pvc_phase(claim: &PersistentVolumeClaim) -> &str {
    claim
        .status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
        .unwrap_or("Pending")
}

/// One line per pod: name, phase, ready, waiting reason, terminating — for timeout messages.
fn pods_summary<'a>(pods: impl Iterator<Item = &'a Pod>) -> String {
    let lines: Vec<String> = pods
        .map(|pod| {
            format!(
                "  {} phase={} ready={} waiting={} terminating={}",
                pod.name_any(),
                pod_phase(pod),
                is_pod_ready(pod),
                container_waiting_reason(pod).unwrap_or("-"),
                is_pod_terminating(pod)
            )
        })
        .collect();
    if lines.is_empty() {
        "  (none)".to_string()
    } else {
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateWaiting, ContainerStatus, PodCondition, PodStatus,
    };

    fn waiting(reason: &str) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "app".into(),
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(reason.into()),
                            message: None,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ready() -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn image_pull_failures_need_every_pod_waiting_on_a_pull() {
        let failing = [waiting("ErrImagePull"), waiting("ImagePullBackOff")];
        assert!(are_image_pull_failures(&failing, 2));
        assert!(!are_image_pull_failures(&failing, 3));
        let mixed = [waiting("ErrImagePull"), waiting("ContainerCreating")];
        assert!(!are_image_pull_failures(&mixed, 2));
        assert_eq!(container_waiting_reason(&ready()), None);
    }

    #[test]
    fn ready_pods_count_exactly_and_exclude_terminating_ones() {
        assert!(are_ready_pods(&[ready(), ready()], 2));
        assert!(!are_ready_pods(&[ready(), ready()], 3));
        let mut terminating = ready();
        terminating.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        assert!(!are_ready_pods(&[ready(), terminating], 2));
        assert!(!are_ready_pods(&[ready(), waiting("ErrImagePull")], 2));
    }

    #[test]
    fn pvc_phase_defaults_to_pending() {
        assert_eq!(pvc_phase(&PersistentVolumeClaim::default()), "Pending");
    }
}
