//! What a step's body works with: the lab namespace, the cluster, and the harness's verbs
//! (apply, wait, exec, run once, on the node, retry), so that a lab reads like the tutorial and
//! never waits, diffs or cleans up by itself.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use k8s_labs_podutil::is_pod_running_and_ready;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Endpoints, Pod};
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::apply::{Applied, Applier};
use crate::exec::{CommandOutput, OneShotPod, exec_in_pod};
use crate::expect::relations::endpoints_are_ready_pod_ips;
use crate::expect::{GoldenOutcome, Redactions, expect_golden};
use crate::kept_values::{KeptValues, ValueKey};
use crate::provider::{ClusterFacts, NodeRun, Provider};
use crate::skip::Skip;
use crate::table::{endpoint_addresses, endpoints_column};
use crate::wait::{PodRecorder, is_statefulset_settled, wait_for};

/// First pause between two tries of a retried check; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between two tries of a retried check.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// State of one lab run shared by its steps.
pub(crate) struct LabShared {
    pub(crate) namespace: String,
    pub(crate) provider: Provider,
    pub(crate) manifests: PathBuf,
    expected: Option<PathBuf>,
    bless: bool,
    applier: tokio::sync::Mutex<Applier>,
    recorders: Mutex<HashMap<String, Arc<PodRecorder>>>,
    kept: KeptValues,
}

impl LabShared {
    pub(crate) fn new(
        namespace: String,
        provider: Provider,
        manifests: PathBuf,
        expected: Option<PathBuf>,
        bless: bool,
    ) -> LabShared {
        let applier = tokio::sync::Mutex::new(Applier::new(provider.client()));
        LabShared {
            namespace,
            provider,
            manifests,
            expected,
            bless,
            applier,
            recorders: Mutex::new(HashMap::new()),
            kept: KeptValues::default(),
        }
    }

    /// Stops the watches steps started, before the namespace goes.
    pub(crate) fn stop_recorders(&self) {
        self.recorders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// What one step's run records besides its outcome: how many tries its retried checks took
/// and which golden files `--bless` rewrote.
#[derive(Default)]
pub(crate) struct StepState {
    tries: AtomicUsize,
    first_failed_try: Mutex<Option<String>>,
    blessed: Mutex<Vec<(PathBuf, String)>>,
    highlights: Mutex<Vec<String>>,
    /// What the step waits for now (a wait's description), for the live progress line.
    waiting_for: Mutex<Option<String>>,
}

impl StepState {
    /// What the step waits for now, if it is in one of the context's waits.
    pub(crate) fn waiting_for(&self) -> Option<String> {
        self.waiting_for
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_waiting_for(&self, what: Option<String>) {
        *self
            .waiting_for
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = what;
    }

    pub(crate) fn tries(&self) -> usize {
        self.tries.load(Ordering::Relaxed)
    }

    pub(crate) fn first_failed_try(&self) -> Option<String> {
        self.first_failed_try
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record_failed_try(&self, error: &anyhow::Error) {
        self.first_failed_try
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(|| format!("{error:#}"));
    }

    pub(crate) fn blessed(&self) -> Vec<(PathBuf, String)> {
        self.blessed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn highlights(&self) -> Vec<String> {
        self.highlights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The context a step's body gets: cheap to clone, valid for the step's duration.
#[derive(Clone)]
pub struct StepContext {
    shared: Arc<LabShared>,
    deadline: Instant,
    state: Arc<StepState>,
}

/// Says what a step waits for while it exists (see [`StepContext::waiting`]).
pub(crate) struct Waiting<'a>(&'a StepState);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.set_waiting_for(None);
    }
}

impl StepContext {
    /// Marks the step as waiting for `what` until the returned guard is dropped, so that the
    /// progress line can say what it waits for.
    pub(crate) fn waiting(&self, what: &str) -> Waiting<'_> {
        self.state.set_waiting_for(Some(what.to_string()));
        Waiting(&self.state)
    }

    pub(crate) fn new(shared: Arc<LabShared>, deadline: Instant, state: Arc<StepState>) -> Self {
        StepContext {
            shared,
            deadline,
            state,
        }
    }

    /// What this run redacts from outputs: the generic placeholders plus its namespace as
    /// `[NS]`.
    pub fn redactions(&self) -> Redactions {
        Redactions::new().with_value(self.namespace(), "[NS]")
    }

    /// Claims that `actual`, redacted, matches the lab's golden file `expected/<file>` (see
    /// [`crate::expect::golden`]); with `--bless` a mismatch rewrites the file instead and the
    /// report lists it. Returns `actual` as observed, which is what the step should show: the
    /// console shows real values, and reports redact them.
    pub fn expect_golden(&self, file: &str, claim: &str, actual: &str) -> Result<String> {
        let dir = self.shared.expected.as_ref().ok_or_else(|| {
            anyhow!("this lab has no expected/ directory; give it one with Lab::expected")
        })?;
        let redacted = self.redactions().apply(actual);
        match expect_golden(claim, &dir.join(file), &redacted, self.shared.bless)? {
            GoldenOutcome::Matched => {}
            GoldenOutcome::Blessed { path, diff } => self
                .state
                .blessed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((path, diff)),
        }
        Ok(actual.to_string())
    }

    /// Marks `value` (an IP a relation matched, a page title) as what this step's claim
    /// checked: the console highlights it in the step's output, so that in a walkthrough
    /// the class sees the nslookup answer and the pod IP it equals.
    pub fn highlight(&self, value: impl Into<String>) {
        let value = value.into();
        if !value.is_empty() {
            self.state
                .highlights
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(value);
        }
    }

    /// The lab run's namespace (`lab-<lab>-<random>`), where the tutorial says `default`.
    pub fn namespace(&self) -> &str {
        &self.shared.namespace
    }

    /// A client for the cluster.
    pub fn client(&self) -> Client {
        self.shared.provider.client()
    }

    /// What was discovered about the cluster (DNS Service IP, version, StorageClass).
    pub fn facts(&self) -> &ClusterFacts {
        self.shared.provider.facts()
    }

    /// The cluster DNS Service IP; an error naming what is missing when the cluster has none.
    pub fn dns_ip(&self) -> Result<IpAddr> {
        self.facts().dns_service_ip.ok_or_else(|| {
            anyhow!("the cluster has no Service kube-dns (or coredns) in kube-system")
        })
    }

    /// When this step times out; waits and retries end there.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// `kubectl apply -f <file>`: applies the lab's manifest `file` into the namespace.
    pub async fn apply(&self, file: &str) -> Result<Vec<Applied>> {
        let path = self.shared.manifests.join(file);
        self.shared
            .applier
            .lock()
            .await
            .apply_file(&path, self.namespace())
            .await
    }

    /// What `kubectl apply -f <file>` prints: one line per object of the lab's manifest
    /// `file` (`statefulset.apps/web created`), once applied.
    pub async fn apply_output(&self, file: &str) -> Result<String> {
        let applied = self.apply(file).await?;
        Ok(applied.iter().map(|object| format!("{object}\n")).collect())
    }

    /// Starts recording, from a watch, the order in which pods of `selector` are created and
    /// become Ready. Call it before applying what creates them.
    pub async fn record_pods(&self, selector: &str) -> Result<()> {
        let recorder = PodRecorder::start(self.pods_api(), selector).await?;
        self.shared
            .recorders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(selector.to_string(), Arc::new(recorder));
        Ok(())
    }

    /// The recorder an earlier step started with [`StepContext::record_pods`].
    pub fn pod_recorder(&self, selector: &str) -> Result<Arc<PodRecorder>> {
        self.shared
            .recorders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(selector)
            .cloned()
            .ok_or_else(|| anyhow!("no step recorded the pods of {selector}"))
    }

    /// Waits (by watch) until StatefulSet `name` has all its replicas ready.
    pub async fn wait_statefulset_ready(&self, name: &str) -> Result<StatefulSet> {
        let api: Api<StatefulSet> = Api::namespaced(self.client(), self.namespace());
        let what = format!("StatefulSet {name} to have all replicas ready");
        let _waiting = self.waiting(&what);
        wait_for(api, name, &what, self.deadline, |statefulset| {
            statefulset.is_some_and(is_statefulset_settled)
        })
        .await?
        .ok_or_else(|| anyhow!("StatefulSet {name} disappeared"))
    }

    /// Waits (by watch) until pod `name` is Running and Ready.
    pub async fn wait_pod_running_ready(&self, name: &str) -> Result<Pod> {
        let what = format!("pod {name} to be Running and Ready");
        let _waiting = self.waiting(&what);
        wait_for(self.pods_api(), name, &what, self.deadline, |pod| {
            pod.is_some_and(is_pod_running_and_ready)
        })
        .await?
        .ok_or_else(|| anyhow!("pod {name} disappeared"))
    }

    /// `kubectl get <kind> <name>` in the namespace, for any namespaced kind. A missing object
    /// is one line (`Service "nginx" does not exist in namespace default`): in check mode that
    /// is often the whole answer (a misspelt name).
    pub async fn get<K>(&self, name: &str) -> Result<K>
    where
        K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        <K as Resource>::DynamicType: Default,
    {
        let kind = K::kind(&Default::default()).to_string();
        match Api::<K>::namespaced(self.client(), self.namespace())
            .get(name)
            .await
        {
            Ok(object) => Ok(object),
            Err(kube::Error::Api(status)) if status.is_not_found() => Err(anyhow!(
                "{kind} {name:?} does not exist in namespace {}",
                self.namespace()
            )),
            Err(error) => Err(error).with_context(|| format!("cannot read {kind} {name}")),
        }
    }

    /// `kubectl get ep <service>`, retried until the Endpoints list exactly the IPs of the
    /// Ready pods of `selector` on `port` (see
    /// [`crate::expect::relations::endpoints_are_ready_pod_ips`]); the ENDPOINTS column.
    pub async fn endpoints_of_ready_pods(
        &self,
        service: &str,
        selector: &str,
        port: i32,
    ) -> Result<String> {
        self.retry(|| async {
            let pods = self.pods(selector).await?;
            let endpoints: Endpoints = self.get(service).await?;
            endpoints_are_ready_pod_ips(&endpoints, &pods, port)?;
            Ok(endpoints_column(endpoint_addresses(&endpoints)))
        })
        .await
    }

    /// The pods of `selector` in the namespace, sorted by name.
    pub async fn pods(&self, selector: &str) -> Result<Vec<Pod>> {
        let mut pods = self
            .pods_api()
            .list(&ListParams::default().labels(selector))
            .await
            .with_context(|| format!("cannot list pods {selector}"))?
            .items;
        pods.sort_by_key(|pod| pod.name_any());
        Ok(pods)
    }

    /// `status.podIP` of pod `name`.
    pub async fn pod_ip(&self, name: &str) -> Result<IpAddr> {
        let pod = self
            .pods_api()
            .get(name)
            .await
            .with_context(|| format!("cannot read pod {name}"))?;
        pod.status
            .and_then(|status| status.pod_ip)
            .ok_or_else(|| anyhow!("pod {name} has no IP"))?
            .parse()
            .with_context(|| format!("pod {name} has an invalid IP"))
    }

    /// `kubectl exec <pod> -- <command>`.
    pub async fn exec(&self, pod: &str, command: &[&str]) -> Result<CommandOutput> {
        exec_in_pod(&self.client(), self.namespace(), pod, None, command).await
    }

    /// `kubectl run <name> --image <image> --restart=Never --rm -i -- <command>`: runs the
    /// command in a one-shot pod and returns its log; the pod is deleted afterwards.
    pub async fn run_once(
        &self,
        name: &str,
        image: &str,
        command: &[&str],
    ) -> Result<CommandOutput> {
        let command = command.iter().map(|part| part.to_string()).collect();
        let timeout = self.deadline.saturating_duration_since(Instant::now());
        OneShotPod::new(name, image, command)
            .run(&self.client(), self.namespace(), timeout)
            .await
    }

    /// [`StepContext::run_once`] retried (see [`StepContext::retry`]) until `check` accepts
    /// the output, for claims that hold only once DNS or endpoints have propagated. Each try
    /// gets a fresh pod name (`name`, then `name-2`, …), since a deleted pod's name may
    /// linger while it terminates.
    pub async fn run_once_until<T>(
        &self,
        name: &str,
        image: &str,
        command: &[&str],
        check: impl Fn(&CommandOutput) -> Result<T>,
    ) -> Result<T> {
        let attempt = AtomicUsize::new(0);
        self.retry(|| {
            let attempt = attempt.fetch_add(1, Ordering::Relaxed) + 1;
            let pod = if attempt == 1 {
                name.to_string()
            } else {
                format!("{name}-{attempt}")
            };
            let check = &check;
            async move {
                let output = self.run_once(&pod, image, command).await?;
                check(&output)
            }
        })
        .await
    }

    /// Runs `program args` on the node (see [`Provider::run_on_node`]); a [`Skip`] error when
    /// this cluster offers no way to (the step then ends as skipped).
    pub async fn on_node(&self, program: &str, args: &[&str]) -> Result<CommandOutput> {
        let timeout = self.deadline.saturating_duration_since(Instant::now());
        match self
            .shared
            .provider
            .run_on_node(self.namespace(), program, args, timeout)
            .await?
        {
            NodeRun::Ran(output) => Ok(output),
            NodeRun::Unavailable(reason) => Err(Skip::new(reason).into()),
        }
    }

    /// Runs `check` until it succeeds or the step's deadline comes, with a short doubling
    /// backoff between tries; returns the last error when time is up. For claims that hold
    /// only once something has propagated (DNS records, endpoints). The report shows the
    /// number of tries.
    pub async fn retry<T, F, Fut>(&self, mut check: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut last_error: Option<anyhow::Error> = None;
        loop {
            self.state.tries.fetch_add(1, Ordering::Relaxed);
            let error = match tokio::time::timeout_at(self.deadline, check()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) if Skip::of(&error).is_some() => return Err(error),
                Ok(Err(error)) => error,
                Err(_) => {
                    return Err(match last_error {
                        Some(error) => error.context("the step's time ran out during the next try"),
                        None => anyhow!("the step's time ran out during the first try"),
                    });
                }
            };
            if Instant::now() + backoff >= self.deadline {
                return Err(error);
            }
            self.state.record_failed_try(&error);
            last_error = Some(error);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Keeps a value observed by this step for a later step of this run to check against.
    pub fn remember<T: Clone + Send + Sync + 'static>(&self, key: &ValueKey<T>, value: T) {
        self.shared.kept.record(key, value);
    }

    /// The value an earlier step kept with [`StepContext::remember`]; an error naming it when
    /// none did, so a claim about it never passes with nothing checked.
    pub fn recall<T: Clone + Send + Sync + 'static>(&self, key: &ValueKey<T>) -> Result<T> {
        self.shared.kept.get(key)
    }

    fn pods_api(&self) -> Api<Pod> {
        Api::namespaced(self.client(), self.namespace())
    }
}
