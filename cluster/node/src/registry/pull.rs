//! Pulling an image: its manifest (the host platform's, when the reference names an index),
//! its config and layer blobs into the store (those already there are not fetched again), then
//! its root filesystem. Over HTTPS except for registries on this machine or named insecure;
//! anonymous, or with the credentials of an image pull secret; from the registry itself or a
//! mirror of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::platform::host_platform;
use super::progress::PullProgress;
use super::reference::{PullReference, is_local};
use super::store::{PullStore, StoredImage};

/// How long a registry may take to accept a connection before it counts as not answering
/// (and the next source is tried).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Pulls images into a [`PullStore`].
#[derive(Clone)]
pub struct Puller {
    store: PullStore,
    /// One client per registry host, transport and login, kept between pulls: making one
    /// loads the TLS roots (tens of milliseconds), and it keeps its connections and bearer
    /// tokens. Keyed by the login too, so a token one pod's pull secret earned never serves
    /// another pod's anonymous pull.
    clients: Arc<Mutex<HashMap<ClientKey, Client>>>,
}

type ClientKey = (String, bool, Option<(String, String)>);

impl std::fmt::Debug for Puller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Puller")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Where and how one pull reaches its registry.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Another registry serving the same repositories (`mirror.gcr.io`), asked instead of
    /// the reference's own; it gets the original registry as `?ns=`, as containerd sends it.
    pub mirror: Option<String>,
    /// Plain HTTP even though the registry is not on this machine.
    pub insecure: bool,
    /// `user:password` for the registry; anonymous when `None`.
    pub credentials: Option<(String, String)>,
}

/// Whether a failed pull reached a registry: one that answered (a missing tag, a refused
/// login) decides the pull; one that did not (no such host, connection refused or timed
/// out) lets the next source be tried.
pub fn registry_answered(error: &anyhow::Error) -> bool {
    for cause in error.chain() {
        if let Some(OciDistributionError::RequestError(request)) =
            cause.downcast_ref::<OciDistributionError>()
        {
            return !(request.is_connect() || request.is_timeout());
        }
    }
    true
}

impl Puller {
    /// A puller that stores into `store`.
    pub fn new(store: PullStore) -> Puller {
        Puller {
            store,
            clients: Arc::default(),
        }
    }

    /// Pulls `reference` (`nginx`, `localhost:5000/x:y`, `…@sha256:<hex>`) and returns the
    /// stored image. Errors name the reference.
    pub async fn pull(&self, reference: &str) -> Result<StoredImage> {
        let parsed = PullReference::parse(reference)?;
        self.pull_with(&parsed, &PullOptions::default()).await
    }

    /// Pulls `reference` as `options` say. Errors name the reference (and the mirror).
    pub async fn pull_with(
        &self,
        reference: &PullReference,
        options: &PullOptions,
    ) -> Result<StoredImage> {
        let result = self.pull_parsed(reference, options).await;
        match &options.mirror {
            Some(mirror) => {
                result.with_context(|| format!("pulling image {reference} from {mirror}"))
            }
            None => result.with_context(|| format!("pulling image {reference}")),
        }
    }

    async fn pull_parsed(
        &self,
        reference: &PullReference,
        options: &PullOptions,
    ) -> Result<StoredImage> {
        let host = options.mirror.as_deref().unwrap_or(&reference.registry);
        let client = self.client_for(host, options);
        let mut oci = reference.to_oci();
        if let Some(mirror) = &options.mirror {
            oci.set_mirror_registry(mirror.clone());
        }
        let auth = match &options.credentials {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        };
        let (manifest, digest, index_digest) = client
            .pull_image_manifest_and_list_digest(&oci, &auth)
            .await
            .context("fetching the manifest")?;
        let repo_digest = index_digest.unwrap_or_else(|| digest.clone());
        if let Some(image) = self.store.image(&digest)? {
            return Ok(StoredImage {
                repo_digest,
                ..image
            });
        }
        let mut total = 0;
        for descriptor in manifest.layers.iter().chain([&manifest.config]) {
            if !self.store.has_blob(&descriptor.digest)? {
                total += u64::try_from(descriptor.size).unwrap_or(0);
            }
        }
        let progress = PullProgress::start(reference.to_string(), total);
        self.fetch_blob(&client, &oci, &manifest.config, &progress)
            .await?;
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for layer in &manifest.layers {
            self.fetch_blob(&client, &oci, layer, &progress).await?;
            layers.push(layer.digest.clone());
        }
        drop(progress);
        let store = self.store.clone();
        let config = manifest.config.digest.clone();
        tokio::task::spawn_blocking(move || {
            for layer in &layers {
                store.unpack_layer(layer)?;
            }
            store.build_image(&digest, &config, &layers)
        })
        .await
        .context("the unpacking task failed")?
        .map(|image| StoredImage {
            repo_digest,
            ..image
        })
    }

    /// Fetches a blob into the store unless it is there already. oci-client checks the digest
    /// as the blob streams in; the store checks it again before naming the file by it.
    async fn fetch_blob(
        &self,
        client: &Client,
        reference: &Reference,
        descriptor: &oci_client::manifest::OciDescriptor,
        progress: &PullProgress,
    ) -> Result<()> {
        let digest = &descriptor.digest;
        if self.store.has_blob(digest)? {
            return Ok(());
        }
        let temp = self.store.temp_path("blob");
        let result = async {
            let mut file = tokio::fs::File::create(&temp).await?;
            client
                .pull_blob(reference, descriptor, progress.counting(&mut file))
                .await?;
            file.sync_all().await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(error) = result {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(error.context(format!("fetching blob {digest}")));
        }
        self.store.commit_blob(&temp, digest)?;
        Ok(())
    }
}

impl Puller {
    fn client_for(&self, host: &str, options: &PullOptions) -> Client {
        let plain_http = options.insecure || is_local(host);
        let key = (host.to_string(), plain_http, options.credentials.clone());
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        clients
            .entry(key)
            .or_insert_with(|| new_client(host, plain_http))
            .clone()
    }
}

/// A client for the registry `host`: plain HTTP only when `plain_http` (a registry on this
/// machine, as Docker allows without configuration, or one configured insecure); the host
/// platform's manifest from an index.
fn new_client(host: &str, plain_http: bool) -> Client {
    // reqwest is built without a bundled crypto provider (the workspace uses ring only), so
    // rustls needs one installed before a client exists; a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let protocol = if plain_http {
        ClientProtocol::HttpsExcept(vec![host.to_string()])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        platform_resolver: Some(Box::new(host_platform)),
        connect_timeout: Some(CONNECT_TIMEOUT),
        ..ClientConfig::default()
    })
}
