//! The continue token of a paged list, as kube-apiserver's storage writes and reads it
//! (k8s.io/apiserver/pkg/storage/continue.go): unpadded base64url of the JSON
//! `{"v":"meta.k8s.io/v1","rv":<list resourceVersion>,"start":"<next key>"}`, where the next
//! key is the last returned key plus a NUL byte, relative to the list's key prefix. Clients
//! treat it as opaque; decoding errors carry upstream's texts, since that is what a client
//! shows its user.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use serde_json::Value;

/// Go's `base64.RawURLEncoding`: no padding, and (not being Strict) trailing bits ignored.
const RAW_URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// The only encoded version upstream knows.
const VERSION: &str = "meta.k8s.io/v1";

/// `ErrGenericInvalidKey`'s text; the other errors extend it.
const INVALID: &str = "continue key is not valid";

/// A decoded continue token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinueToken {
    /// The resourceVersion every page is read at; negative: "the latest", as in the token an
    /// expired list hands out to continue inconsistently.
    pub revision: i64,
    /// Where the next page starts, relative to the list's key prefix (path-clean, without a
    /// leading slash).
    pub start: String,
}

/// The JSON fields in upstream's order (`continueToken` in continue.go).
#[derive(Serialize)]
struct Encoded<'a> {
    v: &'a str,
    rv: i64,
    start: &'a str,
}

/// The token for a list that goes on at `start` (already past the last returned key) at
/// `revision`.
pub fn encode(start: &str, revision: i64) -> String {
    let json = serde_json::to_vec(&Encoded {
        v: VERSION,
        rv: revision,
        start,
    })
    .unwrap_or_default();
    RAW_URL.encode(json)
}

/// Decodes a token; the error is upstream's text (`continue key is not valid: …`).
pub fn decode(value: &str) -> Result<ContinueToken, String> {
    let data = RAW_URL
        .decode(value)
        .map_err(|e| format!("{INVALID}: {}", base64_error(value, e)))?;
    let json: Value = serde_json::from_slice(&data)
        .map_err(|e| format!("{INVALID}: {}", json_error(&data, &e)))?;
    let (version, revision, start) = fields(&json).map_err(|e| format!("{INVALID}: {e}"))?;
    if version != VERSION {
        return Err(format!(
            "{INVALID}: server does not recognize this encoded version {version}"
        ));
    }
    if revision == 0 {
        return Err(format!(
            "{INVALID}: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ));
    }
    if start.is_empty() {
        return Err(format!(
            "{INVALID}: encoded start key empty (version meta.k8s.io/v1)"
        ));
    }
    // Upstream's defence against path traversal: the key must be what path.Clean makes of it.
    let key = if start.starts_with('/') {
        start.clone()
    } else {
        format!("/{start}")
    };
    if !is_clean_path(&key) {
        return Err(format!("{INVALID}: {start}"));
    }
    Ok(ContinueToken {
        revision,
        start: key[1..].to_string(),
    })
}

/// Whether Go's `path.Clean` leaves this rooted path as it is.
fn is_clean_path(key: &str) -> bool {
    key == "/"
        || (!key.ends_with('/')
            && key[1..]
                .split('/')
                .all(|segment| !segment.is_empty() && segment != "." && segment != ".."))
}

/// The token's fields as Go's `json.Unmarshal` reads them into `continueToken`: missing or
/// null fields are zero, other fields ignored, a wrong type an error.
fn fields(json: &Value) -> Result<(String, i64, String), String> {
    let object = match json {
        Value::Object(object) => object,
        Value::Null => return Ok((String::new(), 0, String::new())),
        other => {
            return Err(format!(
                "json: cannot unmarshal {} into Go value of type storage.continueToken",
                go_kind(other)
            ));
        }
    };
    let mismatch = |field: &str, value: &Value, go_type: &str| {
        let what = match value {
            Value::Number(n) => format!("number {n}"),
            other => go_kind(other).to_string(),
        };
        format!(
            "json: cannot unmarshal {what} into Go struct field continueToken.{field} of type {go_type}"
        )
    };
    let string = |field: &str| match object.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(mismatch(field, other, "string")),
    };
    let revision = match object.get("rv") {
        None | Some(Value::Null) => 0,
        Some(value @ Value::Number(n)) => {
            n.as_i64().ok_or_else(|| mismatch("rv", value, "int64"))?
        }
        Some(other) => return Err(mismatch("rv", other, "int64")),
    };
    Ok((string("v")?, revision, string("start")?))
}

/// How Go's encoding/json names a JSON value's type in its errors.
fn go_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `base64.CorruptInputError` text: the offset of the first byte it could not use.
fn base64_error(input: &str, error: base64::DecodeError) -> String {
    let offset = match error {
        base64::DecodeError::InvalidByte(offset, _)
        | base64::DecodeError::InvalidLastSymbol(offset, _) => offset,
        // A lone last character: Go reports where that quantum starts.
        base64::DecodeError::InvalidLength(_) => input.len().saturating_sub(1),
        base64::DecodeError::InvalidPadding => input.find('=').unwrap_or(0),
    };
    format!("illegal base64 data at input byte {offset}")
}

/// The nearest of Go's encoding/json syntax error texts (`invalid character 'x' …`).
fn json_error(data: &[u8], error: &serde_json::Error) -> String {
    if error.is_eof() {
        return "unexpected end of JSON input".to_string();
    }
    let context = if error.to_string().starts_with("trailing characters") {
        "after top-level value"
    } else {
        "looking for beginning of value"
    };
    // serde_json counts lines and columns from 1; the column is the offending byte's.
    let line_start: usize = data
        .split(|b| *b == b'\n')
        .take(error.line().saturating_sub(1))
        .map(|line| line.len() + 1)
        .sum();
    let offset = line_start + error.column().saturating_sub(1);
    match data.get(offset) {
        Some(byte) => format!("invalid character {} {context}", quote_char(*byte)),
        None => "unexpected end of JSON input".to_string(),
    }
}

/// Go's `quoteChar`: a byte in single quotes, escaped as strconv.Quote escapes it.
fn quote_char(byte: u8) -> String {
    match byte {
        b'\'' => r"'\''".to_string(),
        b'"' => "'\"'".to_string(),
        b'\\' => r"'\\'".to_string(),
        b'\n' => r"'\n'".to_string(),
        b'\t' => r"'\t'".to_string(),
        b'\r' => r"'\r'".to_string(),
        0x20..=0x7e => format!("'{}'", byte as char),
        other => format!("'\\x{other:02x}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_upstream_does() {
        // What kube-apiserver hands out for the first page of 1200 ConfigMaps at rv 1234.
        let token = encode("cm-0499\u{0}", 1234);
        assert_eq!(
            token,
            "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzNCwic3RhcnQiOiJjbS0wNDk5XHUwMDAwIn0"
        );
        assert_eq!(
            decode(&token),
            Ok(ContinueToken {
                revision: 1234,
                start: "cm-0499\u{0}".into()
            })
        );
        assert_eq!(decode(&encode("ns/a\u{0}", -1)).unwrap().revision, -1);
    }

    #[test]
    fn malformed_tokens_get_upstreams_errors() {
        let raw = |json: &str| RAW_URL.encode(json);
        let cases = [
            (
                "%%%",
                "continue key is not valid: illegal base64 data at input byte 0",
            ),
            (
                "abcde",
                "continue key is not valid: illegal base64 data at input byte 4",
            ),
            (
                &raw("{"),
                "continue key is not valid: unexpected end of JSON input",
            ),
            (
                &raw("hello"),
                "continue key is not valid: invalid character 'h' looking for beginning of value",
            ),
            (
                &raw("{} x"),
                "continue key is not valid: invalid character 'x' after top-level value",
            ),
            (
                &raw(r#"{"v":"meta.k8s.io/v2","rv":1,"start":"a"}"#),
                "continue key is not valid: server does not recognize this encoded version meta.k8s.io/v2",
            ),
            (
                &raw(r#"{"v":"meta.k8s.io/v1","start":"a"}"#),
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            ),
            (
                &raw(r#"{"v":"meta.k8s.io/v1","rv":5}"#),
                "continue key is not valid: encoded start key empty (version meta.k8s.io/v1)",
            ),
            (
                &raw(r#"{"v":"meta.k8s.io/v1","rv":5,"start":"../other"}"#),
                "continue key is not valid: ../other",
            ),
            (
                &raw(r#"{"v":"meta.k8s.io/v1","rv":"5","start":"a"}"#),
                "continue key is not valid: json: cannot unmarshal string into Go struct field continueToken.rv of type int64",
            ),
            (
                &raw("[]"),
                "continue key is not valid: json: cannot unmarshal array into Go value of type storage.continueToken",
            ),
        ];
        for (token, message) in cases {
            assert_eq!(decode(token), Err(message.to_string()), "{token}");
        }
    }

    #[test]
    fn start_keys_must_be_clean_paths() {
        for clean in ["/", "/a", "/ns/a\u{0}"] {
            assert!(is_clean_path(clean), "{clean}");
        }
        for unclean in ["//a", "/a/", "/./a", "/a/..", "/a//b"] {
            assert!(!is_clean_path(unclean), "{unclean}");
        }
    }
}
