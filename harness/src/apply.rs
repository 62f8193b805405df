//! `kubectl apply -f FILE`: multi-document YAML → dynamic objects → the API resource of each
//! kind found through discovery → server-side apply into the lab namespace.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{ApiCapabilities, Scope, pinned_kind};
use kube::{Api, Client, ResourceExt};

/// The field manager of every apply the harness makes.
pub const FIELD_MANAGER: &str = "k8s-labs";

/// What happened to one applied object, in kubectl's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyAction {
    /// The object did not exist.
    Created,
    /// The object existed and changed.
    Configured,
    /// The object existed and the apply changed nothing.
    Unchanged,
}

impl fmt::Display for ApplyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApplyAction::Created => "created",
            ApplyAction::Configured => "configured",
            ApplyAction::Unchanged => "unchanged",
        })
    }
}

/// One object of an apply, printed like kubectl does: `statefulset.apps/web created`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Lower-case kind with its group, `service` or `statefulset.apps`.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// What the apply did.
    pub action: ApplyAction,
}

impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.kind, self.name, self.action)
    }
}

/// Parses a multi-document YAML text into dynamic objects; empty documents are skipped.
/// Octal-looking numbers (`0644`) are read as YAML 1.1 octal, as kubectl does, so that file
/// modes in manifests mean what their authors meant.
pub fn parse_manifests(yaml: &str) -> Result<Vec<DynamicObject>> {
    let options = serde_saphyr::options! { legacy_octal_numbers: true };
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple_with_options(yaml, options)
        .map_err(|error| anyhow!("{error}"))?;
    documents
        .into_iter()
        .filter(|document| !document.is_null())
        .enumerate()
        .map(|(index, document)| {
            let object: DynamicObject = serde_json::from_value(document)
                .with_context(|| format!("document {} is not a Kubernetes object", index + 1))?;
            if object.types.is_none() {
                bail!("document {} has no apiVersion/kind", index + 1);
            }
            if object.metadata.name.is_none() {
                bail!("document {} has no metadata.name", index + 1);
            }
            Ok(object)
        })
        .collect()
}

/// Applies manifests to a cluster, caching what discovery said about each kind.
pub struct Applier {
    client: Client,
    resources: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>,
}

impl Applier {
    /// An applier using `client`.
    pub fn new(client: Client) -> Applier {
        Applier {
            client,
            resources: HashMap::new(),
        }
    }

    /// Reads the manifest file at `path` and applies every object in it into `namespace`.
    pub async fn apply_file(&mut self, path: &Path, namespace: &str) -> Result<Vec<Applied>> {
        let yaml = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let objects = parse_manifests(&yaml).with_context(|| format!("{}", path.display()))?;
        let mut applied = Vec::with_capacity(objects.len());
        for object in objects {
            applied.push(
                self.apply(object, namespace)
                    .await
                    .with_context(|| format!("applying {}", path.display()))?,
            );
        }
        Ok(applied)
    }

    /// Server-side applies one object (forcing conflicts, as the lab owns its namespace).
    /// Namespaced objects go into `namespace`, whatever their manifest says.
    pub async fn apply(&mut self, mut object: DynamicObject, namespace: &str) -> Result<Applied> {
        let gvk = gvk_of(&object)?;
        let (resource, capabilities) = self.resolve(&gvk).await?;
        let name = object.name_any();
        let api: Api<DynamicObject> = match capabilities.scope {
            Scope::Namespaced => {
                object.metadata.namespace = Some(namespace.to_string());
                Api::namespaced_with(self.client.clone(), namespace, &resource)
            }
            Scope::Cluster => Api::all_with(self.client.clone(), &resource),
        };
        let before = api
            .get_opt(&name)
            .await
            .with_context(|| format!("cannot read {}/{name}", resource.kind))?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let after = api
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .with_context(|| format!("server-side apply of {}/{name} failed", resource.kind))?;
        let action = match before {
            None => ApplyAction::Created,
            Some(before) if before.resource_version() == after.resource_version() => {
                ApplyAction::Unchanged
            }
            Some(_) => ApplyAction::Configured,
        };
        Ok(Applied {
            kind: kubectl_kind(&resource),
            name,
            action,
        })
    }

    async fn resolve(&mut self, gvk: &GroupVersionKind) -> Result<(ApiResource, ApiCapabilities)> {
        if let Some(found) = self.resources.get(gvk) {
            return Ok(found.clone());
        }
        let found = pinned_kind(&self.client, gvk).await.with_context(|| {
            format!(
                "the cluster does not serve kind {} in {}",
                gvk.kind,
                api_version(gvk)
            )
        })?;
        self.resources.insert(gvk.clone(), found.clone());
        Ok(found)
    }
}

fn gvk_of(object: &DynamicObject) -> Result<GroupVersionKind> {
    let types = object
        .types
        .as_ref()
        .ok_or_else(|| anyhow!("object {} has no apiVersion/kind", object.name_any()))?;
    let (group, version) = match types.api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", types.api_version.as_str()),
    };
    Ok(GroupVersionKind::gvk(group, version, &types.kind))
}

fn api_version(gvk: &GroupVersionKind) -> String {
    if gvk.group.is_empty() {
        gvk.version.clone()
    } else {
        format!("{}/{}", gvk.group, gvk.version)
    }
}

/// kubectl's name for a kind in `kind/name` output: lower-case kind, dot, group.
fn kubectl_kind(resource: &ApiResource) -> String {
    let kind = resource.kind.to_lowercase();
    if resource.group.is_empty() {
        kind
    } else {
        format!("{kind}.{}", resource.group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB_YAML: &str = include_str!("../../manifests/statefulset-dns/web.yaml");

    #[test]
    fn parses_the_tutorials_web_yaml_into_a_service_and_a_statefulset() {
        let objects = parse_manifests(WEB_YAML).unwrap();
        let kinds: Vec<(String, String, String)> = objects
            .iter()
            .map(|object| {
                let types = object.types.clone().unwrap();
                (types.api_version, types.kind, object.name_any())
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("v1".into(), "Service".into(), "nginx".into()),
                ("apps/v1".into(), "StatefulSet".into(), "web".into()),
            ]
        );
        assert_eq!(objects[1].data["spec"]["replicas"], 3);
        assert_eq!(objects[0].data["spec"]["clusterIP"], "None");
    }

    #[test]
    fn leading_document_separator_and_empty_documents_are_skipped() {
        let yaml = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\n";
        let objects = parse_manifests(yaml).unwrap();
        assert_eq!(objects.len(), 1);
    }

    #[test]
    fn legacy_octal_numbers_read_as_octal() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\nmode: 0644\n";
        let objects = parse_manifests(yaml).unwrap();
        assert_eq!(objects[0].data["mode"], 420);
    }

    #[test]
    fn objects_without_kind_or_name_are_refused() {
        assert!(parse_manifests("metadata:\n  name: a\n").is_err());
        assert!(parse_manifests("apiVersion: v1\nkind: ConfigMap\n").is_err());
    }

    #[test]
    fn gvk_and_kubectl_kind_follow_kubectl() {
        let objects = parse_manifests(WEB_YAML).unwrap();
        let gvk = gvk_of(&objects[1]).unwrap();
        assert_eq!((gvk.group.as_str(), gvk.version.as_str()), ("apps", "v1"));
        let resource = ApiResource::from_gvk(&gvk);
        assert_eq!(kubectl_kind(&resource), "statefulset.apps");
        let service = ApiResource::from_gvk(&gvk_of(&objects[0]).unwrap());
        assert_eq!(kubectl_kind(&service), "service");
    }
}
