//! Page cutting and read points, without a server.

use super::token::ContinueToken;
use super::*;

fn keyed(names: &[&str]) -> Vec<(String, Value)> {
    names
        .iter()
        .map(|n| {
            let labels = if n.starts_with('x') {
                json!({"keep": "yes"})
            } else {
                json!({})
            };
            (
                n.to_string(),
                json!({"metadata": {"name": n, "labels": labels}}),
            )
        })
        .collect()
}

fn names(page: &Page) -> Vec<&str> {
    page.items
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect()
}

fn start_of(page: &Page) -> ContinueToken {
    token::decode(page.continue_token.as_ref().unwrap()).unwrap()
}

#[test]
fn a_full_page_continues_after_its_last_key_and_counts_the_rest() {
    let page = cut(keyed(&["a", "b", "c", "d", "e"]), 2, |_| true, true, 7);
    assert_eq!(names(&page), ["a", "b"]);
    assert_eq!(page.remaining, Some(3));
    assert_eq!(
        start_of(&page),
        ContinueToken {
            revision: 7,
            start: "b\u{0}".into()
        }
    );
    // The last page, and a page that ends exactly at the last key, have no token.
    let last = cut(keyed(&["e"]), 2, |_| true, true, 7);
    assert_eq!((last.continue_token, last.remaining), (None, None));
    let exact = cut(keyed(&["d", "e"]), 2, |_| true, true, 7);
    assert_eq!((exact.continue_token, exact.remaining), (None, None));
    let all = cut(keyed(&["a", "b", "c"]), 0, |_| true, true, 7);
    assert_eq!((all.items.len(), all.continue_token), (3, None));
}

#[test]
fn selectors_apply_before_the_limit_and_hide_the_count() {
    let matches = |o: &Value| o.pointer("/metadata/labels/keep").is_some();
    let page = cut(
        keyed(&["a", "x1", "b", "x2", "c", "x3"]),
        2,
        matches,
        false,
        9,
    );
    assert_eq!(names(&page), ["x1", "x2"]);
    assert_eq!(page.remaining, None);
    assert_eq!(start_of(&page).start, "x2\u{0}");
    // Keys follow the last match but none matches: still a token, as etcd pages.
    let page = cut(keyed(&["x1", "x2", "c"]), 2, matches, false, 9);
    assert!(page.continue_token.is_some());
}

fn options(pairs: &[(&str, &str)]) -> ListOptions {
    let query = Query(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    ListOptions::from_query(&query).unwrap()
}

fn status_of(refusal: Refusal) -> u16 {
    refusal.into_response().status().as_u16()
}

#[test]
fn resource_version_zero_is_served_whole_as_the_watch_cache_does() {
    assert_eq!(effective_limit(&options(&[("limit", "5")])), 5);
    assert_eq!(
        effective_limit(&options(&[("limit", "5"), ("resourceVersion", "0")])),
        0
    );
    let token = token::encode("b\u{0}", 40);
    let continuing = options(&[
        ("limit", "5"),
        ("resourceVersion", "0"),
        ("continue", &token),
    ]);
    assert_eq!(effective_limit(&continuing), 5);
}

#[test]
fn read_points_follow_resource_version_match() {
    let at = |pairs: &[(&str, &str)]| read_point(&options(pairs), 50).ok().unwrap().revision;
    assert_eq!(at(&[]), None);
    assert_eq!(at(&[("resourceVersion", "0"), ("limit", "5")]), None);
    assert_eq!(at(&[("resourceVersion", "40")]), None);
    assert_eq!(at(&[("resourceVersion", "40"), ("limit", "5")]), Some(40));
    assert_eq!(
        at(&[("resourceVersion", "40"), ("resourceVersionMatch", "Exact")]),
        Some(40)
    );
    assert_eq!(
        at(&[
            ("resourceVersion", "40"),
            ("resourceVersionMatch", "NotOlderThan"),
            ("limit", "5")
        ]),
        None
    );
    let too_new = read_point(&options(&[("resourceVersion", "60")]), 50);
    assert_eq!(status_of(too_new.err().unwrap()), 504);
}

#[test]
fn continue_tokens_read_at_their_revision_unless_told_otherwise() {
    let token = token::encode("b\u{0}", 40);
    let point = read_point(&options(&[("continue", &token)]), 50)
        .ok()
        .unwrap();
    assert_eq!(
        (point.revision, point.start.as_deref()),
        (Some(40), Some("b\u{0}"))
    );
    let latest = token::encode("b\u{0}", -1);
    let point = read_point(&options(&[("continue", &latest)]), 50)
        .ok()
        .unwrap();
    assert_eq!(point.revision, None);
    let with_rv = read_point(
        &options(&[("continue", &token), ("resourceVersion", "40")]),
        50,
    );
    assert_eq!(status_of(with_rv.err().unwrap()), 400);
    let garbage = read_point(&options(&[("continue", "garbage!")]), 50);
    assert_eq!(status_of(garbage.err().unwrap()), 400);
}

#[test]
fn unparsable_resource_versions_fail_as_upstream_paths_do() {
    let cached = read_point(&options(&[("resourceVersion", "abc")]), 50);
    assert_eq!(status_of(cached.err().unwrap()), 500);
    let from_etcd = read_point(&options(&[("resourceVersion", "abc"), ("limit", "1")]), 50);
    assert_eq!(status_of(from_etcd.err().unwrap()), 400);
}
