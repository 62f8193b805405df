//! The scheduler of a one-node cluster: binds every unscheduled pod to this node, unless the
//! node does not take it, as kube-scheduler's `NodeUnschedulable` and `TaintToleration`
//! filters decide: a cordoned node (`spec.unschedulable`, `kubectl cordon|drain`) takes only
//! pods that tolerate `node.kubernetes.io/unschedulable:NoSchedule`, and a `NoSchedule` or
//! `NoExecute` taint only pods that tolerate it. A pod the node does not take stays Pending
//! with the condition `PodScheduled=False` (reason `Unschedulable`) and a `FailedScheduling`
//! event in kube-scheduler's words; it is bound once the node takes it (`kubectl uncordon`).

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::events::{EventRecord, EventRecorder, EventType, InvolvedPod};

/// The taint a cordoned node is treated as having (`v1.TaintNodeUnschedulable`).
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// What the scheduler task hears of pods.
enum Offer {
    /// An unscheduled pod (new or changed).
    Pod(Box<Pod>),
    /// A pod deleted, by uid.
    Gone(String),
}

/// Hands unscheduled pods to the scheduler task.
#[derive(Clone)]
pub(crate) struct Scheduler {
    offers: mpsc::UnboundedSender<Offer>,
}

impl Scheduler {
    /// Starts the scheduler task, which follows this node's Node object until `shutdown`.
    pub(crate) fn start(
        client: Client,
        node_name: String,
        events: EventRecorder,
        shutdown: CancellationToken,
    ) -> Scheduler {
        let (offers, receiver) = mpsc::unbounded_channel();
        let task = SchedulerTask {
            client,
            node_name,
            events,
            pending: HashMap::new(),
            bound: HashSet::new(),
        };
        tokio::spawn(task.run(receiver, shutdown));
        Scheduler { offers }
    }

    /// Schedules `pod` (not bound, not being deleted, for the default scheduler).
    pub(crate) fn offer(&self, pod: Pod) {
        let _ = self.offers.send(Offer::Pod(Box::new(pod)));
    }

    /// Forgets the pod `uid`: it was deleted.
    pub(crate) fn forget(&self, uid: String) {
        let _ = self.offers.send(Offer::Gone(uid));
    }
}

struct SchedulerTask {
    client: Client,
    node_name: String,
    events: EventRecorder,
    /// Pods not bound yet, by uid, with the reason last recorded for each.
    pending: HashMap<String, (Pod, Option<String>)>,
    /// Pods this task bound, whose watch events may still show them unbound for a moment
    /// (kube-scheduler's assumed pods).
    bound: HashSet<String>,
}

impl SchedulerTask {
    async fn run(
        mut self,
        mut offers: mpsc::UnboundedReceiver<Offer>,
        shutdown: CancellationToken,
    ) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let config =
            watcher::Config::default().fields(&format!("metadata.name={}", self.node_name));
        let mut node_changes =
            std::pin::pin!(watcher(nodes, config).default_backoff().applied_objects());
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                Some(offer) = offers.recv() => {
                    self.hear(offer);
                    // A burst (a StatefulSet's or Job's pods) is scheduled with one read of
                    // the Node, not one per pod.
                    while let Ok(offer) = offers.try_recv() {
                        self.hear(offer);
                    }
                }
                // A change of the Node may let pending pods in (`kubectl uncordon`).
                Some(change) = node_changes.next() => if let Err(error) = change {
                    tracing::debug!("watching node {}: {error}", self.node_name);
                    continue;
                },
            }
            self.schedule_pending().await;
        }
    }

    fn hear(&mut self, offer: Offer) {
        match offer {
            Offer::Pod(pod) => {
                let Some(uid) = pod.metadata.uid.clone() else {
                    return;
                };
                if self.bound.contains(&uid) {
                    return;
                }
                let reason = self.pending.remove(&uid).and_then(|(_, reason)| reason);
                self.pending.insert(uid, (*pod, reason));
            }
            Offer::Gone(uid) => {
                self.pending.remove(&uid);
                self.bound.remove(&uid);
            }
        }
    }

    /// Binds every pending pod the node takes; records why for those it does not. The Node
    /// is read as stored, not from the watch, so that a decision made after a `kubectl
    /// cordon` has returned always sees it.
    async fn schedule_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let node = match Api::<Node>::all(self.client.clone())
            .get(&self.node_name)
            .await
        {
            Ok(node) => node,
            Err(error) => {
                tracing::debug!("reading node {}: {error}", self.node_name);
                return; // the pods stay pending until the Node changes
            }
        };
        let uids: Vec<String> = self.pending.keys().cloned().collect();
        for uid in uids {
            let Some((pod, recorded)) = self.pending.remove(&uid) else {
                continue;
            };
            match unschedulable_message(&pod, &node) {
                None => match self.bind(&pod, &uid).await {
                    Ok(()) => {
                        self.bound.insert(uid);
                    }
                    Err(error) => tracing::warn!("binding pod {uid}: {error:#}"),
                },
                Some(message) => {
                    if recorded.as_deref() != Some(message.as_str()) {
                        self.record_unschedulable(&pod, &uid, &message).await;
                    }
                    self.pending.insert(uid, (pod, Some(message)));
                }
            }
        }
    }

    async fn bind(&self, pod: &Pod, uid: &str) -> Result<()> {
        let involved = involved(pod, uid);
        bind(&self.client, &involved, &self.node_name).await?;
        self.events.record(EventRecord {
            message: format!(
                "Successfully assigned {}/{} to {}",
                involved.namespace, involved.name, self.node_name
            ),
            pod: involved,
            field_path: None,
            type_: EventType::Normal,
            reason: "Scheduled".to_string(),
            component: "default-scheduler",
        });
        Ok(())
    }

    /// The pod's `PodScheduled=False` condition and a `FailedScheduling` event.
    async fn record_unschedulable(&self, pod: &Pod, uid: &str, message: &str) {
        let involved = involved(pod, uid);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &involved.namespace);
        let now = Time(jiff::Timestamp::now());
        let status = serde_json::json!({"status": {"conditions": [{"type": "PodScheduled",
            "status": "False", "reason": "Unschedulable", "message": message,
            "lastProbeTime": null, "lastTransitionTime": now}]}});
        let patched = api
            .patch_status(
                &involved.name,
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await;
        if let Err(error) = patched {
            tracing::debug!("pod {uid}: setting PodScheduled=False: {error}");
        }
        self.events.record(EventRecord {
            pod: involved,
            field_path: None,
            type_: EventType::Warning,
            reason: "FailedScheduling".to_string(),
            message: message.to_string(),
            component: "default-scheduler",
        });
    }
}

fn involved(pod: &Pod, uid: &str) -> InvolvedPod {
    InvolvedPod {
        namespace: pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string()),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: uid.to_string(),
    }
}

/// Why the node does not take `pod`, in kube-scheduler's words for a one-node cluster;
/// `None` when it does.
pub(crate) fn unschedulable_message(pod: &Pod, node: &Node) -> Option<String> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.tolerations.clone())
        .unwrap_or_default();
    let spec = node.spec.clone().unwrap_or_default();
    let cordon = Taint {
        key: UNSCHEDULABLE_TAINT.to_string(),
        effect: "NoSchedule".to_string(),
        ..Taint::default()
    };
    let reason = if spec.unschedulable == Some(true) && !tolerated(&tolerations, &cordon) {
        "node(s) were unschedulable".to_string()
    } else {
        let untolerated = spec.taints.unwrap_or_default().into_iter().find(|taint| {
            matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
                && !tolerated(&tolerations, taint)
        })?;
        let value = untolerated.value.unwrap_or_default();
        format!(
            "node(s) had untolerated taint {{{}: {value}}}",
            untolerated.key
        )
    };
    Some(format!(
        "0/1 nodes are available: 1 {reason}. preemption: 0/1 nodes are available: 1 \
         Preemption is not helpful for scheduling."
    ))
}

/// `v1.Toleration.ToleratesTaint` for any of `tolerations`.
fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|toleration| {
        let effect = toleration.effect.as_deref().unwrap_or_default();
        let key = toleration.key.as_deref().unwrap_or_default();
        if !effect.is_empty() && effect != taint.effect {
            return false;
        }
        if !key.is_empty() && key != taint.key {
            return false;
        }
        match toleration.operator.as_deref().unwrap_or("Equal") {
            "Exists" => true,
            "Equal" | "" => {
                toleration.value.as_deref().unwrap_or_default()
                    == taint.value.as_deref().unwrap_or_default()
            }
            _ => false,
        }
    })
}

/// `POST pods/{name}/binding`, as the scheduler does; where the API server has no binding
/// subresource (404/405), a merge patch of `spec.nodeName` instead.
async fn bind(client: &Client, pod: &InvolvedPod, node: &str) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: Some(pod.uid.clone()),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some("Node".to_string()),
            name: Some(node.to_string()),
            ..ObjectReference::default()
        },
    };
    let posted = api
        .create_subresource::<_, serde_json::Value>(
            "binding",
            &pod.name,
            &PostParams::default(),
            &binding,
        )
        .await;
    match posted {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 405 => {
            let patch = serde_json::json!({"spec": {"nodeName": node}});
            api.patch(&pod.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .context("patching spec.nodeName")?;
            Ok(())
        }
        Err(error) => Err(error).context("posting the binding"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(spec: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n"}, "spec": spec})).unwrap()
    }

    fn pod(tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c"}], "tolerations": tolerations}}))
        .unwrap()
    }

    const PREEMPTION: &str =
        ". preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";

    #[test]
    fn a_cordoned_node_takes_only_pods_that_tolerate_it() {
        let cordoned = node(json!({"unschedulable": true}));
        assert_eq!(
            unschedulable_message(&pod(json!([])), &cordoned).unwrap(),
            format!("0/1 nodes are available: 1 node(s) were unschedulable{PREEMPTION}")
        );
        let tolerates = pod(json!([{"key": UNSCHEDULABLE_TAINT, "operator": "Exists",
                                     "effect": "NoSchedule"}]));
        assert_eq!(unschedulable_message(&tolerates, &cordoned), None);
        assert_eq!(
            unschedulable_message(&pod(json!([])), &node(json!({}))),
            None
        );
    }

    #[test]
    fn taints_keep_out_pods_that_do_not_tolerate_them() {
        let tainted = node(json!({"taints": [
            {"key": "soft", "value": "x", "effect": "PreferNoSchedule"},
            {"key": "key1", "value": "value1", "effect": "NoSchedule"}]}));
        assert_eq!(
            unschedulable_message(&pod(json!([])), &tainted).unwrap(),
            format!(
                "0/1 nodes are available: 1 node(s) had untolerated taint {{key1: value1}}{PREEMPTION}"
            )
        );
        for toleration in [
            json!({"key": "key1", "operator": "Equal", "value": "value1", "effect": "NoSchedule"}),
            json!({"key": "key1", "value": "value1"}),
            json!({"key": "key1", "operator": "Exists"}),
            json!({"operator": "Exists"}),
        ] {
            assert_eq!(
                unschedulable_message(&pod(json!([toleration])), &tainted),
                None,
                "{toleration}"
            );
        }
        for toleration in [
            json!({"key": "key1", "value": "other"}),
            json!({"key": "key1", "operator": "Exists", "effect": "NoExecute"}),
            json!({"key": "key2", "operator": "Exists"}),
        ] {
            assert!(
                unschedulable_message(&pod(json!([toleration])), &tainted).is_some(),
                "{toleration}"
            );
        }
    }
}
