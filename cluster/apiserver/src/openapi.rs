//! A minimal OpenAPI v3 surface: the index of group versions and, per group version, the
//! PATCH operation of each resource with its `x-kubernetes-group-version-kind` and the
//! `fieldValidation` parameter. That is what kubectl (apply, create -f) looks at to learn
//! that the server validates fields itself, so it does not need the full schemas. Schemas
//! are not served (kubectl explain does not work); /openapi/v2 answers 404.

use serde_json::{Map, Value, json};

use crate::registry::{self, GROUPS, ResourceInfo};

/// A tag in the URLs of the per-group documents, so clients can cache them.
const HASH: &str = "k8s-labs-v1";

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

/// `GET /openapi/v3`: where each group version's document is.
pub fn index() -> Value {
    let mut paths = Map::new();
    let all = std::iter::once(("", "v1")).chain(GROUPS.iter().copied());
    for (group, version) in all {
        let path = group_version_path(group, version);
        paths.insert(
            path.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={HASH}") }),
        );
    }
    json!({ "paths": paths })
}

/// `GET /openapi/v3/{api/v1 | apis/group/version}`: the PATCH operations of the resources.
pub fn group_version_document(path: &str) -> Option<Value> {
    let (group, version) = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["api", version] => ("", *version),
        ["apis", group, version] => (*group, *version),
        _ => return None,
    };
    if !registry::serves_group_version(group, version) {
        return None;
    }
    let mut paths = Map::new();
    for resource in registry::in_group_version(group, version) {
        let item = object_path(group, version, resource);
        let operation = json!({
            "operationId": format!("patch{}", resource.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": { "group": group, "version": version, "kind": resource.kind },
            "parameters": [
                { "name": "dryRun", "in": "query", "schema": { "type": "string" } },
                { "name": "fieldManager", "in": "query", "schema": { "type": "string" } },
                { "name": "fieldValidation", "in": "query", "schema": { "type": "string" } },
                { "name": "force", "in": "query", "schema": { "type": "boolean" } },
            ],
            "responses": { "200": { "description": "OK" } },
        });
        paths.insert(item, json!({ "patch": operation }));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "unversioned" },
        "paths": paths,
    }))
}
