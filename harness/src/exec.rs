//! Running commands the way the tutorial does: `kubectl exec` in a pod, and
//! `kubectl run --rm -i --restart=Never` one-shot pods, on the path kubectl takes: the pod is
//! created with `stdin: true, stdinOnce: true`, the harness waits (by watch) until it runs,
//! attaches to it and shows what the attach delivered, or the pod's log when it had already
//! finished or the attach was refused; then it deletes the pod. So when a cluster loses what a
//! student's `kubectl run -i` would show, a lab sees it too.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{AttachParams, DeleteParams, LogParams, PostParams};
use kube::{Api, Client};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use k8s_labs_podutil::{is_pod_running_and_ready, is_pod_terminal};

use crate::wait::wait_for;

/// Waiting for the pod to go is cleanup: it gets at least this long, also when the run's time
/// ran out while the pod ran, so that the run reports what the pod did, not a deletion cut
/// short (the caller's own timeout still bounds the whole run).
const REMOVAL_GRACE: Duration = Duration::from_secs(10);

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// Standard output (for a one-shot pod whose attach was refused: its log, stdout and
    /// stderr interleaved).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The exit code, when it is known.
    pub exit_code: Option<i32>,
}

impl CommandOutput {
    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// Stdout followed by stderr, for showing what a command said.
    pub fn combined(&self) -> String {
        let mut text = self.stdout.clone();
        if !self.stderr.is_empty() {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&self.stderr);
        }
        text
    }
}

/// Runs `command` in container `container` (or the pod's only one) of pod `pod`, like
/// `kubectl exec pod -- command`, and collects its output and exit code.
pub async fn exec_in_pod(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    command: &[&str],
) -> Result<CommandOutput> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut params = AttachParams::default()
        .stdout(true)
        .stderr(true)
        .stdin(false);
    if let Some(container) = container {
        params = params.container(container);
    }
    let mut attached = pods
        .exec(pod, command.iter().copied(), &params)
        .await
        .with_context(|| format!("cannot exec {command:?} in pod {namespace}/{pod}"))?;
    let stdout = attached.stdout();
    let stderr = attached.stderr();
    let status = attached.take_status();
    let (stdout, stderr) = tokio::join!(read_all(stdout), read_all(stderr));
    let status = match status {
        Some(status) => status.await,
        None => None,
    };
    if let Err(error) = attached.join().await {
        tracing::debug!("exec stream of {namespace}/{pod} ended with {error}");
    }
    let exit_code = match status {
        None => None,
        Some(status) => match status.status {
            Some(summary) if summary == "Success" => Some(0),
            _ => match exit_code_of(&status) {
                Some(code) => Some(code),
                None => {
                    return Err(anyhow!(
                        "exec {command:?} in pod {namespace}/{pod} failed: {}",
                        status.message.as_deref().unwrap_or("(no message)")
                    ));
                }
            },
        },
    };
    Ok(CommandOutput {
        stdout: stdout?,
        stderr: stderr?,
        exit_code,
    })
}

/// The exit code of a failed exec: the API server reports it as reason `NonZeroExitCode` with
/// a cause `ExitCode` whose message is the number.
fn exit_code_of(status: &Status) -> Option<i32> {
    status
        .details
        .as_ref()?
        .causes
        .as_ref()?
        .iter()
        .find(|cause| cause.reason.as_deref() == Some("ExitCode"))
        .and_then(|cause| cause.message.as_deref())
        .and_then(|message| message.trim().parse().ok())
}

async fn read_all(reader: Option<impl AsyncRead + Unpin>) -> Result<String> {
    let mut buffer = Vec::new();
    if let Some(mut reader) = reader {
        reader
            .read_to_end(&mut buffer)
            .await
            .context("reading exec output")?;
    }
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

/// A pod that runs one command to completion and is removed afterwards: the non-interactive
/// form of `kubectl run NAME --image IMAGE --restart=Never --rm -i -- COMMAND`.
#[derive(Debug, Clone)]
pub struct OneShotPod {
    name: String,
    image: String,
    command: Vec<String>,
    host_network: bool,
}

impl OneShotPod {
    /// A one-shot pod `name` running `command` (the container's command, replacing the
    /// image's entrypoint) in `image`.
    pub fn new(name: &str, image: &str, command: Vec<String>) -> OneShotPod {
        OneShotPod {
            name: name.to_string(),
            image: image.to_string(),
            command,
            host_network: false,
        }
    }

    /// Runs the pod in the node's network namespace (`hostNetwork: true`).
    pub fn host_network(mut self) -> OneShotPod {
        self.host_network = true;
        self
    }

    /// The Pod object, as `kubectl run -i` builds it (container named like the pod, its
    /// stdin open for the first attach).
    pub fn manifest(&self) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(self.name.clone());
        pod.metadata.labels = Some(
            [("run".to_string(), self.name.clone())]
                .into_iter()
                .collect(),
        );
        pod.spec = Some(PodSpec {
            restart_policy: Some("Never".to_string()),
            host_network: self.host_network.then_some(true),
            containers: vec![Container {
                name: self.name.clone(),
                image: Some(self.image.clone()),
                command: Some(self.command.clone()),
                stdin: Some(true),
                stdin_once: Some(true),
                ..Default::default()
            }],
            ..Default::default()
        });
        pod
    }

    /// Creates the pod in `namespace`, shows what it prints (see the module documentation),
    /// waits (by watch) until it has finished, and deletes it — also when something failed —
    /// and waits until it is gone. `timeout` bounds the run up to its deletion, which may take
    /// up to 10 s more.
    pub async fn run(
        &self,
        client: &Client,
        namespace: &str,
        timeout: Duration,
    ) -> Result<CommandOutput> {
        let deadline = Instant::now() + timeout;
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        pods.create(&PostParams::default(), &self.manifest())
            .await
            .with_context(|| format!("cannot create pod {namespace}/{}", self.name))?;
        let result = self.finish(&pods, deadline).await;
        let removal = self
            .remove(&pods, deadline.max(Instant::now() + REMOVAL_GRACE))
            .await;
        let output = result?;
        removal?;
        Ok(output)
    }

    async fn finish(&self, pods: &Api<Pod>, deadline: Instant) -> Result<CommandOutput> {
        // kubectl waits for "Running and Ready, or completed" before it attaches.
        let what = format!("pod {} to run", self.name);
        let started = wait_for(pods.clone(), &self.name, &what, deadline, |pod| {
            pod.is_none_or(|pod| is_pod_running_and_ready(pod) || is_pod_terminal(pod))
        })
        .await?
        .ok_or_else(|| anyhow!("pod {} disappeared before it ran", self.name))?;
        let attached = if is_pod_terminal(&started) {
            None
        } else {
            // Bounded like the waits, so that the pod is still removed when time runs out.
            tokio::time::timeout_at(deadline, self.attach(pods))
                .await
                .ok()
                .flatten()
        };
        let what = format!("pod {} to finish", self.name);
        let finished = wait_for(pods.clone(), &self.name, &what, deadline, |pod| {
            pod.is_none_or(is_pod_terminal)
        })
        .await?
        .ok_or_else(|| anyhow!("pod {} disappeared before it finished", self.name))?;
        let (stdout, stderr) = match attached {
            Some(output) => output,
            None => (self.log(pods).await?, String::new()),
        };
        let exit_code = finished
            .status
            .as_ref()
            .and_then(|status| status.container_statuses.as_ref())
            .and_then(|statuses| statuses.first())
            .and_then(|status| status.state.as_ref())
            .and_then(|state| state.terminated.as_ref())
            .map(|terminated| terminated.exit_code);
        Ok(CommandOutput {
            stdout,
            stderr,
            exit_code,
        })
    }

    /// What attaching delivers until the container ends: `(stdout, stderr)`, or `None` when
    /// the attach is refused (the container has already ended), where kubectl falls back to
    /// the log.
    async fn attach(&self, pods: &Api<Pod>) -> Option<(String, String)> {
        let params = AttachParams::default()
            .stdin(true)
            .stdout(true)
            .stderr(true);
        let mut attached = match pods.attach(&self.name, &params).await {
            Ok(attached) => attached,
            Err(error) => {
                tracing::debug!(
                    "attaching to {} failed, reading its log: {error}",
                    self.name
                );
                return None;
            }
        };
        // Nothing to type: the stdin that stdinOnce closes when this session leaves.
        drop(attached.stdin());
        let (stdout, stderr) =
            tokio::join!(read_all(attached.stdout()), read_all(attached.stderr()));
        if let Err(error) = attached.join().await {
            tracing::debug!("attach stream of {} ended with {error}", self.name);
        }
        match (stdout, stderr) {
            (Ok(stdout), Ok(stderr)) => Some((stdout, stderr)),
            (Err(error), _) | (_, Err(error)) => {
                tracing::debug!(
                    "reading the attach of {} failed, reading its log: {error:#}",
                    self.name
                );
                None
            }
        }
    }

    async fn log(&self, pods: &Api<Pod>) -> Result<String> {
        pods.logs(&self.name, &LogParams::default())
            .await
            .with_context(|| format!("cannot read the log of pod {}", self.name))
    }

    async fn remove(&self, pods: &Api<Pod>, deadline: Instant) -> Result<()> {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        match pods.delete(&self.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => return Ok(()),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot delete pod {}", self.name));
            }
        }
        let what = format!("pod {} to be deleted", self.name);
        wait_for(pods.clone(), &self.name, &what, deadline, |pod| {
            pod.is_none()
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    #[test]
    fn exit_code_comes_from_the_exit_code_cause() {
        let status = Status {
            status: Some("Failure".into()),
            message: Some("command terminated with non-zero exit code".into()),
            reason: Some("NonZeroExitCode".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some("7".into()),
                    field: None,
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(exit_code_of(&status), Some(7));
    }

    #[test]
    fn one_shot_pod_is_a_never_restarting_pod_with_the_command() {
        let pod = OneShotPod::new(
            "dns-test",
            "busybox:1.28",
            vec!["nslookup".into(), "web-0.nginx".into()],
        )
        .manifest();
        let spec = pod.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.host_network, None);
        assert_eq!(spec.containers[0].name, "dns-test");
        // What `kubectl run -i` sets, so that the first attach gets the command's output.
        assert_eq!(spec.containers[0].stdin, Some(true));
        assert_eq!(spec.containers[0].stdin_once, Some(true));
        assert_eq!(
            spec.containers[0].command.as_deref(),
            Some(&["nslookup".to_string(), "web-0.nginx".to_string()][..])
        );
    }

    #[test]
    fn combined_output_separates_streams_by_a_newline() {
        let output = CommandOutput {
            stdout: "out".into(),
            stderr: "err\n".into(),
            exit_code: Some(1),
        };
        assert_eq!(output.combined(), "out\nerr\n");
        assert!(!output.success());
    }
}
