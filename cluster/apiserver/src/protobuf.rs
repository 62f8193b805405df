//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! for the kinds kubectl's typed clients send that way.
//!
//! Since client-go 1.32 the typed clientsets send built-in objects as protobuf, and they do
//! not fall back to JSON on 415 (client-go only does that for CBOR). So `kubectl create
//! namespace`, `create configmap`, `create secret` and `create serviceaccount` of kubectl ≥
//! 1.32 need a server that reads protobuf. Objects from manifests (`apply`, `create -f`, `run`)
//! still come as JSON.
//!
//! The envelope is the magic `k8s\0` and a `runtime.Unknown{typeMeta, raw}` whose `raw` is the
//! object's message. The messages are decoded with the field numbers of the upstream
//! `generated.proto` files, for the kinds listed in [`KINDS`]; any other kind, and any field
//! this table does not know, is refused (never dropped silently).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::errors::{ApiError, ApiResult};

/// The media type of Kubernetes' protobuf encoding.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// How a field's value is encoded and shown in JSON.
#[derive(Clone, Copy)]
enum Kind {
    String,
    Bool,
    Int,
    /// `metav1.Time`: `{seconds, nanos}` shown as RFC 3339; zero is "unset".
    Time,
    StringMap,
    BytesMap,
    Message(&'static [Field]),
}

#[derive(Clone, Copy)]
struct Field {
    number: u64,
    name: &'static str,
    kind: Kind,
    repeated: bool,
}

const fn one(number: u64, name: &'static str, kind: Kind) -> Field {
    Field {
        number,
        name,
        kind,
        repeated: false,
    }
}

const fn many(number: u64, name: &'static str, kind: Kind) -> Field {
    Field {
        number,
        name,
        kind,
        repeated: true,
    }
}

use Kind::{Bool, BytesMap, Int, Message, String as Str, StringMap, Time};

const OWNER_REFERENCE: &[Field] = &[
    one(1, "kind", Str),
    one(3, "name", Str),
    one(4, "uid", Str),
    one(5, "apiVersion", Str),
    one(6, "controller", Bool),
    one(7, "blockOwnerDeletion", Bool),
];

const OBJECT_META: &[Field] = &[
    one(1, "name", Str),
    one(2, "generateName", Str),
    one(3, "namespace", Str),
    one(4, "selfLink", Str),
    one(5, "uid", Str),
    one(6, "resourceVersion", Str),
    one(7, "generation", Int),
    one(8, "creationTimestamp", Time),
    one(9, "deletionTimestamp", Time),
    one(10, "deletionGracePeriodSeconds", Int),
    one(11, "labels", StringMap),
    one(12, "annotations", StringMap),
    many(13, "ownerReferences", Message(OWNER_REFERENCE)),
    many(14, "finalizers", Str),
];

const CONFIG_MAP: &[Field] = &[
    one(1, "metadata", Message(OBJECT_META)),
    one(2, "data", StringMap),
    one(3, "binaryData", BytesMap),
    one(4, "immutable", Bool),
];

const NAMESPACE_SPEC: &[Field] = &[many(1, "finalizers", Str)];
const NAMESPACE_STATUS: &[Field] = &[one(1, "phase", Str)];
const NAMESPACE: &[Field] = &[
    one(1, "metadata", Message(OBJECT_META)),
    one(2, "spec", Message(NAMESPACE_SPEC)),
    one(3, "status", Message(NAMESPACE_STATUS)),
];

const SECRET: &[Field] = &[
    one(1, "metadata", Message(OBJECT_META)),
    one(2, "data", BytesMap),
    one(3, "type", Str),
    one(4, "stringData", StringMap),
    one(5, "immutable", Bool),
];

const LOCAL_OBJECT_REFERENCE: &[Field] = &[one(1, "name", Str)];
const OBJECT_REFERENCE: &[Field] = &[
    one(1, "kind", Str),
    one(2, "namespace", Str),
    one(3, "name", Str),
    one(4, "uid", Str),
    one(5, "apiVersion", Str),
    one(6, "resourceVersion", Str),
    one(7, "fieldPath", Str),
];
const SERVICE_ACCOUNT: &[Field] = &[
    one(1, "metadata", Message(OBJECT_META)),
    many(2, "secrets", Message(OBJECT_REFERENCE)),
    many(3, "imagePullSecrets", Message(LOCAL_OBJECT_REFERENCE)),
    one(4, "automountServiceAccountToken", Bool),
];

/// The kinds (apiVersion, kind) whose protobuf form is read.
const KINDS: &[(&str, &str, &[Field])] = &[
    ("v1", "ConfigMap", CONFIG_MAP),
    ("v1", "Namespace", NAMESPACE),
    ("v1", "Secret", SECRET),
    ("v1", "ServiceAccount", SERVICE_ACCOUNT),
];

/// Decodes a protobuf request body into the object's JSON form (with apiVersion and kind).
pub fn decode_object(body: &[u8]) -> ApiResult<Value> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        ApiError::bad_request("the protobuf body does not start with the Kubernetes magic k8s\\0")
    })?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for item in Reader(envelope) {
        let (number, value) = item?;
        match (number, value) {
            (1, Wire::Bytes(type_meta)) => {
                for item in Reader(type_meta) {
                    match item? {
                        (1, Wire::Bytes(b)) => api_version = utf8(b)?,
                        (2, Wire::Bytes(b)) => kind = utf8(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(bytes)) => raw = bytes,
            _ => {}
        }
    }
    let fields = KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, fields)| *fields)
        .ok_or_else(|| {
            ApiError::unsupported_media_type_with(format!(
                "{MEDIA_TYPE} is read for ConfigMap, Namespace, Secret and ServiceAccount only, \
                 not {kind} ({api_version}); send JSON instead (kubectl apply -f, or kubectl ≤ 1.31)"
            ))
        })?;
    let mut object = decode_message(raw, fields, &kind)?;
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    Ok(Value::Object(object))
}

fn decode_message(bytes: &[u8], fields: &[Field], context: &str) -> ApiResult<Map<String, Value>> {
    let mut object = Map::new();
    for item in Reader(bytes) {
        let (number, wire) = item?;
        let field = fields.iter().find(|f| f.number == number).ok_or_else(|| {
            ApiError::bad_request(format!(
                "protobuf field {number} of {context} is not decoded by this server; send the object as JSON"
            ))
        })?;
        let context = format!("{context}.{}", field.name);
        match field.kind {
            StringMap | BytesMap => {
                let (key, value) = map_entry(&wire, field.kind)?;
                let map = object
                    .entry(field.name)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(key, value);
                }
            }
            kind => {
                let Some(value) = scalar(&wire, kind, &context)? else {
                    continue;
                };
                if field.repeated {
                    let list = object.entry(field.name).or_insert_with(|| json!([]));
                    if let Value::Array(list) = list {
                        list.push(value);
                    }
                } else if !is_zero(&value) {
                    // Go writes unset optional scalars as zero values; JSON omits them.
                    object.insert(field.name.to_string(), value);
                }
            }
        }
    }
    Ok(object)
}

/// One value; `None` for a zero `Time` (Go's unset time).
fn scalar(wire: &Wire, kind: Kind, context: &str) -> ApiResult<Option<Value>> {
    let wrong =
        || ApiError::bad_request(format!("protobuf field {context} has the wrong wire type"));
    Ok(Some(match (kind, wire) {
        (Str, Wire::Bytes(b)) => json!(utf8(b)?),
        (Bool, Wire::Varint(n)) => json!(*n != 0),
        (Int, Wire::Varint(n)) => json!(*n as i64),
        (Time, Wire::Bytes(b)) => return time(b),
        (Message(fields), Wire::Bytes(b)) => Value::Object(decode_message(b, fields, context)?),
        _ => return Err(wrong()),
    }))
}

fn time(bytes: &[u8]) -> ApiResult<Option<Value>> {
    let (mut seconds, mut nanos) = (0i64, 0i32);
    for item in Reader(bytes) {
        match item? {
            (1, Wire::Varint(n)) => seconds = n as i64,
            (2, Wire::Varint(n)) => nanos = n as i32,
            _ => {}
        }
    }
    if seconds == 0 && nanos == 0 {
        return Ok(None);
    }
    let timestamp = jiff::Timestamp::new(seconds, 0)
        .map_err(|e| ApiError::bad_request(format!("a protobuf time is out of range: {e}")))?;
    Ok(Some(json!(timestamp.to_string())))
}

fn map_entry(wire: &Wire, kind: Kind) -> ApiResult<(String, Value)> {
    let Wire::Bytes(entry) = wire else {
        return Err(ApiError::bad_request(
            "a protobuf map entry is not a message",
        ));
    };
    let mut key = String::new();
    let mut value = json!("");
    for item in Reader(entry) {
        match item? {
            (1, Wire::Bytes(b)) => key = utf8(b)?,
            (2, Wire::Bytes(b)) if matches!(kind, BytesMap) => {
                value = json!(base64::engine::general_purpose::STANDARD.encode(b));
            }
            (2, Wire::Bytes(b)) => value = json!(utf8(b)?),
            _ => {}
        }
    }
    Ok((key, value))
}

fn is_zero(value: &Value) -> bool {
    matches!(value, Value::String(s) if s.is_empty())
        || value.as_i64() == Some(0)
        || value.as_bool() == Some(false)
}

fn utf8(bytes: &[u8]) -> ApiResult<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("a protobuf string is not UTF-8"))
}

/// A field's value on the wire.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of one message, in order: `(number, value)`.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn varint(&mut self) -> ApiResult<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .0
                .split_first()
                .ok_or_else(|| ApiError::bad_request("a protobuf body ends inside a number"))?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ApiError::bad_request("a protobuf number is too long"))
    }

    fn take(&mut self, len: usize) -> ApiResult<&[u8]> {
        if self.0.len() < len {
            return Err(ApiError::bad_request("a protobuf body ends inside a field"));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = ApiResult<(u64, Wire<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let mut next = || -> ApiResult<(u64, Wire<'a>)> {
            let tag = self.varint()?;
            let number = tag >> 3;
            let wire = match tag & 7 {
                0 => Wire::Varint(self.varint()?),
                2 => {
                    let len = usize::try_from(self.varint()?)
                        .map_err(|_| ApiError::bad_request("a protobuf length is too large"))?;
                    let bytes: &'a [u8] = {
                        if self.0.len() < len {
                            return Err(ApiError::bad_request(
                                "a protobuf body ends inside a field",
                            ));
                        }
                        let (head, rest) = self.0.split_at(len);
                        self.0 = rest;
                        head
                    };
                    Wire::Bytes(bytes)
                }
                1 => {
                    self.take(8)?;
                    Wire::Fixed
                }
                5 => {
                    self.take(4)?;
                    Wire::Fixed
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "protobuf wire type {other} is not supported"
                    )));
                }
            };
            Ok((number, wire))
        };
        let item = next();
        if item.is_err() {
            self.0 = &[];
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3 | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
        [MAGIC.to_vec(), field(1, &type_meta), field(2, raw)].concat()
    }

    #[test]
    fn decodes_a_config_map_as_kubectl_create_sends_it() {
        let metadata = [
            field(1, b"cm1"),
            field(2, b""),
            field(8, b""),
            field(11, &[field(1, b"app"), field(2, b"web")].concat()),
        ]
        .concat();
        let raw = [
            field(1, &metadata),
            field(2, &[field(1, b"a"), field(2, b"b")].concat()),
            field(3, &[field(1, b"bin"), field(2, &[0, 1])].concat()),
        ]
        .concat();
        let object = decode_object(&envelope("v1", "ConfigMap", &raw)).unwrap();
        assert_eq!(
            object,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cm1", "labels": {"app": "web"}},
                "data": {"a": "b"},
                "binaryData": {"bin": "AAE="},
            })
        );
    }

    #[test]
    fn refuses_kinds_and_fields_it_cannot_read() {
        let error = decode_object(&envelope("apps/v1", "Deployment", &[])).unwrap_err();
        assert_eq!(error.code, 415);
        let unknown = [field(1, &field(15, b"x"))].concat();
        let error = decode_object(&envelope("v1", "Namespace", &unknown)).unwrap_err();
        assert_eq!(error.code, 400);
        assert!(
            error.message.contains("field 15 of Namespace.metadata"),
            "{}",
            error.message
        );
        let error = decode_object(b"{}").unwrap_err();
        assert_eq!(error.code, 400);
    }
}
