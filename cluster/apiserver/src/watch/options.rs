//! The options of a watch request, decoded, defaulted and validated as kube-apiserver 1.33
//! does with its WatchList feature on: `SetListOptionsDefaults` turns a watch from
//! resourceVersion "" or "0" into a streaming list (`sendInitialEvents=true`,
//! `resourceVersionMatch=NotOlderThan`), then `validateWatchOptions` answers invalid
//! combinations with a 422 `ListOptions.meta.k8s.io "" is invalid`.

use std::time::Duration;

use crate::context::Query;
use crate::errors::{ApiError, ApiResult};
use crate::paging::options::{
    FieldError, NOT_OLDER_THAN, invalid_list_options, parse_resource_version, query_bool,
};

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The current objects first, as ADDED events (`sendInitialEvents=true`), then changes.
    InitialEvents {
        /// The state sent must be at least this revision: the watch waits for the store to
        /// reach it (`resourceVersion` with `NotOlderThan`; None for "" and "0").
        not_older_than: Option<u64>,
        /// The initial events end with the `k8s.io/initial-events-end` bookmark (only for a
        /// client that takes bookmarks, as the watch cache sends it).
        end_bookmark: bool,
    },
    /// Only the changes after this revision (None: after the current one).
    After(Option<u64>),
}

/// A watch request's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// Where the watch starts.
    pub start: Start,
    /// The resourceVersion asked for ("0" is Some(0)); None when there was none.
    pub resource_version: Option<u64>,
    /// `allowWatchBookmarks`: the client takes BOOKMARK events.
    pub bookmarks: bool,
    /// `timeoutSeconds`: the watch ends after this long.
    pub timeout: Option<Duration>,
}

impl WatchOptions {
    /// Decodes, defaults and validates the options of a watch request.
    pub fn from_query(query: &Query) -> ApiResult<WatchOptions> {
        let resource_version = query.get("resourceVersion").unwrap_or_default();
        let mut matching = query.get("resourceVersionMatch").unwrap_or_default();
        let mut send_initial_events = query.get("sendInitialEvents").map(query_bool);
        let bookmarks = query.get("allowWatchBookmarks").is_some_and(query_bool);
        // SetListOptionsDefaults: a legacy watch from "any" or "the latest" state already
        // begins with that state, so it is served as the streaming list it amounts to.
        if send_initial_events.is_none()
            && matching.is_empty()
            && matches!(resource_version, "" | "0")
        {
            send_initial_events = Some(true);
            matching = NOT_OLDER_THAN;
        }
        validate(
            matching,
            send_initial_events,
            query.get("continue").unwrap_or_default(),
        )?;
        // The watch cache parses the resourceVersion after validation; its error reaches
        // the client unconverted (a 500 without a reason), as for lists.
        let requested = match resource_version {
            "" => None,
            text => Some(parse_resource_version(text).map_err(ApiError::unconverted)?),
        };
        let parsed = requested.filter(|revision| *revision > 0);
        let start = match send_initial_events {
            Some(true) => Start::InitialEvents {
                not_older_than: parsed,
                end_bookmark: bookmarks,
            },
            _ => Start::After(parsed),
        };
        let timeout = query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|t| *t > 0)
            .map(Duration::from_secs);
        Ok(WatchOptions {
            start,
            resource_version: requested,
            bookmarks,
            timeout,
        })
    }
}

/// Upstream's validateWatchOptions (WatchList on), in its order.
fn validate(
    matching: &str,
    send_initial_events: Option<bool>,
    continue_token: &str,
) -> ApiResult<()> {
    let forbidden = |detail: &str| FieldError {
        reason: "FieldValueForbidden",
        field: "resourceVersionMatch",
        body: format!("Forbidden: {detail}"),
    };
    let mut errors = Vec::new();
    if send_initial_events.is_some() && matching != NOT_OLDER_THAN {
        errors.push(forbidden(
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    if !matching.is_empty() {
        if send_initial_events.is_none() {
            errors.push(forbidden(
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if matching != NOT_OLDER_THAN {
            errors.push(FieldError {
                reason: "FieldValueNotSupported",
                field: "resourceVersionMatch",
                body: format!(
                    "Unsupported value: {matching:?}: supported values: \"{NOT_OLDER_THAN}\""
                ),
            });
        }
        if !continue_token.is_empty() {
            errors.push(forbidden(
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid_list_options(&errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> ApiResult<WatchOptions> {
        WatchOptions::from_query(&Query::of(pairs))
    }

    fn start(pairs: &[(&str, &str)]) -> Start {
        options(pairs).unwrap().start
    }

    #[test]
    fn legacy_watches_from_any_or_the_latest_state_are_streaming_lists() {
        let initial = |end_bookmark| Start::InitialEvents {
            not_older_than: None,
            end_bookmark,
        };
        assert_eq!(start(&[]), initial(false));
        assert_eq!(start(&[("resourceVersion", "0")]), initial(false));
        assert_eq!(start(&[("allowWatchBookmarks", "true")]), initial(true));
        assert_eq!(start(&[("resourceVersion", "7")]), Start::After(Some(7)));
        let streaming = [
            ("sendInitialEvents", "true"),
            ("resourceVersionMatch", "NotOlderThan"),
            ("resourceVersion", "12"),
            ("allowWatchBookmarks", "1"),
        ];
        assert_eq!(
            start(&streaming),
            Start::InitialEvents {
                not_older_than: Some(12),
                end_bookmark: true
            }
        );
        // Go's query conversion: anything but "0" and "false" is true.
        let no_initial = [
            ("sendInitialEvents", "FALSE"),
            ("resourceVersionMatch", "NotOlderThan"),
        ];
        assert_eq!(start(&no_initial), Start::After(None));
    }

    #[test]
    fn invalid_combinations_are_upstreams_422() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("sendInitialEvents", "true")],
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ),
            (
                &[
                    ("resourceVersion", "5"),
                    ("resourceVersionMatch", "NotOlderThan"),
                ],
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ),
            (
                &[
                    ("sendInitialEvents", "true"),
                    ("resourceVersionMatch", "Exact"),
                ],
                "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan, resourceVersionMatch: Unsupported value: \"Exact\": supported values: \"NotOlderThan\"]",
            ),
            (
                &[
                    ("sendInitialEvents", "true"),
                    ("resourceVersionMatch", "NotOlderThan"),
                    ("continue", "x"),
                ],
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided",
            ),
        ];
        for (pairs, message) in cases {
            let error = options(pairs).unwrap_err();
            assert_eq!((error.code, error.reason), (422, "Invalid"));
            assert_eq!(error.message, *message);
        }
        let error = options(&[("resourceVersion", "x1")]).unwrap_err();
        assert_eq!((error.code, error.reason), (500, ""));
        assert_eq!(
            error.message,
            "resourceVersion: Invalid value: \"x1\": strconv.ParseUint: parsing \"x1\": invalid syntax"
        );
    }
}
