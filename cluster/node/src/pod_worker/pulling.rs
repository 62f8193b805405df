//! A container's image before it starts, with the kubelet's events and waiting reasons:
//! Pulling, Pulled (size and time, and which source served it), Failed with the registry's
//! error then `ErrImagePull` and `ImagePullBackOff` with back-off, `ErrImageNeverPull`,
//! `InvalidImageName`; credentials from the pod's `imagePullSecrets`.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{PodUpdate, PodWorker, next_backoff};
use crate::events::EventType;
use crate::images::{
    Credential, EnsureError, Ensured, PullPolicy, RunnableImage, go_duration, parse_docker_config,
};
use crate::status::SlotState;

impl PodWorker {
    /// The image of container `index`, pulled if its policy says so; `None` when it is not
    /// there (the slot then says why and when to try again) or the pod was deleted meanwhile.
    pub(super) async fn ensure_image(&mut self, index: usize) -> Option<RunnableImage> {
        let context = self.context.clone();
        let container = self.slots[index].container.clone();
        let name = container.name.clone();
        let image_name = container.image.clone().unwrap_or_default();
        let credentials = self.pull_credentials().await;
        let (events, involved) = (&context.events, &self.involved);
        let pulling = || {
            events.kubelet(
                involved,
                Some(&name),
                EventType::Normal,
                "Pulling",
                format!("Pulling image \"{image_name}\""),
            );
        };
        let ensure = context.images.ensure(
            &image_name,
            PullPolicy::of(&container),
            &credentials,
            pulling,
        );
        // A pull may take minutes: a pod deleted meanwhile must not wait for it.
        let result = tokio::select! {
            result = ensure => result,
            () = self.shutdown.cancelled() => return None,
            () = deleted(self.updates.clone()) => return None,
        };
        match result {
            Ok(Ensured { image, pulled }) => {
                let message = match pulled {
                    Some(report) => match report.size {
                        Some(size) => format!(
                            "Successfully pulled image \"{image_name}\" in {} ({} including \
                             waiting). Image size: {size} bytes. Source: {}.",
                            go_duration(report.elapsed),
                            go_duration(report.including_waiting),
                            report.source
                        ),
                        None => format!(
                            "Container image \"{image_name}\" already present on machine \
                             (served by the {}: no registry answered)",
                            report.source
                        ),
                    },
                    None if self.slots[index].image.is_none() => {
                        format!("Container image \"{image_name}\" already present on machine")
                    }
                    None => String::new(),
                };
                if !message.is_empty() {
                    events.kubelet(involved, Some(&name), EventType::Normal, "Pulled", message);
                }
                self.slots[index].image = Some(image.clone());
                Some(image)
            }
            Err(error) => {
                self.image_failed(index, &image_name, error);
                None
            }
        }
    }

    fn image_failed(&mut self, index: usize, image_name: &str, error: EnsureError) {
        let name = self.slots[index].container.name.clone();
        let events = &self.context.events;
        let warn = |reason: &str, message: String| {
            events.kubelet(
                &self.involved,
                Some(&name),
                EventType::Warning,
                reason,
                message,
            );
        };
        let (reason, message) = match error {
            EnsureError::Pull(message) => {
                warn(
                    "Failed",
                    format!("Failed to pull image \"{image_name}\": {message}"),
                );
                warn("Failed", "Error: ErrImagePull".to_string());
                ("ErrImagePull", message)
            }
            EnsureError::NeverPull(message) => {
                warn("ErrImageNeverPull", message.clone());
                warn("Failed", "Error: ErrImageNeverPull".to_string());
                ("ErrImageNeverPull", message)
            }
            EnsureError::InvalidName(message) => {
                warn("InspectFailed", message.clone());
                self.slots[index].state = SlotState::waiting("InvalidImageName", Some(message));
                return;
            }
            EnsureError::Build(message) => {
                self.create_failed(index, message);
                return;
            }
        };
        let slot = &mut self.slots[index];
        slot.state = SlotState::waiting(reason, Some(message));
        slot.backoff = next_backoff(slot.backoff);
        if reason == "ErrImagePull" {
            slot.pull_backoff_at = Some(Instant::now() + Duration::from_secs(1));
        }
        slot.due = Some(Instant::now() + slot.backoff);
    }

    /// The logins of the pod's `imagePullSecrets`. A secret that cannot be read or parsed is
    /// a warning event, as the kubelet's, and the pull goes on without it.
    async fn pull_credentials(&self) -> Vec<Credential> {
        let names: Vec<String> = self
            .pod
            .spec
            .as_ref()
            .and_then(|spec| spec.image_pull_secrets.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|reference| reference.name)
            .filter(|name| !name.is_empty())
            .collect();
        let secrets: Api<Secret> =
            Api::namespaced(self.context.client.clone(), &self.identity.namespace);
        let mut credentials = Vec::new();
        let mut missing = Vec::new();
        for name in names {
            let parsed = match secrets.get_opt(&name).await {
                Ok(Some(secret)) => {
                    parse_docker_config(&secret).map_err(|error| format!("{error:#}"))
                }
                Ok(None) => Err(format!("secret {name:?} not found")),
                Err(error) => Err(format!("reading secret {name:?}: {error}")),
            };
            match parsed {
                Ok(found) => credentials.extend(found),
                Err(reason) => {
                    tracing::warn!("image pull secret of {}: {reason}", self.identity.name);
                    missing.push(name);
                }
            }
        }
        if !missing.is_empty() {
            self.context.events.kubelet(
                &self.involved,
                None,
                EventType::Warning,
                "FailedToRetrieveImagePullSecret",
                format!(
                    "Unable to retrieve some image pull secrets ({}); attempting to pull the \
                     image may not succeed.",
                    missing.join(", ")
                ),
            );
        }
        credentials
    }
}

/// Resolves once the pod is gone or marked for deletion.
async fn deleted(mut updates: watch::Receiver<PodUpdate>) {
    let is_deleted = |update: &PodUpdate| match update {
        PodUpdate::Gone => true,
        PodUpdate::Present(pod) => is_marked(pod),
    };
    loop {
        if is_deleted(&updates.borrow_and_update()) {
            return;
        }
        if updates.changed().await.is_err() {
            return;
        }
    }
}

fn is_marked(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}
