//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`).
//!
//! Since client-go 1.32 the typed clientsets send built-in objects as protobuf, and they do
//! not fall back to JSON on 415 (client-go only does that for CBOR). So `kubectl create
//! deployment|service|job|namespace|configmap|secret|token|…` of kubectl ≥ 1.32 need a
//! server that reads protobuf. Objects from manifests (`apply`, `create -f`, `run`) and
//! `kubectl expose` (the dynamic client) still come as JSON. Answers stay JSON: the typed
//! clients accept `application/vnd.kubernetes.protobuf, application/json`.
//!
//! The envelope is the magic `k8s\0` and a `runtime.Unknown{typeMeta, raw}` whose `raw` is
//! the object's message. Both are decoded with k8s-pb's generated messages; the object then
//! takes its JSON form through k8s-openapi's type of the same kind (see [`kinds`]). A kind
//! without a row there is refused with 415 and a message that says to send JSON. Fields the
//! messages do not know are skipped, as kube-apiserver does: its unknown-field detection
//! (`fieldValidation`, KEP-2885) covers JSON and YAML, not protobuf.

mod debug_value;
mod kinds;
mod rekey;

use k8s_pb::api::policy::v1::Eviction;
use k8s_pb::apimachinery::pkg::apis::meta::v1::DeleteOptions;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message as _;
use serde_json::Value;

use crate::errors::{ApiError, ApiResult};

/// The media type of Kubernetes' protobuf encoding.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf request body into the object's JSON form (with apiVersion and kind).
pub fn decode_object(body: &[u8]) -> ApiResult<Value> {
    let unknown = envelope(body)?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let decode = kinds::KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, decode)| decode)
        .ok_or_else(|| {
            ApiError::unsupported_media_type_with(format!(
                "{MEDIA_TYPE} is not read for {kind} ({api_version}); send the object as JSON"
            ))
        })?;
    decode(&unknown.raw.unwrap_or_default())
}

/// Whether a body is in the protobuf encoding (a JSON body never starts with its magic).
pub fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

/// Decodes the DeleteOptions of a DELETE sent as protobuf (client-go's typed clients since
/// 1.32, e.g. `kubectl drain --disable-eviction` deleting pods) into their JSON form.
/// DeleteOptions are registered in every group version, so any `apiVersion` is taken.
pub fn decode_delete_options(body: &[u8]) -> ApiResult<Value> {
    let raw = message_of_kind(body, "DeleteOptions")?;
    let options = DeleteOptions::decode(raw.as_slice()).map_err(|e| {
        ApiError::bad_request(format!("the protobuf DeleteOptions are not valid: {e}"))
    })?;
    Ok(delete_options_json(options))
}

/// Decodes a policy/v1 Eviction sent as protobuf (`kubectl drain`) into its JSON form: its
/// name and namespace, and its DeleteOptions read as [`decode_delete_options`] reads them.
pub fn decode_eviction(body: &[u8]) -> ApiResult<Value> {
    let raw = message_of_kind(body, "Eviction")?;
    let eviction = Eviction::decode(raw.as_slice())
        .map_err(|e| ApiError::bad_request(format!("the protobuf Eviction is not valid: {e}")))?;
    let metadata = eviction.metadata.unwrap_or_default();
    let mut json = serde_json::json!({"apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": metadata.name, "namespace": metadata.namespace}});
    if let Some(options) = eviction.delete_options {
        json["deleteOptions"] = delete_options_json(options);
    }
    Ok(json)
}

/// The envelope's message when it holds a `kind` (of any group version).
fn message_of_kind(body: &[u8], wanted: &str) -> ApiResult<Vec<u8>> {
    let unknown = envelope(body)?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    if kind != wanted {
        let api_version = type_meta.api_version.unwrap_or_default();
        return Err(ApiError::bad_request(format!(
            "the protobuf body must be {wanted}, not {kind} ({api_version})"
        )));
    }
    Ok(unknown.raw.unwrap_or_default())
}

/// DeleteOptions in their JSON form, read field by field rather than through [`kinds`]: every
/// field of DeleteOptions is a Go pointer, written only when set, so a zero on the wire
/// (`gracePeriodSeconds: 0` of `--grace-period=0`) was set and must stay.
fn delete_options_json(options: DeleteOptions) -> Value {
    let mut json = serde_json::Map::new();
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            json.insert(key.to_string(), value);
        }
    };
    set(
        "gracePeriodSeconds",
        options.grace_period_seconds.map(Value::from),
    );
    set(
        "orphanDependents",
        options.orphan_dependents.map(Value::from),
    );
    set(
        "propagationPolicy",
        options.propagation_policy.map(Value::from),
    );
    set(
        "preconditions",
        options.preconditions.map(|p| {
            let mut preconditions = serde_json::Map::new();
            if let Some(uid) = p.uid {
                preconditions.insert("uid".into(), uid.into());
            }
            if let Some(resource_version) = p.resource_version {
                preconditions.insert("resourceVersion".into(), resource_version.into());
            }
            Value::Object(preconditions)
        }),
    );
    set(
        "dryRun",
        (!options.dry_run.is_empty()).then(|| options.dry_run.into()),
    );
    Value::Object(json)
}

/// The `runtime.Unknown` after the magic.
fn envelope(body: &[u8]) -> ApiResult<Unknown> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        ApiError::bad_request("the protobuf body does not start with the Kubernetes magic k8s\\0")
    })?;
    Unknown::decode(envelope).map_err(|e| {
        ApiError::bad_request(format!(
            "the protobuf envelope (runtime.Unknown) is not valid: {e}"
        ))
    })
}

#[cfg(test)]
mod tests;
