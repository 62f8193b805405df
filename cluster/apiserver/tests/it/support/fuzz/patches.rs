//! Broken patches of every patch type (json-patch, merge-patch, strategic-merge-patch,
//! apply-patch+yaml) against a fixture, and patches sent with a content type that is not a
//! patch type.

use serde_json::{Value, json};

use super::bodies::{encoded, with_dry_run};
use super::bytes::{alias_bomb, break_bytes};
use super::encode::Encoding;
use super::seeds::Seed;
use super::{Case, Rng, Validity};

const JSON_PATCH: &str = "application/json-patch+json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

pub fn patch(rng: &mut Rng, seed: &Seed) -> Case {
    use Validity::Invalid;
    let missing = rng.one_in(10);
    let mut path = if missing {
        format!("{}/fuzz-missing", seed.collection())
    } else {
        seed.item()
    };
    let patch_type = *rng.pick(&[JSON_PATCH, MERGE_PATCH, STRATEGIC, APPLY]);
    let (body, mut validity, what) = match patch_type {
        JSON_PATCH => json_patch(rng),
        APPLY => apply_patch(rng, seed),
        merge => merge_patch(rng, merge == STRATEGIC),
    };
    let mut query = Vec::new();
    if patch_type == APPLY {
        if rng.one_in(8) {
            validity = Invalid; // a field manager is required
        } else {
            query.push("fieldManager=fuzz".to_string());
            query.push(format!("force={}", rng.one_in(2)));
        }
    } else if missing {
        validity = Invalid; // nothing to patch: 404
    }
    let mut content_type = Some(patch_type.as_bytes().to_vec());
    let mut description = format!("{patch_type} {}: {what}", seed.kind);
    if rng.one_in(8) {
        let (hostile, hostile_validity) = hostile_patch_type(rng);
        description.push_str(&format!(
            ", content type {:?}",
            String::from_utf8_lossy(&hostile)
        ));
        validity = hostile_validity.and(validity);
        content_type = if hostile.is_empty() {
            None
        } else {
            Some(hostile)
        };
    }
    if rng.one_in(8) {
        // The status subresource keeps the stored metadata (and spec): a broken label may
        // never be looked at.
        path.push_str("/status");
        validity = validity.and(Validity::Lost);
    }
    let mut uri = with_dry_run(rng, path, validity);
    for parameter in query {
        uri.push(if uri.contains('?') { '&' } else { '?' });
        uri.push_str(&parameter);
    }
    Case {
        method: http::Method::PATCH,
        uri,
        content_type,
        body,
        validity,
        watch: false,
        description,
    }
}

/// Content types a PATCH refuses with 415, or may take.
fn hostile_patch_type(rng: &mut Rng) -> (Vec<u8>, Validity) {
    const REFUSED: &[&[u8]] = &[
        b"application/json",
        b"application/yaml",
        b"application/vnd.kubernetes.protobuf",
        b"text/plain",
        b"application/merge-patch+yaml",
        b"application/apply-patch+cbor",
        b"",
        b"\xffapplication/merge-patch+json",
    ];
    const MAYBE: &[&[u8]] = &[b"application/merge-patch+json; charset=utf-8"];
    if rng.one_in(5) {
        (rng.pick(MAYBE).to_vec(), Validity::Maybe)
    } else {
        (rng.pick(REFUSED).to_vec(), Validity::Invalid)
    }
}

/// RFC 6902 operations, broken or not.
fn json_patch(rng: &mut Rng) -> (Vec<u8>, Validity, String) {
    use Validity::{Invalid, Maybe};
    let (operations, validity, what) = match rng.below(10) {
        0 => (json!({"op": "add"}), Invalid, "not an array"),
        1 => (
            json!([{"op": "bogus", "path": "/metadata/labels/x", "value": "y"}]),
            Invalid,
            "unknown op",
        ),
        2 => (json!([{"op": "add", "value": "y"}]), Invalid, "no path"),
        3 => (
            json!([{"op": "test", "path": "/metadata/name", "value": "not-the-name"}]),
            Invalid,
            "failing test",
        ),
        4 => (
            json!([{"op": "remove", "path": "/metadata/fuzzMissing/x"}]),
            Invalid,
            "remove of a missing path",
        ),
        5 => (
            json!([{"op": "move", "from": "/metadata", "path": "/metadata/labels/m"}]),
            Invalid,
            "move into its own child",
        ),
        6 => (
            json!([{"op": "add", "path": "/metadata/finalizers/99999999999999999999", "value": "x"}]),
            Invalid,
            "huge index",
        ),
        7 => (
            json!([{"op": "replace", "path": "/metadata/name", "value": "fuzz-renamed"}]),
            Invalid,
            "rename",
        ),
        8 => {
            let ops: Vec<Value> = (0..1 + rng.below(2000))
                .map(|i| json!({"op": "add", "path": format!("/metadata/labels/k{i}"), "value": "v"}))
                .collect();
            (Value::Array(ops), Maybe, "many adds")
        }
        _ => {
            let path = rng.pick(&[
                "",
                "/",
                "metadata",
                "/metadata/labels/~2",
                "/metadata/labels/a~1b",
                "/spec/-",
                "/metadata/labels/app/0",
            ]);
            let op = rng.pick(&["add", "replace", "copy", "remove", "test"]);
            (
                json!([{"op": op, "path": path, "from": path, "value": {"$patch": "delete"}}]),
                Maybe,
                "odd path",
            )
        }
    };
    let (bytes, byte_validity, byte_what) =
        break_bytes(rng, operations.to_string().into_bytes(), Encoding::Json);
    (
        bytes,
        validity.and(byte_validity),
        format!("{what}{byte_what}"),
    )
}

/// JSON merge patches (RFC 7386) and strategic merge patches with broken directives.
fn merge_patch(rng: &mut Rng, strategic: bool) -> (Vec<u8>, Validity, String) {
    use Validity::{Invalid, Maybe};
    let (patch, validity, what) = match rng.below(10) {
        0 => (
            rng.pick(&[json!([1]), json!("x"), json!(3)]).clone(),
            Invalid,
            "not an object".to_string(),
        ),
        1 => (
            json!({"metadata": "x"}),
            Invalid,
            "metadata a string".to_string(),
        ),
        2 => (
            json!({"metadata": {"name": "fuzz-renamed"}}),
            Invalid,
            "rename".to_string(),
        ),
        3 => (
            json!({"apiVersion": "fuzz.example.com/v9"}),
            Invalid,
            "foreign apiVersion".to_string(),
        ),
        4 => (
            json!({"kind": "FuzzOther"}),
            Invalid,
            "foreign kind".to_string(),
        ),
        5 => (
            json!({"metadata": {"labels": {"app": "__fuzz_placeholder__"}}}),
            Invalid,
            "deep nesting".to_string(),
        ),
        6 => (
            json!({"metadata": {"labels": {"app": "x".repeat(64)}}}),
            Invalid,
            "label value too long".to_string(),
        ),
        7 if strategic => {
            let directive = strategic_directive(rng);
            let what = format!("directive {directive}");
            (directive, Maybe, what)
        }
        _ => {
            let key = rng.pick(&[
                "metadata",
                "spec",
                "status",
                "data",
                "fuzzUnknown",
                "subsets",
                "type",
            ]);
            let value = rng
                .pick(&[
                    json!(null),
                    json!({}),
                    json!([]),
                    json!(0),
                    json!({"x": [null]}),
                ])
                .clone();
            let what = format!("{key} = {value}");
            (json!({*key: value}), Maybe, what)
        }
    };
    let bytes = encoded(rng, &patch, Encoding::Json);
    let (bytes, byte_validity, byte_what) = break_bytes(rng, bytes, Encoding::Json);
    (
        bytes,
        validity.and(byte_validity),
        format!("{what}{byte_what}"),
    )
}

/// A strategic merge patch directive, misused: kube-apiserver refuses some, ignores others.
fn strategic_directive(rng: &mut Rng) -> Value {
    rng.pick(&[
        json!({"$patch": "bogus"}),
        json!({"$patch": "delete"}),
        json!({"$patch": "replace", "metadata": 1}),
        json!({"$retainKeys": "not-a-list", "metadata": {}}),
        json!({"metadata": {"$setElementOrder/finalizers": 1, "finalizers": ["a/b"]}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}}),
        json!({"spec": {"containers": [{"$patch": "delete"}], "$setElementOrder/containers": [{"name": 1}]}}),
        json!({"spec": {"containers": [{"name": "c", "$patch": "replace", "image": 5}]}}),
    ])
    .clone()
}

/// Server-side apply configurations in YAML (or JSON, which is YAML too), broken or not.
fn apply_patch(rng: &mut Rng, seed: &Seed) -> (Vec<u8>, Validity, String) {
    use Validity::{Invalid, Maybe};
    let mut object = seed.object(seed.fixture);
    let encoding = if rng.one_in(3) {
        Encoding::Json
    } else {
        Encoding::Yaml
    };
    let (validity, what) = match rng.below(9) {
        0 => {
            object = json!([object]);
            (Invalid, "a list")
        }
        1 => {
            object = json!("just a string");
            (Invalid, "a scalar")
        }
        2 => {
            object["kind"] = json!("FuzzOther");
            (Invalid, "foreign kind")
        }
        3 => {
            object["metadata"]["labels"]["app"] = json!("__fuzz_placeholder__");
            (Invalid, "deep nesting")
        }
        4 => return (alias_bomb(), Invalid, "alias bomb".to_string()),
        5 => {
            let garbage = rng.pick(&[
                "{",
                "a: [",
                "a: b\n c: d\n- e",
                "\t- x",
                "key: \"unterminated",
                "? ? ?",
            ]);
            return (
                garbage.as_bytes().to_vec(),
                Invalid,
                format!("garbage {garbage:?}"),
            );
        }
        6 => {
            object["metadata"]["name"] = json!("fuzz-renamed");
            (Invalid, "rename")
        }
        _ => (Maybe, "as it is"),
    };
    let bytes = encoded(rng, &object, encoding);
    let (bytes, byte_validity, byte_what) = break_bytes(rng, bytes, encoding);
    (
        bytes,
        validity.and(byte_validity),
        format!("{encoding:?} {what}{byte_what}"),
    )
}
