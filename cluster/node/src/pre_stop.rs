//! A container's `preStop` hook, run as the kubelet's lifecycle handler runner runs it
//! (`pkg/kubelet/lifecycle/handlers.go`): an `exec` command in the container through the
//! runtime, an `httpGet` from inside the pod's network namespace (its answer's status does not
//! matter, only that one came), or a `sleep`. A failure is the Warning `FailedPreStopHook`
//! "PreStopHook failed": the kubelet leaves the hook's output out of the event, so that what
//! a hook prints (secrets among it) does not end up in the API.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use k8s_labs_net::PodNetwork;
use k8s_openapi::api::core::v1::{Container, LifecycleHandler};

use crate::events::{EventRecorder, EventType, InvolvedPod};
use crate::probes::{go_style, http_get, resolve_port};
use crate::runtime::Runc;

/// How long the hook's HTTP request may take: the kubelet's lifecycle HTTP client has no
/// timeout of its own, the grace period bounds it; this only keeps a blocked connect from
/// holding a thread past any grace period.
const HTTP_TIMEOUT: Duration = Duration::from_secs(600);

/// One container's `preStop` hook and what running it needs.
#[derive(Debug, Clone)]
pub struct PreStopHook {
    pub handler: LifecycleHandler,
    pub container: Container,
    /// The pod's network, for an `httpGet` hook.
    pub network: Option<PodNetwork>,
    pub events: EventRecorder,
    pub pod: InvolvedPod,
}

impl PreStopHook {
    /// Runs the hook in container `runc_id` to its end, recording `FailedPreStopHook` when it
    /// fails. The caller bounds it by the grace period (dropping the future ends `runc exec`).
    pub async fn run(&self, runc: &Runc, runc_id: &str) {
        if let Err(error) = self.run_handler(runc, runc_id).await {
            tracing::info!(
                "preStop hook of container {} in pod {}/{} failed: {error}",
                self.container.name,
                self.pod.namespace,
                self.pod.name
            );
            self.events.kubelet(
                &self.pod,
                Some(&self.container.name),
                EventType::Warning,
                "FailedPreStopHook",
                "PreStopHook failed".to_string(),
            );
        }
    }

    async fn run_handler(&self, runc: &Runc, runc_id: &str) -> Result<(), String> {
        let handler = &self.handler;
        if let Some(exec) = &handler.exec {
            return exec_in(runc, runc_id, exec.command.as_deref().unwrap_or_default()).await;
        }
        if let Some(http) = &handler.http_get {
            let network = self
                .network
                .clone()
                .ok_or_else(|| "the pod has no network".to_string())?;
            let port = resolve_port(&http.port, &self.container)?;
            let host: Ipv4Addr = http
                .host
                .as_deref()
                .and_then(|host| host.parse().ok())
                .unwrap_or(network.ip);
            let path = http.path.clone().unwrap_or_else(|| "/".to_string());
            let address = SocketAddr::from((host, port));
            let url = format!("http://{address}{path}");
            let answered = tokio::task::spawn_blocking(move || {
                http_get(&network, address, &path, HTTP_TIMEOUT, "kube-lifecycle")
            })
            .await
            .map_err(|error| error.to_string())?;
            return answered.map(|_| ()).map_err(|error| {
                format!(
                    "Get \"{url}\": dial tcp {address}: connect: {}",
                    go_style(&error)
                )
            });
        }
        if let Some(sleep) = &handler.sleep {
            let seconds = u64::try_from(sleep.seconds).unwrap_or(0);
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            return Ok(());
        }
        Err(format!("invalid handler: {handler:?}"))
    }
}

/// `runc exec` of `command` in the container, as its own process (environment, user and
/// working directory); an exit status other than 0 is a failure.
async fn exec_in(runc: &Runc, runc_id: &str, command: &[String]) -> Result<(), String> {
    let mut args = vec!["exec", runc_id];
    args.extend(command.iter().map(String::as_str));
    let mut exec = runc.command(&args);
    exec.stdin(std::process::Stdio::null()).kill_on_drop(true);
    let output = exec.output().await.map_err(|error| error.to_string())?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Err(format!(
        "command {command:?} exited with {}: {}",
        output.status.code().unwrap_or(-1),
        text.trim()
    ))
}
