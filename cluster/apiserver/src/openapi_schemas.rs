//! The `components.schemas` of the OpenAPI v3 documents, from the API types themselves:
//! k8s-openapi generates each type's JSON schema (with the descriptions of upstream's
//! published spec) through its `schemars` feature. What `kubectl explain` needs on top is
//! upstream's v3 shape: a `$ref` with a description beside it is wrapped in `allOf` (so
//! explain prints the field's description and then its type's), and each top-level kind
//! carries `x-kubernetes-group-version-kind`, which is how explain finds a kind's schema.

use k8s_openapi::schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use crate::registry::ResourceInfo;

/// Adds the schema of `resource`'s kind (and every schema it refers to) to `generator`;
/// the schema's name, or None for a kind without a typed schema.
fn add_kind(generator: &mut SchemaGenerator, resource: &ResourceInfo) -> Option<String> {
    use k8s_openapi::api::{
        apps::v1 as apps, authorization::v1 as authorization, batch::v1 as batch,
        coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
        events::v1 as events, networking::v1 as networking, storage::v1 as storage,
    };
    fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> Option<String> {
        generator.subschema_for::<T>();
        Some(T::schema_name().into_owned())
    }
    let g = generator;
    match (resource.group, resource.kind) {
        ("", "ConfigMap") => add::<core::ConfigMap>(g),
        ("", "Endpoints") => add::<core::Endpoints>(g),
        ("", "Event") => add::<core::Event>(g),
        ("", "Namespace") => add::<core::Namespace>(g),
        ("", "Node") => add::<core::Node>(g),
        ("", "PersistentVolumeClaim") => add::<core::PersistentVolumeClaim>(g),
        ("", "PersistentVolume") => add::<core::PersistentVolume>(g),
        ("", "Pod") => add::<core::Pod>(g),
        ("", "Secret") => add::<core::Secret>(g),
        ("", "ServiceAccount") => add::<core::ServiceAccount>(g),
        ("", "Service") => add::<core::Service>(g),
        ("apps", "ControllerRevision") => add::<apps::ControllerRevision>(g),
        ("apps", "Deployment") => add::<apps::Deployment>(g),
        ("apps", "ReplicaSet") => add::<apps::ReplicaSet>(g),
        ("apps", "StatefulSet") => add::<apps::StatefulSet>(g),
        ("authorization.k8s.io", "SelfSubjectAccessReview") => {
            add::<authorization::SelfSubjectAccessReview>(g)
        }
        ("authorization.k8s.io", "SelfSubjectRulesReview") => {
            add::<authorization::SelfSubjectRulesReview>(g)
        }
        ("batch", "CronJob") => add::<batch::CronJob>(g),
        ("batch", "Job") => add::<batch::Job>(g),
        ("coordination.k8s.io", "Lease") => add::<coordination::Lease>(g),
        ("discovery.k8s.io", "EndpointSlice") => add::<discovery::EndpointSlice>(g),
        ("events.k8s.io", "Event") => add::<events::Event>(g),
        ("networking.k8s.io", "Ingress") => add::<networking::Ingress>(g),
        ("networking.k8s.io", "IngressClass") => add::<networking::IngressClass>(g),
        ("networking.k8s.io", "NetworkPolicy") => add::<networking::NetworkPolicy>(g),
        ("storage.k8s.io", "StorageClass") => add::<storage::StorageClass>(g),
        _ => None,
    }
}

/// The schemas of `resources` (all of one group version) and of every type they refer to,
/// keyed by upstream's names ("io.k8s.api.apps.v1.StatefulSet"), with `$ref`s pointing into
/// `#/components/schemas`.
pub fn components<'a>(resources: impl Iterator<Item = &'a ResourceInfo>) -> Map<String, Value> {
    // openapi3(): `#/components/schemas/` references, and a `$ref` with siblings (the
    // field's description) becomes `allOf: [{$ref}]` beside them, as upstream's v3 spec has.
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut kinds = Vec::new();
    for resource in resources {
        if let Some(name) = add_kind(&mut generator, resource) {
            kinds.push((name, resource));
        }
    }
    let mut schemas = generator.take_definitions(true);
    schemas.values_mut().for_each(metadata_is_optional);
    for (name, resource) in kinds {
        if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
            let gvk = json!({
                "group": resource.group,
                "kind": resource.kind,
                "version": resource.version,
            });
            schema.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
        }
    }
    schemas
}

/// k8s-openapi lists `metadata` among the required fields of every object with an
/// ObjectMeta (its Rust types always have one), where upstream's Go types mark it optional:
/// `kubectl explain pods` says `metadata <ObjectMeta>`, not `-required-`.
fn metadata_is_optional(schema: &mut Value) {
    let Value::Object(schema) = schema else {
        return;
    };
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|field| field != "metadata");
        if required.is_empty() {
            schema.remove("required");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RESOURCES;

    #[test]
    fn every_served_kind_has_a_schema() {
        let typed = RESOURCES
            .iter()
            .filter(|r| r.group != crate::metrics::GROUP);
        for resource in typed {
            let schemas = components(std::iter::once(resource));
            let tagged = schemas.values().filter(|schema| {
                schema["x-kubernetes-group-version-kind"][0]["kind"] == resource.kind
            });
            assert_eq!(tagged.count(), 1, "{}", resource.kind);
        }
    }

    #[test]
    fn fields_of_another_type_carry_their_description_beside_an_all_of() {
        let apps = RESOURCES.iter().filter(|r| r.kind == "StatefulSet");
        let schemas = components(apps);
        let spec = &schemas["io.k8s.api.apps.v1.StatefulSet"]["properties"]["spec"];
        assert_eq!(
            spec["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.StatefulSetSpec"
        );
        assert!(spec["description"].as_str().is_some(), "{spec}");
        let spec = &schemas["io.k8s.api.apps.v1.StatefulSetSpec"];
        assert_eq!(spec["properties"]["serviceName"]["type"], "string");
        assert!(schemas.contains_key("io.k8s.api.core.v1.PodSpec"));
        assert_eq!(spec["required"], json!(["selector", "template"]));
        let statefulset = &schemas["io.k8s.api.apps.v1.StatefulSet"];
        assert_eq!(statefulset.get("required"), None);
    }
}
