//! The OpenAPI v3 surface: the index of group versions and, per group version, a document
//! with the PATCH operation of each resource (its `x-kubernetes-group-version-kind` and the
//! `fieldValidation` parameter, which kubectl apply and create -f look at to learn that the
//! server validates fields itself) and the schemas of its kinds (`openapi_schemas`), which
//! `kubectl explain` renders.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::openapi_schemas;
use crate::registry::{self, GROUPS, ResourceInfo};

fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The path of one object of `resource`, with `{namespace}` and `{name}` placeholders, as
/// both OpenAPI documents (v3 JSON and v2 protobuf) list it.
pub(crate) fn object_path(group: &str, version: &str, resource: &ResourceInfo) -> String {
    let prefix = format!("/{}", group_version_path(group, version));
    if resource.namespaced {
        format!(
            "{prefix}/namespaces/{{namespace}}/{}/{{name}}",
            resource.plural
        )
    } else {
        format!("{prefix}/{}/{{name}}", resource.plural)
    }
}

/// One group version's document and the hash of its content, which the index puts in the
/// document's URL: clients (kubectl caches them on disk) refetch only what changed.
struct Document {
    body: Value,
    hash: String,
}

/// Every group version's document by its path ("api/v1", "apis/apps/v1"), built once: the
/// schemas are the same for the life of the process.
fn documents() -> &'static BTreeMap<String, Document> {
    static DOCUMENTS: OnceLock<BTreeMap<String, Document>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        // The Metrics API has no API types to build schemas from, and nothing patches or
        // explains it (`kubectl top` reads it without a schema).
        let all = std::iter::once(("", "v1"))
            .chain(GROUPS.iter().copied())
            .filter(|(group, _)| *group != crate::metrics::GROUP);
        all.map(|(group, version)| {
            let body = build(group, version);
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            body.to_string().hash(&mut hasher);
            let hash = format!("{:016X}", hasher.finish());
            (group_version_path(group, version), Document { body, hash })
        })
        .collect()
    })
}

/// `GET /openapi/v3`: where each group version's document is.
pub fn index() -> Value {
    let paths: Map<String, Value> = documents()
        .iter()
        .map(|(path, doc)| {
            let url = format!("/openapi/v3/{path}?hash={}", doc.hash);
            (path.clone(), json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
}

/// `GET /openapi/v3/{api/v1 | apis/group/version}`: the PATCH operations and the schemas
/// of the group version's resources.
pub fn group_version_document(path: &str) -> Option<&'static Value> {
    documents().get(path).map(|doc| &doc.body)
}

fn build(group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    for resource in registry::in_group_version(group, version) {
        let (path, verb, action) = if resource.verbs().contains(&"patch") {
            (object_path(group, version, resource), "patch", "patch")
        } else {
            // The reviews are only POSTed to their collection.
            let path = format!(
                "/{}/{}",
                group_version_path(group, version),
                resource.plural
            );
            (path, "post", "post")
        };
        let mut operation = json!({
            "operationId": format!("{verb}{}", resource.kind),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": { "group": group, "version": version, "kind": resource.kind },
            "parameters": [
                { "name": "dryRun", "in": "query", "schema": { "type": "string" } },
                { "name": "fieldManager", "in": "query", "schema": { "type": "string" } },
                { "name": "fieldValidation", "in": "query", "schema": { "type": "string" } },
            ],
            "responses": { "200": { "description": "OK" } },
        });
        if verb == "patch"
            && let Some(Value::Array(parameters)) = operation.get_mut("parameters")
        {
            parameters
                .push(json!({ "name": "force", "in": "query", "schema": { "type": "boolean" } }));
        }
        paths.insert(path, json!({ verb: operation }));
    }
    let schemas = openapi_schemas::components(registry::in_group_version(group, version));
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "unversioned" },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}
