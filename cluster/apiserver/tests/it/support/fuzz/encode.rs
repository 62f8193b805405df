//! The encodings a body is sent in: JSON, YAML (block style, written here so that the
//! emitter is as simple as the bytes it must produce) and Kubernetes protobuf for the kinds
//! the server reads that way.

use serde_json::Value;

/// The protobuf media type.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// An encoding of an object body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Yaml,
    Protobuf,
}

impl Encoding {
    pub fn media_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Yaml => "application/yaml",
            Encoding::Protobuf => PROTOBUF,
        }
    }
}

/// `object` as block YAML; scalars as JSON literals (valid YAML flow scalars).
pub fn yaml(value: &Value) -> String {
    let mut out = String::new();
    yaml_into(&mut out, value, 0);
    out
}

fn yaml_into(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                let key = Value::String(key.clone()).to_string();
                if is_nested(item) {
                    out.push_str(&format!("{pad}{key}:\n"));
                    yaml_into(out, item, indent + 2);
                } else {
                    out.push_str(&format!("{pad}{key}: {item}\n"));
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_nested(item) {
                    out.push_str(&format!("{pad}-\n"));
                    yaml_into(out, item, indent + 2);
                } else {
                    out.push_str(&format!("{pad}- {item}\n"));
                }
            }
        }
        scalar => out.push_str(&format!("{pad}{scalar}\n")),
    }
}

fn is_nested(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

/// The kinds this fuzzer encodes as protobuf (the server reads every built-in kind; these
/// four are the seeds' kinds whose fields the small encoder below writes).
pub fn has_protobuf(kind: &str) -> bool {
    matches!(
        kind,
        "ConfigMap" | "Secret" | "Namespace" | "ServiceAccount"
    )
}

/// `object` (one of [`has_protobuf`]'s kinds) in Kubernetes' protobuf envelope: name,
/// labels, annotations and the string or bytes `data` map (the fields of generated.proto).
pub fn protobuf(object: &Value) -> Vec<u8> {
    let text = |v: &Value| v.as_str().map(str::as_bytes).unwrap_or_default().to_vec();
    let map = |v: &Value, bytes: bool| -> Vec<Vec<u8>> {
        v.as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let value = if bytes {
                    base64_decode(v.as_str().unwrap_or_default())
                } else {
                    text(v)
                };
                [field(1, k.as_bytes()), field(2, &value)].concat()
            })
            .collect()
    };
    let meta = &object["metadata"];
    let mut metadata = field(1, &text(&meta["name"]));
    for entry in map(&meta["labels"], false) {
        metadata.extend(field(11, &entry));
    }
    for entry in map(&meta["annotations"], false) {
        metadata.extend(field(12, &entry));
    }
    let mut raw = field(1, &metadata);
    match object["kind"].as_str() {
        Some("ConfigMap") => map(&object["data"], false)
            .iter()
            .for_each(|e| raw.extend(field(2, e))),
        Some("Secret") => map(&object["data"], true)
            .iter()
            .for_each(|e| raw.extend(field(2, e))),
        _ => {}
    }
    envelope(&text(&object["apiVersion"]), &text(&object["kind"]), &raw)
}

/// The `k8s\0` envelope: `runtime.Unknown{typeMeta{apiVersion, kind}, raw}`.
pub fn envelope(api_version: &[u8], kind: &[u8], raw: &[u8]) -> Vec<u8> {
    let type_meta = [field(1, api_version), field(2, kind)].concat();
    [b"k8s\0".to_vec(), field(1, &type_meta), field(2, raw)].concat()
}

/// A length-delimited protobuf field.
pub fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = varint(number << 3 | 2);
    out.extend(varint(bytes.len() as u64));
    out.extend_from_slice(bytes);
    out
}

pub fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|_| text.as_bytes().to_vec())
}
