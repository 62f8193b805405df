//! Pulling an image: its manifest (the host platform's, when the reference names an index),
//! its config and layer blobs into the store (those already there are not fetched again), then
//! its root filesystem. Anonymous pulls only, over HTTPS except for registries on this machine.

use anyhow::{Context, Result};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::platform::host_platform;
use super::reference::PullReference;
use super::store::{PullStore, StoredImage};

/// Pulls images into a [`PullStore`].
#[derive(Debug, Clone)]
pub struct Puller {
    store: PullStore,
}

impl Puller {
    /// A puller that stores into `store`.
    pub fn new(store: PullStore) -> Puller {
        Puller { store }
    }

    /// Pulls `reference` (`nginx`, `localhost:5000/x:y`, `…@sha256:<hex>`) and returns the
    /// stored image. Errors name the reference.
    pub async fn pull(&self, reference: &str) -> Result<StoredImage> {
        let parsed = PullReference::parse(reference)?;
        self.pull_parsed(&parsed)
            .await
            .with_context(|| format!("pulling image {parsed}"))
    }

    async fn pull_parsed(&self, reference: &PullReference) -> Result<StoredImage> {
        let client = client_for(reference);
        let oci = reference.to_oci();
        let (manifest, digest) = client
            .pull_image_manifest(&oci, &RegistryAuth::Anonymous)
            .await
            .context("fetching the manifest")?;
        if let Some(image) = self.store.image(&digest)? {
            return Ok(image);
        }
        self.fetch_blob(&client, &oci, &manifest.config).await?;
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for layer in &manifest.layers {
            self.fetch_blob(&client, &oci, layer).await?;
            layers.push(layer.digest.clone());
        }
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
    }

    /// Fetches a blob into the store unless it is there already. oci-client checks the digest
    /// as the blob streams in; the store checks it again before naming the file by it.
    async fn fetch_blob(
        &self,
        client: &Client,
        reference: &Reference,
        descriptor: &oci_client::manifest::OciDescriptor,
    ) -> Result<()> {
        let digest = &descriptor.digest;
        if self.store.has_blob(digest)? {
            return Ok(());
        }
        let temp = self.store.temp_path("blob");
        let result = async {
            let mut file = tokio::fs::File::create(&temp).await?;
            client.pull_blob(reference, descriptor, &mut file).await?;
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

/// A client for the reference's registry: plain HTTP only for a registry on this machine, as
/// Docker allows without configuration; the host platform's manifest from an index.
fn client_for(reference: &PullReference) -> Client {
    // reqwest is built without a bundled crypto provider (the workspace uses ring only), so
    // rustls needs one installed before a client exists; a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let protocol = if reference.is_local() {
        ClientProtocol::HttpsExcept(vec![reference.registry.clone()])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        platform_resolver: Some(Box::new(host_platform)),
        ..ClientConfig::default()
    })
}
