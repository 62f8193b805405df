//! JSON merge patches, the controllers' usual write of a few fields (a status, a label, an
//! annotation), with the default patch parameters.

use std::fmt::Debug;
use std::future::Future;

use k8s_openapi::serde::Serialize;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::Api;
use kube::api::{Patch, PatchParams};

/// `merge_patch` and `merge_patch_status` on an [`Api`].
pub(crate) trait MergePatch<K> {
    /// A merge patch of the object `name`.
    fn merge_patch<P>(&self, name: &str, patch: P) -> impl Future<Output = kube::Result<K>> + Send
    where
        P: Serialize + Debug + Send + Sync;

    /// A merge patch of the `status` subresource of `name`.
    fn merge_patch_status<P>(
        &self,
        name: &str,
        patch: P,
    ) -> impl Future<Output = kube::Result<K>> + Send
    where
        P: Serialize + Debug + Send + Sync;
}

impl<K> MergePatch<K> for Api<K>
where
    K: Clone + DeserializeOwned + Debug + Send + Sync,
{
    async fn merge_patch<P>(&self, name: &str, patch: P) -> kube::Result<K>
    where
        P: Serialize + Debug + Send + Sync,
    {
        self.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
    }

    async fn merge_patch_status<P>(&self, name: &str, patch: P) -> kube::Result<K>
    where
        P: Serialize + Debug + Send + Sync,
    {
        self.patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
    }
}
