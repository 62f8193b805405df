//! Byte-level breakage of an encoded body: truncation, invalid UTF-8, trailing garbage,
//! flipped bytes, an empty body, and YAML's alias bomb.

use super::encode::Encoding;
use super::{Rng, Validity};

/// `bytes` broken in one way (or not, half of the time); whether that is certainly invalid
/// in `encoding`; what was done.
pub fn break_bytes(
    rng: &mut Rng,
    mut bytes: Vec<u8>,
    encoding: Encoding,
) -> (Vec<u8>, Validity, String) {
    use Validity::{Invalid, Maybe};
    let text = encoding != Encoding::Protobuf;
    match rng.below(14) {
        0 if !bytes.is_empty() => {
            // A proper prefix of a JSON text is never JSON; of YAML it may be YAML. The last
            // bytes of a protobuf body are inside its `raw` field (at least the name), whose
            // declared length then runs past the end.
            let cut = if encoding == Encoding::Protobuf {
                bytes.len() - 1 - rng.below(8)
            } else {
                rng.below(bytes.len())
            };
            bytes.truncate(cut);
            // A YAML prefix may also have lost what made the document invalid.
            let validity = if encoding == Encoding::Yaml {
                Validity::Lost
            } else {
                Invalid
            };
            (bytes, validity, format!(", truncated at {cut}"))
        }
        1 => {
            let bad = rng.pick(INVALID_UTF8);
            bytes.splice(0..0, bad.iter().copied());
            (bytes, Invalid, format!(", starts with {bad:?}"))
        }
        2 if text => {
            // Inside a string: Go's decoder takes it as U+FFFD, so it may be accepted.
            let bad = rng.pick(INVALID_UTF8);
            let at = bytes.iter().position(|&b| b == b'"').map_or(0, |p| p + 1);
            bytes.splice(at..at, bad.iter().copied());
            (bytes, Maybe, format!(", {bad:?} at {at}"))
        }
        3 => {
            const GARBAGE: &[&[u8]] = &[b"}", b" x", b"{}", b"\0", b"\xff"];
            let garbage = *rng.pick(GARBAGE);
            bytes.extend_from_slice(garbage);
            let validity = if encoding == Encoding::Json {
                Invalid
            } else {
                Maybe
            };
            (bytes, validity, format!(", trailing {garbage:?}"))
        }
        4 if !bytes.is_empty() => {
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            (bytes, Validity::Lost, ", flipped bytes".to_string())
        }
        5 => (Vec::new(), Invalid, ", empty body".to_string()),
        6 if encoding == Encoding::Yaml => (alias_bomb(), Invalid, ", alias bomb".to_string()),
        _ => (bytes, Maybe, String::new()),
    }
}

const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
];

/// Nine levels of nine aliases: 387 million strings if expanded (go-yaml refuses it as
/// "excessive aliasing").
pub fn alias_bomb() -> Vec<u8> {
    let mut yaml = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for level in 1..9 {
        let previous = format!("*a{}", level - 1);
        let items = [previous.as_str(); 9].join(",");
        yaml.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    yaml.into_bytes()
}
