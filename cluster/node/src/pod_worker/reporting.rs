//! The pod's status as the kubelet writes it through the status subresource.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::PodWorker;
use crate::status::{ContainerView, SlotState, container_status, pod_phase};

impl PodWorker {
    /// The pod's phase, from its containers and restart policy; an evicted pod has ended
    /// (`Failed`), and so has one stopped for its deletion, whatever its restart policy.
    pub(super) fn phase(&self) -> &'static str {
        if self.evicted.is_some() {
            return "Failed";
        }
        if self.terminated {
            // The kubelet's `getPhase` for a pod that will not run again, whatever its restart
            // policy: Succeeded when every container ended with 0.
            let succeeded = self.slots.iter().all(
                |slot| matches!(&slot.state, SlotState::Terminated(ended) if ended.exit_code == 0),
            );
            return if succeeded { "Succeeded" } else { "Failed" };
        }
        let states: Vec<(&SlotState, bool)> = self
            .slots
            .iter()
            .map(|slot| (&slot.state, slot.has_run()))
            .collect();
        pod_phase(&self.restart_policy(), &states)
    }

    pub(super) fn build_status(&mut self) -> serde_json::Value {
        let phase = self.phase();
        if matches!(phase, "Succeeded" | "Failed") {
            // An ended pod is no longer active: the kubelet evicts only active pods.
            self.context.eviction.forget(&self.identity.uid);
        }
        let all_ready = !self.slots.is_empty() && self.slots.iter().all(|slot| slot.ready);
        let not_ready_reason = (!all_ready).then_some("ContainersNotReady");
        let has_sandbox = self.sandbox.is_some();
        self.conditions
            .set("PodReadyToStartContainers", has_sandbox, None);
        self.conditions.set("Initialized", true, None);
        self.conditions.set("Ready", all_ready, not_ready_reason);
        self.conditions
            .set("ContainersReady", all_ready, not_ready_reason);
        self.conditions.set("PodScheduled", true, None);
        let statuses: Vec<_> = self
            .slots
            .iter()
            .map(|slot| {
                container_status(&ContainerView {
                    name: &slot.container.name,
                    image: slot.image.as_ref().map_or_else(
                        || slot.container.image.clone().unwrap_or_default(),
                        |image| image.reference.clone(),
                    ),
                    image_id: slot
                        .image
                        .as_ref()
                        .map_or_else(String::new, |image| image.image_id.clone()),
                    container_id: slot.container_id.clone(),
                    ready: slot.ready,
                    restart_count: (slot.attempts - 1).max(0),
                    state: &slot.state,
                    last: slot.last.as_ref(),
                })
            })
            .collect();
        let host_ip = self.context.network.gateway().to_string();
        let mut status = serde_json::json!({
            "phase": phase,
            "conditions": self.conditions.to_vec(),
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "startTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(self.start_time),
            "containerStatuses": statuses,
            "qosClass": qos_class(&self.pod),
        });
        if let Some(message) = &self.evicted {
            status["reason"] = serde_json::json!("Evicted");
            status["message"] = serde_json::json!(message);
        }
        if let Some(sandbox) = &self.sandbox {
            let ip = sandbox.network.ip.to_string();
            status["podIP"] = serde_json::json!(ip);
            status["podIPs"] = serde_json::json!([{"ip": ip}]);
        }
        status
    }

    pub(super) async fn report_status(&mut self) {
        let status = self.build_status();
        if self.last_reported.as_ref() == Some(&status) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(self.client().clone(), &self.identity.namespace);
        let patch = serde_json::json!({ "status": status });
        match api
            .patch_status(
                &self.identity.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => self.last_reported = Some(status),
            Err(error) => tracing::warn!(
                "updating the status of pod {}/{}: {error}",
                self.identity.namespace,
                self.identity.name
            ),
        }
    }
}

/// The pod's QoS class as the kubelet's `GetPodQOS` takes it: the one the API server set in
/// the status at creation (the class never changes); for a pod without one, `BestEffort`
/// without any requests or limits, else `Burstable`.
fn qos_class(pod: &Pod) -> String {
    if let Some(class) = pod
        .status
        .as_ref()
        .and_then(|status| status.qos_class.as_deref())
        .filter(|class| !class.is_empty())
    {
        return class.to_string();
    }
    let has_resources = pod
        .spec
        .iter()
        .flat_map(|spec| spec.containers.iter())
        .any(|container| {
            container.resources.as_ref().is_some_and(|resources| {
                resources
                    .requests
                    .as_ref()
                    .is_some_and(|requests| !requests.is_empty())
                    || resources
                        .limits
                        .as_ref()
                        .is_some_and(|limits| !limits.is_empty())
            })
        });
    if has_resources {
        "Burstable".to_string()
    } else {
        "BestEffort".to_string()
    }
}
