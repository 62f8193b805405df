//! Making sure a container's image is on the node before it starts, as the kubelet's
//! `EnsureImageExists`: the pull policy decides whether the store is asked first; a pull tries
//! the registry's mirrors, then the registry, and when none of them answers, the offline
//! catalog. One pull per reference runs at a time, so pods of one image download it once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::catalog::{Catalog, PullError};
use crate::image_store::ImageStore;
use crate::registry::{
    PullOptions, PullReference, PullStore, Puller, ReferenceRecord, StoredImage,
    describe_pull_error, registry_answered,
};

use super::credentials::{Credential, credentials_for};
use super::policy::PullPolicy;
use super::runnable::RunnableImage;
use super::sources::ImageSources;

/// How long a registry that did not answer is not asked again: pods of an offline classroom
/// start from the catalog at once instead of each waiting for a connection to fail.
const UNREACHABLE_FOR: Duration = Duration::from_secs(60);

/// The node's images: the pulled store, the catalog, and where to pull from.
#[derive(Debug)]
pub struct ImageManager {
    catalog: Catalog,
    built: ImageStore,
    pulled: PullStore,
    puller: Puller,
    sources: ImageSources,
    /// A lock per normalized reference, held during its pull.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Hosts that did not answer: until when they are skipped, and their error.
    unreachable: Mutex<HashMap<String, (Instant, String)>>,
}

/// An image ready to run, and what was pulled for it.
#[derive(Debug, Clone)]
pub struct Ensured {
    pub image: RunnableImage,
    /// How it was got: `None` when it was present.
    pub pulled: Option<PullReport>,
}

/// What the kubelet's `Pulled` event reports.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// `registry docker.io`, `mirror mirror.gcr.io`, or `offline catalog` (with why).
    pub source: String,
    /// The image's size in bytes; `None` for a catalog image (built here, not downloaded).
    pub size: Option<u64>,
    /// The pull itself.
    pub elapsed: Duration,
    /// The pull and the wait for another pull of the same reference.
    pub including_waiting: Duration,
}

/// Why a container's image is not there; each is a kubelet waiting reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnsureError {
    /// `InvalidImageName`.
    #[error("{0}")]
    InvalidName(String),
    /// `ErrImageNeverPull`.
    #[error("{0}")]
    NeverPull(String),
    /// `ErrImagePull`, with the registry's (or the connection's) error.
    #[error("{0}")]
    Pull(String),
    /// The catalog image could not be built (`CreateContainerError`).
    #[error("{0}")]
    Build(String),
}

/// A pull that failed: whether some source answered, and the error to report.
struct PullFailure {
    answered: bool,
    message: String,
}

impl ImageManager {
    /// A manager over the pulled store `pulled` and the catalog's images in `built`.
    pub fn new(
        catalog: Catalog,
        built: ImageStore,
        pulled: PullStore,
        sources: ImageSources,
    ) -> ImageManager {
        ImageManager {
            catalog,
            built,
            puller: Puller::new(pulled.clone()),
            pulled,
            sources,
            in_flight: Mutex::default(),
            unreachable: Mutex::default(),
        }
    }

    /// Makes sure `image` is on the node as `policy` says, pulling with the matching one of
    /// `credentials`; `pulling` is called just before a pull starts (the `Pulling` event).
    pub async fn ensure(
        &self,
        image: &str,
        policy: PullPolicy,
        credentials: &[Credential],
        pulling: impl FnOnce(),
    ) -> Result<Ensured, EnsureError> {
        let reference = PullReference::parse(image).map_err(|_| {
            EnsureError::InvalidName(format!(
                "Failed to apply default image tag {image:?}: couldn't parse image name \
                 {image:?}: invalid reference format"
            ))
        })?;
        let started = Instant::now();
        let lock = self.lock_for(&reference.to_string());
        let _one_pull_at_a_time = lock.lock().await;
        if policy != PullPolicy::Always
            && let Some(present) = self.present(&reference).await
        {
            return Ok(Ensured {
                image: present,
                pulled: None,
            });
        }
        if policy == PullPolicy::Never {
            return match self.catalog_image(image).await {
                Some(found) => found.map(|image| Ensured {
                    image,
                    pulled: None,
                }),
                None => Err(EnsureError::NeverPull(format!(
                    "Container image \"{image}\" is not present with pull policy of Never"
                ))),
            };
        }
        pulling();
        let pull_started = Instant::now();
        let report = |source: String, size| PullReport {
            source,
            size,
            elapsed: pull_started.elapsed(),
            including_waiting: started.elapsed(),
        };
        match self.pull(&reference, credentials).await {
            Ok((stored, source)) => {
                let size = Some(stored.record.size);
                Ok(Ensured {
                    image: RunnableImage::pulled(&reference, stored),
                    pulled: Some(report(source, size)),
                })
            }
            Err(failure) if failure.answered || !self.sources.catalog => {
                Err(EnsureError::Pull(failure.message))
            }
            Err(failure) => match self.catalog_image(image).await {
                Some(found) => found.map(|image| Ensured {
                    image,
                    pulled: Some(report("offline catalog".to_string(), None)),
                }),
                None => Err(EnsureError::Pull(format!(
                    "{}; the offline catalog (cluster/node/images.yaml) has no such image either",
                    failure.message
                ))),
            },
        }
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(key.to_string()).or_default().clone()
    }

    /// The stored image `reference` names: as last pulled by that name, or (a reference
    /// with a digest) the image of that digest.
    async fn present(&self, reference: &PullReference) -> Option<RunnableImage> {
        let store = self.pulled.clone();
        let key = reference.to_string();
        let digest = reference.digest.clone();
        let stored = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<StoredImage>> {
            if let Some(record) = store.reference(&key)? {
                return Ok(store.image(&record.digest)?.map(|image| StoredImage {
                    repo_digest: record.repo_digest.unwrap_or_else(|| image.digest.clone()),
                    ..image
                }));
            }
            match digest {
                Some(digest) => store.image(&digest),
                None => Ok(None),
            }
        })
        .await;
        match stored {
            Ok(Ok(stored)) => stored.map(|stored| RunnableImage::pulled(reference, stored)),
            Ok(Err(error)) => {
                tracing::warn!("reading the image store for {reference}: {error:#}");
                None
            }
            Err(_) => None,
        }
    }

    /// The catalog's image for `image`, built if needed; `None` when the catalog has none.
    async fn catalog_image(&self, image: &str) -> Option<Result<RunnableImage, EnsureError>> {
        let resolved = match self.catalog.resolve(image) {
            Ok(resolved) => resolved,
            Err(PullError::NotFound(_) | PullError::InvalidName(_)) => return None,
        };
        Some(
            match self.built.rootfs_async(resolved.entry.clone()).await {
                Ok(rootfs) => Ok(RunnableImage::from_catalog(&resolved, rootfs)),
                Err(error) => Err(EnsureError::Build(format!("{error:#}"))),
            },
        )
    }

    /// Pulls from the mirrors, then the registry; the first that has the image wins.
    async fn pull(
        &self,
        reference: &PullReference,
        credentials: &[Credential],
    ) -> Result<(StoredImage, String), PullFailure> {
        let mut hosts: Vec<(Option<String>, String)> = Vec::new();
        if self.sources.registries {
            for mirror in self.sources.mirrors_of(&reference.registry) {
                hosts.push((Some(mirror.clone()), format!("mirror {mirror}")));
            }
            hosts.push((None, format!("registry {}", reference.registry)));
        }
        let credential = credentials_for(credentials, reference)
            .map(|credential| (credential.username.clone(), credential.password.clone()));
        let mut answered: Option<String> = None;
        let mut unanswered: Vec<String> = Vec::new();
        for (mirror, source) in hosts {
            let host = mirror.clone().unwrap_or_else(|| reference.registry.clone());
            if let Some(error) = self.known_unreachable(&host) {
                unanswered.push(error);
                continue;
            }
            let options = PullOptions {
                insecure: self.sources.is_insecure(&host),
                // A mirror serves the registry's repositories, not its logins.
                credentials: credential.clone().filter(|_| mirror.is_none()),
                mirror,
            };
            match self.puller.pull_with(reference, &options).await {
                Ok(stored) => {
                    self.record(reference, &stored, &source).await;
                    return Ok((stored, source));
                }
                Err(error) if registry_answered(&error) => {
                    answered = Some(describe_pull_error(reference, &error));
                }
                Err(error) => {
                    let message = describe_pull_error(reference, &error);
                    self.mark_unreachable(&host, &message);
                    unanswered.push(message);
                }
            }
        }
        Err(match answered {
            Some(message) => PullFailure {
                answered: true,
                message,
            },
            None if unanswered.is_empty() => PullFailure {
                answered: false,
                message: format!(
                    "pulling image {reference}: registries are off in the image sources"
                ),
            },
            None => PullFailure {
                answered: false,
                message: unanswered.join("; "),
            },
        })
    }

    async fn record(&self, reference: &PullReference, stored: &StoredImage, source: &str) {
        let store = self.pulled.clone();
        let record = ReferenceRecord {
            reference: reference.to_string(),
            digest: stored.digest.clone(),
            repo_digest: Some(stored.repo_digest.clone()).filter(|repo| *repo != stored.digest),
            source: source.to_string(),
        };
        let written = tokio::task::spawn_blocking(move || store.record_reference(&record)).await;
        if let Ok(Err(error)) = written {
            tracing::warn!("recording {reference} in the image store: {error:#}");
        }
    }

    fn known_unreachable(&self, host: &str) -> Option<String> {
        let unreachable = self
            .unreachable
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        unreachable
            .get(host)
            .filter(|(until, _)| Instant::now() < *until)
            .map(|(_, error)| format!("{error} (not asked again for a minute)"))
    }

    fn mark_unreachable(&self, host: &str, error: &str) {
        let mut unreachable = self
            .unreachable
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        unreachable.insert(
            host.to_string(),
            (Instant::now() + UNREACHABLE_FOR, error.to_string()),
        );
    }
}
