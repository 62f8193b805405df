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
/// modes in manifests mean what their authors meant. Errors start with `LINE:COLUMN: ` (of the
/// problem, or of the document's start when the YAML is fine but the object is not), so that
/// [`Applier::apply_file`] can point at `file:line:column` like a compiler.
pub fn parse_manifests(yaml: &str) -> Result<Vec<DynamicObject>> {
    let options = serde_saphyr::options! { legacy_octal_numbers: true };
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple_with_options(yaml, options)
        .map_err(|error| match error.location() {
            Some(location) => anyhow!(
                "{}:{}: {}",
                location.line(),
                location.column(),
                first_line(&error.to_string())
            ),
            None => anyhow!("{error}"),
        })?;
    let starts = document_start_lines(yaml);
    let mut objects = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        if document.is_null() {
            continue;
        }
        let line = starts.get(index).copied().unwrap_or(1);
        let number = index + 1;
        let object: DynamicObject = serde_json::from_value(document).map_err(|error| {
            anyhow!("{line}:1: document {number} is not a Kubernetes object: {error}")
        })?;
        if object.types.is_none() {
            bail!("{line}:1: document {number} has no apiVersion/kind");
        }
        if object.metadata.name.is_none() {
            bail!("{line}:1: document {number} has no metadata.name");
        }
        objects.push(object);
    }
    Ok(objects)
}

/// The first line of each YAML document: line 1, then the line after each `---`.
fn document_start_lines(yaml: &str) -> Vec<usize> {
    let mut starts = vec![1];
    for (index, line) in yaml.lines().enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            if index == 0 {
                starts[0] = 2;
            } else {
                starts.push(index + 2);
            }
        }
    }
    starts
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
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
        let objects =
            parse_manifests(&yaml).map_err(|error| anyhow!("{}:{error:#}", display_path(path)))?;
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
        // Strict: an unknown or misspelt field is an error, as `kubectl apply` reports it,
        // rather than silently dropped.
        let params = PatchParams::apply(FIELD_MANAGER)
            .force()
            .validation_strict();
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
        let found = match pinned_kind(&self.client, gvk).await {
            Ok(found) => found,
            Err(error) => {
                let version = match self.client.apiserver_version().await {
                    Ok(info) => format!("Kubernetes {}", info.git_version),
                    Err(_) => "its version unknown".to_string(),
                };
                return Err(anyhow!(
                    "the cluster ({version}) does not serve kind {} in apiVersion {}: {error}; \
                     check the manifest's apiVersion and kind (`kubectl api-resources` lists them)",
                    gvk.kind,
                    api_version(gvk)
                ));
            }
        };
        self.resources.insert(gvk.clone(), found.clone());
        Ok(found)
    }
}

/// `path` relative to the current directory when it is inside it (`manifests/x.yaml`), as
/// people and editors want to see it.
pub(crate) fn display_path(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|dir| path.strip_prefix(dir).ok().map(Path::to_path_buf));
    let shown = relative.unwrap_or_else(|| path.to_path_buf());
    // `labs/x/../../manifests/y.yaml` reads better without the detour.
    let mut parts: Vec<std::path::Component> = Vec::new();
    for part in shown.components() {
        match part {
            std::path::Component::ParentDir
                if matches!(parts.last(), Some(std::path::Component::Normal(_))) =>
            {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts
        .iter()
        .collect::<std::path::PathBuf>()
        .display()
        .to_string()
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

    #[test]
    fn yaml_errors_point_at_line_and_column() {
        let broken = "apiVersion: v1\nkind: Service\nmetadata:\n  name: nginx\n  labels: [app\n";
        let error = format!("{:#}", parse_manifests(broken).unwrap_err());
        assert!(
            error.starts_with("5:") || error.starts_with("6:"),
            "{error}"
        );
    }

    #[test]
    fn object_errors_point_at_their_document() {
        let yaml = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\nkind: Service\nmetadata:\n  name: b\n";
        let error = format!("{:#}", parse_manifests(yaml).unwrap_err());
        assert!(error.starts_with("6:1: document 2"), "{error}");
        let nameless = "apiVersion: v1\nkind: Service\nmetadata: {}\n";
        let error = format!("{:#}", parse_manifests(nameless).unwrap_err());
        assert_eq!(error, "1:1: document 1 has no metadata.name");
    }

    #[test]
    fn paths_are_shown_relative_and_without_detours() {
        let cwd = std::env::current_dir().unwrap();
        let path = cwd.join("labs/x/../../manifests/web.yaml");
        assert_eq!(display_path(&path), "manifests/web.yaml");
    }
}
