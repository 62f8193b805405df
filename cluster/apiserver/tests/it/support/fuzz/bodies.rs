//! Object bodies for create (POST) and update (PUT): a valid object of the kind, encoded as
//! JSON, YAML or protobuf, then broken in one way, and sent with its content type or a
//! hostile one.

use serde_json::{Value, json};

use super::encode::{self, Encoding};
use super::seeds::Seed;
use super::{Case, Rng, Validity};

/// Stands for a value that is replaced in the encoded text (deep nesting is written as text:
/// a `Value` that deep would overflow the test's own stack when dropped).
const PLACEHOLDER: &str = "__fuzz_placeholder__";

pub fn create(rng: &mut Rng, seed: &Seed) -> Case {
    let object = seed.object("fuzz-new");
    write_case(rng, seed, http::Method::POST, seed.collection(), object)
}

pub fn update(rng: &mut Rng, seed: &Seed) -> Case {
    let object = seed.object(seed.fixture);
    write_case(rng, seed, http::Method::PUT, seed.item(), object)
}

fn write_case(
    rng: &mut Rng,
    seed: &Seed,
    method: http::Method,
    path: String,
    object: Value,
) -> Case {
    let encoding = match rng.below(8) {
        0..=3 => Encoding::Json,
        4..=5 => Encoding::Yaml,
        _ if encode::has_protobuf(seed.kind) => Encoding::Protobuf,
        _ => Encoding::Json,
    };
    let (body, mut validity, mut description) = broken_body(rng, seed, &method, object, encoding);
    let mut content_type = Some(encoding.media_type().as_bytes().to_vec());
    if rng.one_in(6) {
        let (hostile, hostile_validity) = hostile_content_type(rng);
        description.push_str(&format!(
            ", content type {:?}",
            String::from_utf8_lossy(&hostile)
        ));
        validity = hostile_validity.and(validity);
        content_type = Some(hostile).filter(|c| !c.is_empty() || rng.one_in(2));
    }
    Case {
        uri: with_dry_run(rng, path, validity),
        method,
        content_type,
        body,
        validity,
        watch: false,
        description: format!("{encoding:?} {}: {description}", seed.kind),
    }
}

/// Invalid requests are also sent for real (the store must refuse them); the others only as
/// dry runs, so that a mutation that stays valid changes nothing.
pub fn with_dry_run(rng: &mut Rng, path: String, validity: Validity) -> String {
    if validity != Validity::Invalid || rng.one_in(3) {
        format!("{path}?dryRun=All")
    } else {
        path
    }
}

/// Content types an object endpoint refuses (415) or may accept.
pub fn hostile_content_type(rng: &mut Rng) -> (Vec<u8>, Validity) {
    const REFUSED: &[&[u8]] = &[
        b"text/plain",
        b"application/xml",
        b"application/json-patch+json",
        b"application/merge-patch+json",
        b"application/strategic-merge-patch+json",
        b"application/apply-patch+yaml",
        b"application/cbor",
        b"multipart/form-data; boundary=x",
        b"application/x-www-form-urlencoded",
        b"application/jsonx",
        b"json",
        b"\xff\xfeapplication/json",
        b"application/json\xc3\x28",
    ];
    const MAYBE: &[&[u8]] = &[
        b"APPLICATION/JSON",
        b"application/json; charset=utf-8",
        b"application/json;",
        b"application/json;;;",
        b"application/json; x=\"unterminated",
        b" application/json ",
        b"application/yaml; charset=utf-8",
        b"*/*",
        b"",
    ];
    match rng.below(4) {
        0 => (vec![b'a'; 8192], Validity::Invalid),
        1 => (rng.pick(MAYBE).to_vec(), Validity::Maybe),
        _ => (rng.pick(REFUSED).to_vec(), Validity::Invalid),
    }
}

/// The object broken in one way, encoded; whether that is certainly invalid; what was done.
fn broken_body(
    rng: &mut Rng,
    seed: &Seed,
    method: &http::Method,
    mut object: Value,
    encoding: Encoding,
) -> (Vec<u8>, Validity, String) {
    use Validity::{Invalid, Maybe};
    let mutation = rng.below(12);
    // Protobuf cannot carry what mutations 2, 3, 4, 7 and 8 break: those go as JSON.
    let encoding = match encoding {
        Encoding::Protobuf if [2, 3, 4, 7, 8].contains(&mutation) => Encoding::Json,
        other => other,
    };
    let (validity, what) = match mutation {
        0 => (Maybe, "unchanged".to_string()),
        1 => huge_string(rng, seed, &mut object),
        2 => {
            // Where a string must be: deeply nested arrays or objects, as text.
            object["metadata"]["labels"]["app"] = json!(PLACEHOLDER);
            (Invalid, "deep nesting in a label value".to_string())
        }
        3 => {
            let wrong = rng
                .pick(&[json!("x"), json!(1), json!([]), json!(true)])
                .clone();
            object["metadata"] = wrong.clone();
            (Invalid, format!("metadata {wrong}"))
        }
        4 => {
            let wrong = rng.pick(&[json!(1), json!(["a"]), json!({"a": 1})]).clone();
            object["metadata"]["labels"] = wrong.clone();
            (Invalid, format!("labels {wrong}"))
        }
        5 => {
            object["apiVersion"] = json!("fuzz.example.com/v9");
            (Invalid, "foreign apiVersion".to_string())
        }
        6 if *method == http::Method::PUT => {
            object["metadata"]["name"] = json!("fuzz-other");
            (Invalid, "name not the URL's".to_string())
        }
        6 => {
            // Invalid for every rule, core Events' path-segment rule too.
            object["metadata"]["name"] = json!("Not_A-Name/%");
            (Invalid, "invalid name".to_string())
        }
        7 if seed.namespaced => {
            object["metadata"]["namespace"] = json!("fuzz-elsewhere");
            (Invalid, "namespace not the URL's".to_string())
        }
        8 => {
            let top = rng
                .pick(&[
                    json!(null),
                    json!([]),
                    json!("x"),
                    json!(7),
                    json!([object]),
                ])
                .clone();
            object = top;
            (Invalid, "not an object".to_string())
        }
        _ => scramble(rng, &mut object),
    };
    let bytes = encoded(rng, &object, encoding);
    let (bytes, byte_validity, byte_what) = super::bytes::break_bytes(rng, bytes, encoding);
    let description = format!("{what}{byte_what}");
    (bytes, validity.and(byte_validity), description)
}

/// The object in `encoding`, with any placeholder replaced by deep nesting.
pub fn encoded(rng: &mut Rng, object: &Value, encoding: Encoding) -> Vec<u8> {
    let text = match encoding {
        Encoding::Protobuf => return encode::protobuf(object),
        Encoding::Json => object.to_string(),
        Encoding::Yaml => encode::yaml(object),
    };
    let quoted = format!("\"{PLACEHOLDER}\"");
    if !text.contains(&quoted) {
        return text.into_bytes();
    }
    let depth = *rng.pick(&[3, 64, 127, 128, 129, 1000, 10_000, 100_000]);
    let (open, close) = if rng.one_in(2) {
        ("[", "]")
    } else {
        ("{\"a\":", "}")
    };
    let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
    text.replace(&quoted, &nested).into_bytes()
}

/// A huge string where the kind's rules forbid it (name, label, annotations) or allow it
/// (a ConfigMap's data).
fn huge_string(rng: &mut Rng, seed: &Seed, object: &mut Value) -> (Validity, String) {
    let len = *rng.pick(&[254, 4096, 70_000, 300_000, 1 << 20, 3_200_000]);
    let filler = rng.pick(&["x", "é", "\u{0}", "🙂", "\\", "\""]);
    let text: String = filler.repeat(len / filler.len().max(1) + 1);
    let over_body_limit = text.len() > 3 * 1024 * 1024 - 4096;
    let (validity, place) = match rng.below(4) {
        0 => {
            object["metadata"]["name"] = json!(text);
            // Core Events' only name rule is a path segment's, which has no length limit.
            let core_event = (seed.group, seed.kind) == ("", "Event");
            let validity = if core_event {
                Validity::Maybe
            } else {
                Validity::Invalid
            };
            (validity, "name")
        }
        1 => {
            object["metadata"]["labels"]["app"] = json!(text);
            (Validity::Invalid, "label value")
        }
        2 if text.len() > 256 * 1024 => {
            object["metadata"]["annotations"]["note"] = json!(text);
            (Validity::Invalid, "annotation")
        }
        _ if seed.kind == "ConfigMap" => {
            object["data"]["big"] = json!(text);
            (Validity::Maybe, "data value")
        }
        _ => {
            object["metadata"]["annotations"]["note"] = json!(text);
            (Validity::Maybe, "annotation")
        }
    };
    let validity = if over_body_limit {
        Validity::Invalid
    } else {
        validity
    };
    (
        validity,
        format!("huge {place} ({} bytes of {filler:?})", text.len()),
    )
}

/// Unknown fields, wrong types at random places: may or may not be accepted.
fn scramble(rng: &mut Rng, object: &mut Value) -> (Validity, String) {
    let keys: Vec<String> = object
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let key = rng.pick(&keys).clone();
    let wrong = rng
        .pick(&[
            json!(null),
            json!(-1),
            json!(1.5e300),
            json!(""),
            json!({"$patch": "delete"}),
            json!([[]]),
        ])
        .clone();
    if rng.one_in(2) {
        object["fuzzUnknown"] = wrong.clone();
        return (Validity::Maybe, format!("unknown field = {wrong}"));
    }
    object[&key] = wrong.clone();
    (Validity::Maybe, format!("{key} = {wrong}"))
}
