//! Server-side field validation (`?fieldValidation=Strict|Warn|Ignore`), as kube-apiserver
//! does it: an object is decoded into its typed API struct and every field the struct does not
//! know is reported. kubectl ≥ 1.25 relies on it (it sends `fieldValidation=Strict` once the
//! OpenAPI documents say the server supports the parameter), so `kubectl apply` of a manifest
//! with a typo must fail here, not silently drop the field.
//!
//! The typed structs are k8s-openapi's; `serde_ignored` reports every key their
//! deserializers skip.

use http::HeaderValue;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::context::Query;
use crate::errors::{ApiError, ApiResult};
use crate::registry::ResourceInfo;

/// What the client asked the server to do with unknown fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and say so in `Warning` headers (the server's default).
    Warn,
    /// Refuse the request with 400 BadRequest.
    Strict,
}

impl FieldValidation {
    /// The directive of the request's `fieldValidation` parameter (Warn when absent, as in
    /// kube-apiserver); an unknown value is a BadRequest, worded like kube-apiserver's.
    pub fn from_query(query: &Query) -> ApiResult<FieldValidation> {
        match query.get("fieldValidation").unwrap_or_default() {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Strict" => Ok(FieldValidation::Strict),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn or Strict, got {other:?}"
            ))),
        }
    }
}

/// The warnings to send back (empty unless the directive is Warn and fields are unknown), or
/// the BadRequest a Strict request gets.
pub fn check(
    directive: FieldValidation,
    resource: &ResourceInfo,
    object: &Value,
) -> ApiResult<Vec<String>> {
    let (unknown, wrong_type) = decode(resource, object);
    if let Some(wrong_type) = wrong_type {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {wrong_type}",
            kind = resource.kind,
            version = resource.version,
        )));
    }
    if directive == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let listed: Vec<String> = unknown
        .iter()
        .map(|path| format!("unknown field \"{path}\""))
        .collect();
    match directive {
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            listed.join(", "),
            kind = resource.kind,
            version = resource.version,
        ))),
        _ => Ok(listed),
    }
}

/// Adds one `Warning: 299 - "<text>"` header per warning, the header kubectl prints as
/// `Warning: <text>`.
pub fn add_warnings(response: &mut axum::response::Response, warnings: &[String]) {
    for warning in warnings {
        let quoted = warning.replace('\\', "\\\\").replace('"', "\\\"");
        // As bytes: a warning may quote UTF-8 text (an annotation's value), which
        // kube-apiserver sends as it is.
        if let Ok(value) = HeaderValue::from_bytes(format!("299 - \"{quoted}\"").as_bytes()) {
            response.headers_mut().append(http::header::WARNING, value);
        }
    }
}

/// Why `object` cannot be decoded as the typed struct of `resource` (a value of the wrong
/// type: a list where labels are a map, a string where a port is a number), as kube-apiserver's
/// decoder refuses it; None when it can. Missing fields and nulls are not decoding errors in
/// Go (they are left to validation), so they are not reported here.
pub fn decoding_error(resource: &ResourceInfo, object: &Value) -> Option<String> {
    decode(resource, object).1
}

/// The unknown fields of `object` and the decoding error, if any, in one decoding.
fn decode(resource: &ResourceInfo, object: &Value) -> (Vec<String>, Option<String>) {
    use k8s_openapi::api::{
        apps::v1 as apps, authorization::v1 as authorization, batch::v1 as batch,
        coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
        events::v1 as events, networking::v1 as networking, storage::v1 as storage,
    };
    match (resource.group, resource.plural) {
        ("", "configmaps") => unknown_in::<core::ConfigMap>(object),
        ("", "endpoints") => unknown_in::<core::Endpoints>(object),
        ("", "events") => unknown_in::<core::Event>(object),
        ("", "namespaces") => unknown_in::<core::Namespace>(object),
        ("", "nodes") => unknown_in::<core::Node>(object),
        ("", "persistentvolumeclaims") => unknown_in::<core::PersistentVolumeClaim>(object),
        ("", "persistentvolumes") => unknown_in::<core::PersistentVolume>(object),
        ("", "pods") => unknown_in::<core::Pod>(object),
        ("", "secrets") => unknown_in::<core::Secret>(object),
        ("", "serviceaccounts") => unknown_in::<core::ServiceAccount>(object),
        ("", "services") => unknown_in::<core::Service>(object),
        ("apps", "controllerrevisions") => unknown_in::<apps::ControllerRevision>(object),
        ("apps", "deployments") => unknown_in::<apps::Deployment>(object),
        ("apps", "replicasets") => unknown_in::<apps::ReplicaSet>(object),
        ("apps", "statefulsets") => unknown_in::<apps::StatefulSet>(object),
        ("authorization.k8s.io", "selfsubjectaccessreviews") => {
            unknown_in::<authorization::SelfSubjectAccessReview>(object)
        }
        ("authorization.k8s.io", "selfsubjectrulesreviews") => {
            unknown_in::<authorization::SelfSubjectRulesReview>(object)
        }
        ("batch", "cronjobs") => unknown_in::<batch::CronJob>(object),
        ("batch", "jobs") => unknown_in::<batch::Job>(object),
        ("coordination.k8s.io", "leases") => unknown_in::<coordination::Lease>(object),
        ("discovery.k8s.io", "endpointslices") => unknown_in::<discovery::EndpointSlice>(object),
        ("events.k8s.io", "events") => unknown_in::<events::Event>(object),
        ("networking.k8s.io", "ingressclasses") => unknown_in::<networking::IngressClass>(object),
        ("networking.k8s.io", "ingresses") => unknown_in::<networking::Ingress>(object),
        ("networking.k8s.io", "networkpolicies") => unknown_in::<networking::NetworkPolicy>(object),
        ("storage.k8s.io", "storageclasses") => unknown_in::<storage::StorageClass>(object),
        _ => (Vec::new(), None),
    }
}

/// Decodes `object` as `T` and collects the keys `T` skipped. A decoding error (a missing
/// required field, a wrong type) ends the walk: what was found up to there is reported, and
/// the rest is left to the object's validation.
fn unknown_in<T: DeserializeOwned>(object: &Value) -> (Vec<String>, Option<String>) {
    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(object, &mut track);
    let decoded: Result<T, _> = serde_ignored::deserialize(tracked, |path| {
        let path = render(&path);
        // apiVersion and kind are read from the object itself by the server, not by the type.
        if path != "apiVersion" && path != "kind" {
            unknown.push(path);
        }
    });
    let error = decoded.err().and_then(|error| {
        let message = error.to_string();
        let tolerated =
            message.starts_with("missing field") || message.contains("invalid type: null");
        (!tolerated).then(|| format!("json: cannot decode {}: {message}", track.path()))
    });
    (unknown, error)
}

/// `a.b[0].c`, the form kube-apiserver's strict decoder prints.
fn render(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", render(parent)),
        Path::Map { parent, key } => {
            let parent = render(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => render(parent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The paths (`spec.template.spec.containers[0].imagePullPolicyy`) of the fields of
    /// `object` that the typed struct of `resource` does not have.
    fn unknown_fields(resource: &ResourceInfo, object: &Value) -> Vec<String> {
        decode(resource, object).0
    }

    fn statefulsets() -> &'static ResourceInfo {
        crate::registry::find("apps", "v1", "statefulsets").unwrap()
    }

    #[test]
    fn finds_unknown_fields_at_every_depth() {
        let object = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "labelz": {}},
            "spec": {
                "replica": 2, "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [
                    {"name": "nginx", "image": "nginx", "imagePullPolicyy": "Always"}
                ]}}
            }
        });
        assert_eq!(
            unknown_fields(statefulsets(), &object),
            vec![
                "metadata.labelz",
                "spec.replica",
                "spec.template.spec.containers[0].imagePullPolicyy"
            ]
        );
    }

    #[test]
    fn strict_refuses_like_kube_apiserver_and_warn_warns() {
        let object = json!({"metadata": {"name": "web"}, "spec": {"replica": 2, "selector": {}, "template": {}}});
        let error = check(FieldValidation::Strict, statefulsets(), &object).unwrap_err();
        assert_eq!(error.code, 400);
        assert_eq!(
            error.message,
            "StatefulSet in version \"v1\" cannot be handled as a StatefulSet: strict decoding error: unknown field \"spec.replica\""
        );
        let warnings = check(FieldValidation::Warn, statefulsets(), &object).unwrap();
        assert_eq!(warnings, vec!["unknown field \"spec.replica\""]);
        assert!(
            check(FieldValidation::Ignore, statefulsets(), &object)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_known_object_has_no_unknown_fields() {
        let pods = crate::registry::find("", "v1", "pods").unwrap();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "1"}}}]}, "status": {"phase": "Running"}});
        assert!(unknown_fields(pods, &pod).is_empty());
    }
}
