//! Watch-driven waits: a condition is checked on every event of a kube-runtime watcher, so a
//! wait ends within milliseconds of the condition becoming true, without polling or sleeps.
//! The watcher relists and resumes by itself when a watch ends or expires.
//!
//! Waits watch the whole namespace and pick the object by name on the client side instead of
//! using a `metadata.name` field selector: every API server supports that, and a lab
//! namespace holds a handful of objects.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Result, anyhow};
use futures::{StreamExt, pin_mut};
use k8s_labs_podutil::is_pod_ready;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_stream};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// Waits until `condition` holds for the object `name` of `api` (`None` = the object does not
/// exist), or `deadline` passes. Returns the object as it was when the condition held.
/// `what` names the wait for the timeout message, e.g. "pod web-0 Running and Ready".
pub async fn wait_for<K>(
    api: Api<K>,
    name: &str,
    what: &str,
    deadline: Instant,
    condition: impl Fn(Option<&K>) -> bool,
) -> Result<Option<K>>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    wait_for_with(
        api,
        watcher::Config::default(),
        name,
        what,
        deadline,
        condition,
    )
    .await
}

/// [`wait_for`] with a watcher configuration (e.g. a label selector narrowing the watch).
pub async fn wait_for_with<K>(
    api: Api<K>,
    config: watcher::Config,
    name: &str,
    what: &str,
    deadline: Instant,
    condition: impl Fn(Option<&K>) -> bool,
) -> Result<Option<K>>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    let stream = watch_stream(api, config).default_backoff();
    pin_mut!(stream);
    let mut current: Option<K> = None;
    let mut seen_in_list = false;
    let mut last_error: Option<String> = None;
    let watching = async {
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    // The watcher backs off and relists by itself; remember why for the
                    // timeout message.
                    last_error = Some(error.to_string());
                    continue;
                }
            };
            let changed = match event {
                Event::Init => {
                    seen_in_list = false;
                    false
                }
                Event::InitApply(object) if object.name_any() == name => {
                    seen_in_list = true;
                    current = Some(object);
                    true
                }
                Event::InitDone => {
                    if !seen_in_list {
                        current = None;
                    }
                    true
                }
                Event::Apply(object) if object.name_any() == name => {
                    current = Some(object);
                    true
                }
                Event::Delete(object) if object.name_any() == name => {
                    current = None;
                    true
                }
                _ => false,
            };
            if changed && condition(current.as_ref()) {
                return Some(current.clone());
            }
        }
        None
    };
    match tokio::time::timeout_at(deadline, watching).await {
        Ok(Some(object)) => Ok(object),
        Ok(None) => Err(anyhow!("the watch for {what} ended unexpectedly")),
        Err(_) => {
            let state = match &current {
                Some(object) => format!("last seen status: {}", status_summary(object)),
                None => "it does not exist".to_string(),
            };
            let error = last_error
                .map(|error| format!("; last watch error: {error}"))
                .unwrap_or_default();
            Err(anyhow!("timed out waiting for {what} ({state}){error}"))
        }
    }
}

/// An object's `status` as compact JSON, cut to a readable length, for timeout messages.
fn status_summary<K: Serialize>(object: &K) -> String {
    const LIMIT: usize = 400;
    let status = serde_json::to_value(object)
        .ok()
        .and_then(|value| value.get("status").cloned())
        .map(|status| status.to_string())
        .unwrap_or_else(|| "(none)".to_string());
    if status.len() > LIMIT {
        let cut = (0..=LIMIT)
            .rev()
            .find(|index| status.is_char_boundary(*index))
            .unwrap_or(0);
        format!("{}...", &status[..cut])
    } else {
        status
    }
}

/// Whether a StatefulSet's controller has caught up with its spec and all its replicas are
/// ready: status.readyReplicas == spec.replicas for the current generation.
pub fn is_statefulset_settled(statefulset: &StatefulSet) -> bool {
    let wanted = statefulset
        .spec
        .as_ref()
        .and_then(|spec| spec.replicas)
        .unwrap_or(1);
    let Some(status) = &statefulset.status else {
        return false;
    };
    let observed = match (statefulset.metadata.generation, status.observed_generation) {
        (Some(generation), Some(observed)) => observed >= generation,
        _ => true,
    };
    observed && status.replicas == wanted && status.ready_replicas.unwrap_or(0) == wanted
}

/// What happened to one pod, in the order the watch delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodEvent {
    /// The pod appeared (its uid was seen for the first time).
    Created(String),
    /// The pod's Ready condition became True for the first time.
    Ready(String),
}

impl std::fmt::Display for PodEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PodEvent::Created(name) => write!(f, "created {name}"),
            PodEvent::Ready(name) => write!(f, "ready {name}"),
        }
    }
}

/// Records, from a watch on the pods of a label selector, the order in which pods were created
/// and became Ready. Ordering claims (OrderedReady: web-1 is created only after web-0 is
/// Ready) are then checked against what the API server reported, not inferred from names.
/// Start it before the objects that create the pods are applied. Stops when dropped.
pub struct PodRecorder {
    selector: String,
    history: Arc<Mutex<Vec<PodEvent>>>,
    changes: watch::Receiver<usize>,
    task: tokio::task::AbortHandle,
}

impl PodRecorder {
    /// Starts recording the pods of `selector` in `pods`' namespace; returns once the watch
    /// has listed what exists, so nothing created afterwards is missed.
    pub async fn start(pods: Api<Pod>, selector: &str) -> Result<PodRecorder> {
        let history = Arc::new(Mutex::new(Vec::new()));
        let (changes_tx, changes) = watch::channel(0usize);
        let (listed_tx, listed) = oneshot::channel::<()>();
        let config = watcher::Config::default().labels(selector);
        let task_history = history.clone();
        let task = tokio::spawn(async move {
            let stream = watch_stream(pods, config).default_backoff();
            pin_mut!(stream);
            let mut created: HashSet<String> = HashSet::new();
            let mut ready: HashSet<String> = HashSet::new();
            let mut listed_tx = Some(listed_tx);
            while let Some(event) = stream.next().await {
                let pod = match event {
                    Ok(Event::Apply(pod)) | Ok(Event::InitApply(pod)) => pod,
                    Ok(Event::InitDone) => {
                        if let Some(listed_tx) = listed_tx.take() {
                            let _ = listed_tx.send(());
                        }
                        continue;
                    }
                    Ok(_) => continue,
                    Err(error) => {
                        tracing::debug!("pod recorder watch error: {error}");
                        continue;
                    }
                };
                let uid = pod.uid().unwrap_or_else(|| pod.name_any());
                let mut new_events = Vec::new();
                if created.insert(uid.clone()) {
                    new_events.push(PodEvent::Created(pod.name_any()));
                }
                if is_pod_ready(&pod) && ready.insert(uid) {
                    new_events.push(PodEvent::Ready(pod.name_any()));
                }
                if !new_events.is_empty() {
                    let len = {
                        let mut history =
                            task_history.lock().unwrap_or_else(PoisonError::into_inner);
                        history.extend(new_events);
                        history.len()
                    };
                    let _ = changes_tx.send(len);
                }
            }
        });
        let abort = task.abort_handle();
        if listed.await.is_err() {
            abort.abort();
            return Err(anyhow!("the pod watch for {selector} ended before listing"));
        }
        Ok(PodRecorder {
            selector: selector.to_string(),
            history,
            changes,
            task: abort,
        })
    }

    /// The label selector being recorded.
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// What was recorded so far, in watch order.
    pub fn history(&self) -> Vec<PodEvent> {
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The history as text, one event per line (`created web-0`, `ready web-0`, ...).
    pub fn render(&self) -> String {
        render_history(&self.history())
    }

    /// Waits until the history satisfies `condition` or `deadline` passes; returns the history.
    pub async fn wait_until(
        &self,
        what: &str,
        deadline: Instant,
        condition: impl Fn(&[PodEvent]) -> bool,
    ) -> Result<Vec<PodEvent>> {
        let mut changes = self.changes.clone();
        let waiting = async {
            loop {
                let history = self.history();
                if condition(&history) {
                    return Ok(history);
                }
                if changes.changed().await.is_err() {
                    return Err(anyhow!("the pod watch for {} stopped", self.selector));
                }
            }
        };
        match tokio::time::timeout_at(deadline, waiting).await {
            Ok(result) => result,
            Err(_) => Err(anyhow!(
                "timed out waiting for {what}; recorded so far:\n{}",
                self.render()
            )),
        }
    }
}

impl Drop for PodRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Renders pod events one per line, as [`PodRecorder::render`] does.
pub fn render_history(history: &[PodEvent]) -> String {
    history.iter().map(|event| format!("{event}\n")).collect()
}

/// The history an OrderedReady StatefulSet `name` with `replicas` pods produces: each pod is
/// created, then becomes Ready, before the next one is created.
pub fn ordered_ready_history(name: &str, replicas: usize) -> Vec<PodEvent> {
    (0..replicas)
        .flat_map(|ordinal| {
            let pod = format!("{name}-{ordinal}");
            [PodEvent::Created(pod.clone()), PodEvent::Ready(pod)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{StatefulSetSpec, StatefulSetStatus};

    fn statefulset(wanted: i32, replicas: i32, ready: Option<i32>) -> StatefulSet {
        StatefulSet {
            spec: Some(StatefulSetSpec {
                replicas: Some(wanted),
                ..Default::default()
            }),
            status: Some(StatefulSetStatus {
                replicas,
                ready_replicas: ready,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn statefulset_settles_when_all_wanted_replicas_are_ready() {
        assert!(is_statefulset_settled(&statefulset(3, 3, Some(3))));
        assert!(!is_statefulset_settled(&statefulset(3, 3, Some(2))));
        assert!(!is_statefulset_settled(&statefulset(3, 2, None)));
        let mut stale = statefulset(3, 3, Some(3));
        stale.metadata.generation = Some(2);
        if let Some(status) = stale.status.as_mut() {
            status.observed_generation = Some(1);
        }
        assert!(!is_statefulset_settled(&stale));
    }

    #[test]
    fn ordered_ready_history_alternates_created_and_ready() {
        assert_eq!(
            render_history(&ordered_ready_history("web", 2)),
            "created web-0\nready web-0\ncreated web-1\nready web-1\n"
        );
    }
}
