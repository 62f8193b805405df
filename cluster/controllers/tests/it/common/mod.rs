//! An embedded API server, a client, the controllers, and a test "kubelet" that watches pods.

pub mod gate;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use k8s_labs_apiserver::ApiServer;
use k8s_labs_apiserver::testing::TestApiServer;
use k8s_labs_controllers::{ControllerConfig, ControllerManager};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt as _};
use serde_json::json;

/// Guards against a hang; never a timed assertion (every wait ends on a watch event).
pub const HANG_GUARD: Duration = Duration::from_secs(30);

pub struct Cluster {
    pub server: ApiServer,
    pub client: Client,
    controllers: Option<ControllerManager>,
    /// What the controllers were started with (to start them again).
    controllers_client: Client,
    config: ControllerConfig,
}

/// The embedded API server with the controllers started on the default configuration.
pub async fn start() -> Cluster {
    start_with(ControllerConfig::default()).await
}

/// The embedded API server with the controllers started on `config`.
pub async fn start_with(config: ControllerConfig) -> Cluster {
    start_gated_with(config, None).await
}

/// The embedded API server with the controllers sending their requests through `gate` (the
/// test's own client does not).
pub async fn start_gated(gate: &gate::WatchGate) -> Cluster {
    start_gated_with(ControllerConfig::default(), Some(gate)).await
}

async fn start_gated_with(config: ControllerConfig, gate: Option<&gate::WatchGate>) -> Cluster {
    let TestApiServer { server, client, .. } = TestApiServer::start().await.unwrap();
    let controllers_client = match gate {
        Some(gate) => gate.client(client.clone()),
        None => client.clone(),
    };
    let controllers = ControllerManager::start_with(controllers_client.clone(), config.clone())
        .await
        .unwrap();
    Cluster {
        server,
        client,
        controllers: Some(controllers),
        controllers_client,
        config,
    }
}

impl Cluster {
    pub async fn stop(mut self) {
        if let Some(controllers) = self.controllers.take() {
            controllers.shutdown().await;
        }
        self.server.shutdown().await;
    }

    /// Stops the controllers (see [`Cluster::start_controllers`]).
    pub async fn stop_controllers(&mut self) {
        if let Some(controllers) = self.controllers.take() {
            controllers.shutdown().await;
        }
    }

    /// Starts the controllers again, as a restarted kube-controller-manager: each begins with
    /// a full list and reconciles every object once.
    pub async fn start_controllers(&mut self) {
        let controllers =
            ControllerManager::start_with(self.controllers_client.clone(), self.config.clone())
                .await
                .unwrap();
        self.controllers = Some(controllers);
    }

    pub async fn namespace(&self, name: &str) {
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
    }

    pub async fn create<K>(&self, namespace: &str, object: serde_json::Value) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + serde::Serialize,
    {
        let object: K = serde_json::from_value(object).unwrap();
        Api::<K>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &object)
            .await
            .unwrap()
    }

    /// The objects of kind `K` in `namespace` now (a list, for checks after a watch ended).
    pub async fn list<K>(&self, namespace: &str) -> Vec<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        Api::<K>::namespaced(self.client.clone(), namespace)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }
}

/// The pod IP the test kubelet reports for a pod (a string in the store: nothing connects).
pub fn pod_ip(name: &str) -> String {
    let ordinal: u32 = name
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(99);
    format!("10.244.0.{}", 10 + ordinal)
}

/// Marks a pod Running with an IP, and Ready or not, through the status subresource.
pub async fn set_pod_status(
    client: &Client,
    namespace: &str,
    name: &str,
    phase: &str,
    ready: bool,
) {
    let status = json!({"status": {
        "phase": phase,
        "podIP": pod_ip(name),
        "podIPs": [{"ip": pod_ip(name)}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                        "lastTransitionTime": "2024-01-01T00:00:00Z"}],
    }});
    Api::<Pod>::namespaced(client.clone(), namespace)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

pub use k8s_labs_podutil::is_pod_running_and_ready as is_running_ready;

/// What the pod watch has seen, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Created(String),
    Terminating(String),
    Gone(String),
}

/// A watch on the pods of one namespace that plays the kubelet: it finishes graceful
/// deletions (grace 0) and, when `auto_ready`, makes new pods Running and Ready.
pub struct PodWatch {
    client: Client,
    namespace: String,
    stream: BoxStream<'static, watcher::Result<watcher::Event<Pod>>>,
    pub pods: BTreeMap<String, Pod>,
    pub seen: Vec<Seen>,
    /// Every pod as it was first seen (what it was created from), in order.
    pub created: Vec<Pod>,
    /// For every pod created, whether its predecessor ordinal was Running+Ready at that
    /// moment in the watch order (ordinal 0 counts as yes).
    pub created_after_predecessor_ready: Vec<(String, bool)>,
    pub auto_ready: bool,
}

impl PodWatch {
    pub fn new(client: &Client, namespace: &str) -> Self {
        let api = Api::<Pod>::namespaced(client.clone(), namespace);
        Self {
            client: client.clone(),
            namespace: namespace.to_string(),
            stream: watcher(api, watcher::Config::default()).boxed(),
            pods: BTreeMap::new(),
            seen: Vec::new(),
            created: Vec::new(),
            created_after_predecessor_ready: Vec::new(),
            auto_ready: false,
        }
    }

    /// Processes watch events until `condition` holds on the current pods.
    pub async fn until(&mut self, what: &str, condition: impl Fn(&BTreeMap<String, Pod>) -> bool) {
        while !condition(&self.pods) {
            let event = tokio::time::timeout(HANG_GUARD, self.stream.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no pod event while waiting for: {what}; seen {:?}",
                        self.seen
                    )
                })
                .expect("pod watch ended")
                .expect("pod watch failed");
            self.apply(event).await;
        }
    }

    async fn apply(&mut self, event: watcher::Event<Pod>) {
        match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                let name = pod.name_any();
                if !self.pods.contains_key(&name) {
                    self.seen.push(Seen::Created(name.clone()));
                    self.created.push(pod.clone());
                    let predecessor_ready = match name.rsplit_once('-') {
                        Some((set, ordinal)) => match ordinal.parse::<u32>() {
                            Ok(0) | Err(_) => true,
                            Ok(n) => self
                                .pods
                                .get(&format!("{set}-{}", n - 1))
                                .is_some_and(is_running_ready),
                        },
                        None => true,
                    };
                    self.created_after_predecessor_ready
                        .push((name.clone(), predecessor_ready));
                }
                let was_terminating = self
                    .pods
                    .get(&name)
                    .is_some_and(|p| p.metadata.deletion_timestamp.is_some());
                if pod.metadata.deletion_timestamp.is_some() && !was_terminating {
                    self.seen.push(Seen::Terminating(name.clone()));
                    let api = Api::<Pod>::namespaced(self.client.clone(), &self.namespace);
                    let _ = api
                        .delete(&name, &DeleteParams::default().grace_period(0))
                        .await;
                } else if self.auto_ready
                    && pod.metadata.deletion_timestamp.is_none()
                    && pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running")
                    && pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Failed")
                {
                    set_pod_status(&self.client, &self.namespace, &name, "Running", true).await;
                }
                self.pods.insert(name, pod);
            }
            watcher::Event::Delete(pod) => {
                let name = pod.name_any();
                self.seen.push(Seen::Gone(name.clone()));
                self.pods.remove(&name);
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }

    /// Position of the first event matching `seen`.
    pub fn position(&self, seen: &Seen) -> Option<usize> {
        self.seen.iter().position(|s| s == seen)
    }

    /// Where a pod's removal began: its Terminating mark or, if it went at once, its Gone.
    pub fn removal_started(&self, name: &str) -> Option<usize> {
        self.seen.iter().position(|s| {
            *s == Seen::Terminating(name.to_string()) || *s == Seen::Gone(name.to_string())
        })
    }
}

/// The image of a pod's first container.
pub fn image(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|spec| spec.containers.first())
        .and_then(|container| container.image.as_deref())
        .unwrap_or_default()
}

/// Plays `kubectl apply -f new.yaml; kubectl delete pod -l …` against a controller whose
/// cache of the set (a ReplicaSet or StatefulSet named `name` with one container `nginx`)
/// still holds it from before the apply while its pod cache shows the deletions. To make
/// exactly that state, the controllers are restarted with the gate holding every watch of the
/// set's kind: the controller's cache keeps the set from its first list (the gate reports its
/// first pass, which reads the set once its cache holds it), while the shared pod informer
/// goes on. The set's image then becomes `new_image` and every pod is deleted. Returns the
/// pods created from then on, once `replicas` pods exist again and none of them is an old
/// one, all made while the watches were still held (released after).
pub async fn change_template_and_delete_pods_behind_a_stale_cache<K>(
    cluster: &mut Cluster,
    gate: &gate::WatchGate,
    pods: &mut PodWatch,
    namespace: &str,
    name: &str,
    new_image: &str,
    replicas: usize,
) -> Vec<Pod>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let old_names: Vec<String> = pods.pods.keys().cloned().collect();
    let old_uids: Vec<String> = pods.pods.values().filter_map(|pod| pod.uid()).collect();
    let created_before = pods.created.len();
    cluster.stop_controllers().await;
    let (group, plural) = match K::kind(&()).as_ref() {
        "ReplicaSet" => ("apps/v1", "replicasets"),
        "StatefulSet" => ("apps/v1", "statefulsets"),
        other => panic!("no paths for {other}"),
    };
    let mut hold = gate.arm(
        &format!("/apis/{group}/{plural}"),
        &format!("/apis/{group}/namespaces/{namespace}/{plural}/{name}"),
    );
    cluster.start_controllers().await;
    hold.wait_for_gets(1).await;

    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "nginx", "image": new_image}]}}}});
    Api::<K>::namespaced(cluster.client.clone(), namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let pods_api = Api::<Pod>::namespaced(cluster.client.clone(), namespace);
    for pod in &old_names {
        pods_api
            .delete(pod, &DeleteParams::default().grace_period(0))
            .await
            .unwrap();
    }
    pods.until("every pod replaced", |current| {
        current.len() == replicas
            && current
                .values()
                .all(|pod| pod.uid().is_some_and(|uid| !old_uids.contains(&uid)))
    })
    .await;
    let _ = hold.release.send(true);
    pods.created[created_before..].to_vec()
}

/// Waits until the EndpointSlices of Service `service` satisfy `condition` (the endpoints
/// controller writes a Service's Endpoints first, then its slices); returns them.
pub async fn wait_for_slices(
    client: &kube::Client,
    ns: &str,
    service: &str,
    condition: impl Fn(&[EndpointSlice]) -> bool,
) -> Vec<EndpointSlice> {
    let api = Api::<EndpointSlice>::namespaced(client.clone(), ns);
    let config =
        watcher::Config::default().labels(&format!("kubernetes.io/service-name={service}"));
    let mut events = std::pin::pin!(watcher::watcher(api, config));
    let mut slices = std::collections::BTreeMap::new();
    let mut listed = false;
    loop {
        let event = tokio::time::timeout(HANG_GUARD, events.next())
            .await
            .expect("the EndpointSlices never got there")
            .expect("the watch ended")
            .unwrap();
        match event {
            watcher::Event::Init => slices.clear(),
            watcher::Event::InitApply(slice) | watcher::Event::Apply(slice) => {
                slices.insert(slice.name_any(), slice);
            }
            watcher::Event::Delete(slice) => {
                slices.remove(&slice.name_any());
            }
            watcher::Event::InitDone => listed = true,
        }
        let current: Vec<EndpointSlice> = slices.values().cloned().collect();
        if listed && condition(&current) {
            return current;
        }
    }
}
