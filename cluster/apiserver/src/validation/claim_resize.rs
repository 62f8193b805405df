//! kube-apiserver's PersistentVolumeClaimResize admission plugin: validation lets a bound
//! claim's storage request grow, and this decides whether the volume can follow. Only a
//! bound claim whose StorageClass says `allowVolumeExpansion: true` may grow; anything else
//! is a 403 (kind's `standard` class, like ours, does not allow it).

use k8s_labs_quantity::Quantity;
use serde_json::Value;

use crate::context::{Target, str_at};
use crate::errors::{ApiError, ApiResult};
use crate::store::Store;

/// The plugin for one update, with what it needs read from the store beforehand (the store
/// is locked while an update is decided).
#[derive(Debug, Default)]
pub struct ResizeAdmission {
    /// Set for updates of a claim (not of its status).
    claim: Option<String>,
    /// The StorageClass of the stored claim, if it has one and it exists.
    class: Option<Value>,
}

/// `GetPersistentVolumeClaimClass`: the beta annotation wins over `spec.storageClassName`.
fn class_name(claim: &Value) -> &str {
    claim
        .pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .or_else(|| claim.pointer("/spec/storageClassName"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn storage(claim: &Value) -> u128 {
    str_at(claim, "/spec/resources/requests/storage")
        .and_then(Quantity::parse)
        .map_or(0, Quantity::ceil)
}

impl ResizeAdmission {
    /// Reads the class of claim `name` when `target` is an update of claims.
    pub fn prepare(store: &Store, target: &Target, name: &str) -> ResizeAdmission {
        let resource = target.resource;
        if (resource.group, resource.plural) != ("", "persistentvolumeclaims")
            || target.subresource.is_some()
        {
            return ResizeAdmission::default();
        }
        let class = store
            .get(resource.store_key(), target.store_namespace(), name)
            .map(|claim| class_name(&claim).to_string())
            .filter(|class| !class.is_empty())
            .and_then(|class| store.get("storage.k8s.io/storageclasses", "", &class));
        ResizeAdmission {
            claim: Some(name.to_string()),
            class,
        }
    }

    /// Refuses growing `old`'s storage request unless the claim is bound and its class
    /// (unchanged) allows expansion.
    pub fn review(&self, old: &Value, new: &Value) -> ApiResult<()> {
        let Some(name) = &self.claim else {
            return Ok(());
        };
        if storage(new) <= storage(old) {
            return Ok(());
        }
        let forbidden =
            |message: &str| Err(ApiError::forbidden("persistentvolumeclaims", name, message));
        if str_at(old, "/status/phase") != Some("Bound") {
            return forbidden("Only bound persistent volume claims can be expanded");
        }
        let (class, old_class) = (class_name(new), class_name(old));
        let allowed = !class.is_empty()
            && class == old_class
            && self.class.as_ref().is_some_and(|c| {
                str_at(c, "/metadata/name") == Some(class)
                    && c.get("allowVolumeExpansion").and_then(Value::as_bool) == Some(true)
            });
        if allowed {
            return Ok(());
        }
        forbidden(
            "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(storage: &str, phase: &str) -> Value {
        json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "standard",
            "resources": {"requests": {"storage": storage}}}, "status": {"phase": phase}})
    }

    fn admission(expandable: Option<bool>) -> ResizeAdmission {
        let mut class = json!({"metadata": {"name": "standard"}});
        if let Some(allow) = expandable {
            class["allowVolumeExpansion"] = json!(allow);
        }
        ResizeAdmission {
            claim: Some("data".into()),
            class: Some(class),
        }
    }

    #[test]
    fn only_bound_claims_of_expandable_classes_grow() {
        let (old, new) = (claim("1Gi", "Bound"), claim("2Gi", "Bound"));
        assert!(admission(Some(true)).review(&old, &new).is_ok());
        let error = admission(None).review(&old, &new).unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (
                403,
                "persistentvolumeclaims \"data\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
            )
        );
        let error = admission(Some(true))
            .review(&claim("1Gi", "Pending"), &new)
            .unwrap_err();
        assert!(
            error
                .message
                .ends_with("Only bound persistent volume claims can be expanded")
        );
        // Not growing is not this plugin's business.
        assert!(admission(None).review(&new, &old).is_ok());
        assert!(ResizeAdmission::default().review(&old, &new).is_ok());
    }
}
