//! The list verb with kube-apiserver's paging: `limit` and `continue` on every list, label and
//! field selectors applied before the limit, consistent pages (every page of one list is read
//! at the resourceVersion of its first page, from the store's history), `remainingItemCount`
//! when it is known, `resourceVersion` with `resourceVersionMatch`, and the same for Tables
//! (`kubectl get` lists in chunks of 500).
//!
//! The rules are etcd3's store (k8s.io/apiserver/pkg/storage/etcd3/store.go `GetList`): keys
//! in byte order relative to the list's prefix (`name`, or `namespace/name` across
//! namespaces), a page ends when `limit` objects matched, and the next page starts right
//! after the last key read.

pub(crate) mod options;
mod token;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

pub use options::ListOptions;

use crate::context::{Query, Shared, Target};
use crate::convert::to_view;
use crate::errors::{ApiError, json_response};
use crate::selectors::LabelSelector;
use crate::store::Unavailable;

/// etcd3's errors.go: a list at a compacted resourceVersion.
const EXPIRED_LIST: &str = "The resourceVersion for the provided list is too old.";
/// etcd3's errors.go: a continue token whose resourceVersion is compacted; the Status carries
/// a token that continues at the latest resourceVersion instead.
const INCONSISTENT_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// Where a list reads: at a resourceVersion (None: the latest) from a key on.
struct ReadPoint {
    revision: Option<u64>,
    /// The continue token's start key (relative to the list's prefix).
    start: Option<String>,
}

/// A list request refused: an API error, or a Status that [`ApiError`] cannot express (one
/// with `metadata.continue`, or one without a reason).
enum Refusal {
    Api(ApiError),
    Status(StatusCode, Box<Value>),
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal::Api(error)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Api(error) => error.into_response(),
            Refusal::Status(code, status) => json_response(code, &status),
        }
    }
}

/// One page of a list.
struct Page {
    items: Vec<Value>,
    revision: u64,
    continue_token: Option<String>,
    remaining: Option<i64>,
}

/// GET of a collection: a page of the list (all of it without `limit`), or a Table of it when
/// the client asks for Tables.
pub fn list(state: &Shared, target: &Target, query: &Query, headers: &HeaderMap) -> Response {
    match page(state, target, query) {
        Ok(page) if crate::table::wants_table(headers) => {
            let mut table = crate::table::to_table(
                target.resource.plural,
                &page.items,
                &page.revision.to_string(),
                query.get("includeObject"),
            );
            table["metadata"] = list_metadata(&page);
            json_response(StatusCode::OK, &table)
        }
        Ok(page) => {
            let list = json!({
                "kind": target.resource.list_kind(),
                "apiVersion": target.resource.api_version(),
                "metadata": list_metadata(&page),
                "items": page.items,
            });
            json_response(StatusCode::OK, &list)
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// The ListMeta of a page: resourceVersion, then continue and remainingItemCount if any.
fn list_metadata(page: &Page) -> Value {
    let mut metadata = json!({ "resourceVersion": page.revision.to_string() });
    if let Some(token) = &page.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = page.remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    metadata
}

/// Decodes the request, reads the list at its resourceVersion and cuts the page.
fn page(state: &Shared, target: &Target, query: &Query) -> Result<Page, Refusal> {
    let (labels, fields) = options::decode_selectors(query, target.resource)?;
    let options = ListOptions::from_query(query)?;
    let point = read_point(&options, state.store.revision())?;
    let resource = target.resource;
    let (objects, revision) = state
        .store
        .list_at(
            resource.store_key(),
            target.namespace.as_deref(),
            point.revision,
        )
        .map_err(|why| unavailable(why, &point))?;
    let mut keyed: Vec<(String, Value)> = objects
        .into_iter()
        .map(|object| (key(target, &object), object))
        .filter(|(key, _)| point.start.as_ref().is_none_or(|start| key >= start))
        .map(|(key, object)| (key, to_view(resource, object)))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let unfiltered = labels == LabelSelector::default() && fields.is_empty();
    Ok(cut(
        keyed,
        effective_limit(&options),
        |object| labels.matches(object) && fields.matches(object),
        unfiltered,
        revision,
    ))
}

/// The page size the list is served with. kube-apiserver 1.33 serves a first list at
/// resourceVersion "0" from its watch cache, which does not page (that came with the
/// ListFromCacheSnapshot gate, off in 1.33): the whole list, without a continue token.
fn effective_limit(options: &ListOptions) -> i64 {
    if options.resource_version == "0" && options.continue_token.is_empty() {
        0
    } else {
        options.limit
    }
}

/// An object's key relative to the list's prefix, as etcd orders it: the name within one
/// namespace or for cluster-scoped resources, `namespace/name` across namespaces.
fn key(target: &Target, object: &Value) -> String {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if target.namespace.is_some() || !target.resource.namespaced {
        return name.to_string();
    }
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!("{namespace}/{name}")
}

/// The page of `keyed` (sorted, from the start key on): up to `limit` objects that match. As
/// etcd's paging, a full page has a continue token when any key follows its last object, and
/// says how many keys follow only when nothing is filtered (the count is of keys, not of
/// matches).
fn cut(
    keyed: Vec<(String, Value)>,
    limit: i64,
    matches: impl Fn(&Value) -> bool,
    unfiltered: bool,
    revision: u64,
) -> Page {
    let total = keyed.len();
    let mut items = Vec::new();
    let mut next = None;
    for (read, (key, object)) in keyed.into_iter().enumerate() {
        if !matches(&object) {
            continue;
        }
        items.push(object);
        if limit > 0 && items.len() as i64 == limit {
            if read + 1 < total {
                next = Some(key);
            }
            break;
        }
    }
    let continue_token = next.map(|last| token::encode(&format!("{last}\u{0}"), revision as i64));
    let remaining = (continue_token.is_some() && unfiltered).then(|| total as i64 - limit);
    Page {
        items,
        revision,
        continue_token,
        remaining,
    }
}

/// The resourceVersion and start key a list reads at (storage.ValidateListOptions and the
/// watch cache's rules); `current` is the store's revision.
fn read_point(options: &ListOptions, current: u64) -> Result<ReadPoint, Refusal> {
    if !options.continue_token.is_empty() {
        let decoded = token::decode(&options.continue_token)
            .map_err(|e| ApiError::bad_request(format!("invalid continue token: {e}")))?;
        if !matches!(options.resource_version.as_str(), "" | "0") {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            )
            .into());
        }
        // A negative resourceVersion continues at the latest (the token of an expired list).
        return Ok(ReadPoint {
            revision: u64::try_from(decoded.revision).ok(),
            start: Some(decoded.start),
        });
    }
    let latest = ReadPoint {
        revision: None,
        start: None,
    };
    if options.resource_version.is_empty() {
        return Ok(latest);
    }
    let requested = options::parse_resource_version(&options.resource_version)
        .map_err(|e| bad_resource_version(options, e))?;
    let exact = match options.resource_version_match.as_str() {
        options::EXACT => true,
        options::NOT_OLDER_THAN => false,
        // The legacy rule: with a limit, a resourceVersion is read exactly.
        _ => options.limit > 0 && requested > 0,
    };
    if exact {
        return Ok(ReadPoint {
            revision: Some(requested),
            start: None,
        });
    }
    if requested > current {
        return Err(too_large(requested, current));
    }
    Ok(latest)
}

/// An unparsable resourceVersion. kube-apiserver answers it in two ways: the etcd store
/// (lists with a limit or resourceVersionMatch=Exact) with a 400, the watch cache (every
/// other list) with the bare storage error, which becomes a 500 without a reason.
fn bad_resource_version(options: &ListOptions, error: String) -> Refusal {
    let to_etcd = (options.limit > 0 && options.resource_version != "0")
        || options.resource_version_match == options::EXACT;
    if to_etcd {
        return ApiError::bad_request(format!("invalid resource version: {error}")).into();
    }
    ApiError::unconverted(error).into()
}

/// storage.NewTooLargeResourceVersionError as the watch cache answers it (retry in 1 s).
fn too_large(requested: u64, current: u64) -> Refusal {
    ApiError::too_large_resource_version(requested, current).into()
}

/// The answer when the store cannot read at the resourceVersion asked for.
fn unavailable(why: Unavailable, point: &ReadPoint) -> Refusal {
    match (why, &point.start) {
        (Unavailable::Future { current }, _) => {
            too_large(point.revision.unwrap_or_default(), current)
        }
        // etcd3's handleCompactedErrorForPaging: 410 with a token that goes on at the latest.
        (Unavailable::Compacted, Some(start)) => {
            let status = json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": { "continue": token::encode(start, -1) },
                "status": "Failure",
                "message": INCONSISTENT_CONTINUE,
                "reason": "Expired",
                "code": 410,
            });
            Refusal::Status(StatusCode::GONE, Box::new(status))
        }
        (Unavailable::Compacted, _) => ApiError::gone(EXPIRED_LIST).into(),
    }
}

#[cfg(test)]
mod tests;
