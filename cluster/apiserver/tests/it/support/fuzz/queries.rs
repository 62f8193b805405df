//! List and watch requests with hostile query parameters: selectors that do not parse,
//! fields no kind has, limits, continue tokens, resourceVersions and timeouts that are not
//! numbers, and the valid values around them.

use super::seeds::{NAMESPACE, Seed};
use super::{Case, Rng, Validity, percent};

/// A parameter's value and whether kube-apiserver refuses it in a list and a watch alike.
type Value = (&'static [u8], Validity);

const LABEL_SELECTORS: &[Value] = &[
    (b"app=web", Validity::Maybe),
    (b"app in (web,db),!gone", Validity::Maybe),
    (b"", Validity::Maybe),
    (b"a in (", Validity::Invalid),
    (b"a=(b", Validity::Invalid),
    (b"!", Validity::Invalid),
    (b"a b", Validity::Invalid),
    (b"a notin b", Validity::Invalid),
    (
        b"a=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv",
        Validity::Invalid,
    ),
    (b"\xff=1", Validity::Invalid),
    (b"a=b,,", Validity::Maybe),
];

const FIELD_SELECTORS: &[Value] = &[
    (b"metadata.name=fuzz-a", Validity::Maybe),
    (b"metadata.namespace!=x", Validity::Maybe),
    (b"spec.fuzzBogus=x", Validity::Invalid),
    (b"metadata.name", Validity::Invalid),
    (b"metadata.name=a=b", Validity::Maybe),
    (b"=x", Validity::Maybe),
];

const NUMBERS: &[Value] = &[
    (b"0", Validity::Maybe),
    (b"1", Validity::Maybe),
    (b"-1", Validity::Maybe),
    (b"abc", Validity::Invalid),
    (b"1.5", Validity::Invalid),
    (b"99999999999999999999", Validity::Invalid),
];

/// Not a resourceVersion that does not parse: kube-apiserver 1.33's watch cache refuses it
/// with a storage error it does not convert, a 500 (the paging and watch tests check it);
/// nor one in the future, which a list waits 3 s for, then answers with a 504.
const RESOURCE_VERSIONS: &[Value] = &[
    (b"", Validity::Maybe),
    (b"0", Validity::Maybe),
    (b"1", Validity::Maybe),
];

const MATCHES: &[Value] = &[
    (b"NotOlderThan", Validity::Maybe),
    (b"Exact", Validity::Maybe),
    (b"bogus", Validity::Invalid),
];

/// apimachinery's conversion reads any boolean ("maybe" is true): none is invalid.
const BOOLEANS: &[Value] = &[
    (b"true", Validity::Maybe),
    (b"false", Validity::Maybe),
    (b"maybe", Validity::Maybe),
];

const CONTINUES: &[Value] = &[
    (b"garbage!!", Validity::Invalid),
    (
        b"eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6LTEsInN0YXJ0IjoiIn0",
        Validity::Invalid,
    ),
    (b"", Validity::Maybe),
];

/// A list or a watch of the seed's resource with a few hostile parameters.
pub fn list_or_watch(rng: &mut Rng, seed: &Seed) -> Case {
    let watch = rng.one_in(3);
    let mut path = seed.collection();
    if seed.namespaced && rng.one_in(3) {
        path = path.replace(&format!("/namespaces/{NAMESPACE}"), "");
    }
    let mut parameters = Vec::new();
    let mut validity = Validity::Maybe;
    if watch {
        parameters.push("watch=true".to_string());
    }
    for _ in 0..1 + rng.below(3) {
        let (name, values): (&str, &[Value]) = match rng.below(9) {
            0 | 1 => ("labelSelector", LABEL_SELECTORS),
            2 => ("fieldSelector", FIELD_SELECTORS),
            3 => ("limit", NUMBERS),
            4 => ("timeoutSeconds", NUMBERS),
            5 => ("resourceVersion", RESOURCE_VERSIONS),
            6 => ("resourceVersionMatch", MATCHES),
            7 => ("allowWatchBookmarks", BOOLEANS),
            _ => ("continue", CONTINUES),
        };
        // Only the first of repeated parameters counts (as in Go's conversion): one each.
        if parameters
            .iter()
            .any(|p| p.starts_with(&format!("{name}=")))
        {
            continue;
        }
        let (value, value_validity) = *rng.pick(values);
        // A continue token means nothing to a watch: only a list must refuse a bad one.
        let value_validity = if watch && name == "continue" {
            Validity::Maybe
        } else {
            value_validity
        };
        validity = validity.and(value_validity);
        parameters.push(format!("{name}={}", percent(value)));
    }
    if rng.one_in(10) && !parameters.iter().any(|p| p.starts_with("labelSelector=")) {
        // A key past 63 characters: refused.
        parameters.push(format!("labelSelector={}", percent(&vec![b'a'; 8000])));
        validity = Validity::Invalid;
    }
    let query = parameters.join("&");
    Case {
        method: http::Method::GET,
        uri: format!("{path}?{query}"),
        content_type: None,
        body: Vec::new(),
        validity,
        watch,
        description: format!(
            "{} of {}: {query}",
            if watch { "watch" } else { "list" },
            seed.plural
        ),
    }
}
