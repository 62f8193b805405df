//! The list options of a request (`limit`, `continue`, `resourceVersion`,
//! `resourceVersionMatch`), decoded and validated as kube-apiserver's list handler does:
//! parameters that do not parse are a 400 (apimachinery's query conversion), combinations it
//! forbids a 422 `ListOptions.meta.k8s.io "" is invalid` (ValidateListOptions in
//! k8s.io/apimachinery/pkg/apis/meta/internalversion/validation).

use serde_json::{Value, json};

use crate::context::Query;
use crate::errors::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};

/// `resourceVersionMatch=NotOlderThan`.
pub const NOT_OLDER_THAN: &str = "NotOlderThan";
/// `resourceVersionMatch=Exact`.
pub const EXACT: &str = "Exact";

/// The list options of one request; empty strings and a zero limit mean "not given".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// The page size; 0 (or negative, as upstream) lists everything.
    pub limit: i64,
    /// The continue token of the previous page.
    pub continue_token: String,
    /// The resourceVersion to read at (its meaning set by the match rule).
    pub resource_version: String,
    /// `Exact`, `NotOlderThan`, or empty for the legacy rule.
    pub resource_version_match: String,
}

impl ListOptions {
    /// Decodes and validates the options of a list request.
    pub fn from_query(query: &Query) -> ApiResult<ListOptions> {
        let text = |key: &str| query.get(key).unwrap_or_default().to_string();
        let limit = match query.get("limit") {
            Some(limit) => parse_int(limit)?,
            None => 0,
        };
        let send_initial_events = query.get("sendInitialEvents").map(query_bool);
        let options = ListOptions {
            limit,
            continue_token: text("continue"),
            resource_version: text("resourceVersion"),
            resource_version_match: text("resourceVersionMatch"),
        };
        options.validate(send_initial_events.is_some())?;
        Ok(options)
    }

    /// Upstream's ValidateListOptions for a list (not a watch).
    fn validate(&self, send_initial_events: bool) -> ApiResult<()> {
        let mut errors = Vec::new();
        let forbidden = |detail: &str| FieldError {
            reason: "FieldValueForbidden",
            field: "resourceVersionMatch",
            body: format!("Forbidden: {detail}"),
        };
        let matching = self.resource_version_match.as_str();
        if !matching.is_empty() {
            if self.resource_version.is_empty() {
                errors.push(forbidden(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if !self.continue_token.is_empty() {
                errors.push(forbidden(
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if matching != EXACT && matching != NOT_OLDER_THAN {
                errors.push(FieldError {
                    reason: "FieldValueNotSupported",
                    field: "resourceVersionMatch",
                    body: format!(
                        "Unsupported value: {matching:?}: supported values: \"{EXACT}\", \"{NOT_OLDER_THAN}\", \"\""
                    ),
                });
            }
            if matching == EXACT && self.resource_version == "0" {
                errors.push(forbidden(
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if send_initial_events {
            errors.push(FieldError {
                reason: "FieldValueForbidden",
                field: "sendInitialEvents",
                body: "Forbidden: sendInitialEvents is forbidden for list".into(),
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(invalid_list_options(&errors))
        }
    }
}

/// One entry of a field.ErrorList: the cause's reason, the field and the error body.
pub struct FieldError {
    /// The cause type (`FieldValueForbidden`, `FieldValueNotSupported`).
    pub reason: &'static str,
    /// The field's path.
    pub field: &'static str,
    /// What `field.Error.ErrorBody` prints (`Forbidden: …`).
    pub body: String,
}

/// apierrors.NewInvalid for the meta.k8s.io `ListOptions` kind, with no name: the 422 of
/// ValidateListOptions, for lists and watches.
pub fn invalid_list_options(errors: &[FieldError]) -> ApiError {
    let texts: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.body))
        .collect();
    let aggregate = match texts.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| json!({"reason": e.reason, "message": e.body, "field": e.field}))
        .collect();
    // Built from another constructor and reshaped, so that this stays independent of how
    // ApiError's own `invalid` names kinds.
    let mut error = ApiError::bad_request(format!(
        "ListOptions.meta.k8s.io \"\" is invalid: {aggregate}"
    ));
    error.code = 422;
    error.reason = "Invalid";
    error.details = Some(json!({"group": "meta.k8s.io", "kind": "ListOptions", "causes": causes}));
    error
}

/// The selectors of a list, watch or collection delete, decoded with the numbers beside them
/// in the order of apimachinery's ListOptions conversion (labelSelector, fieldSelector,
/// timeoutSeconds, limit: the first that does not parse is the 400), then each field label
/// checked against the kind, as the handler's `FieldSelector.Transform` does.
pub fn decode_selectors(
    query: &Query,
    resource: &ResourceInfo,
) -> ApiResult<(LabelSelector, FieldSelector)> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())?;
    if let Some(timeout) = query.get("timeoutSeconds").filter(|t| !t.is_empty()) {
        parse_int(timeout)?;
    }
    if let Some(limit) = query.get("limit") {
        parse_int(limit)?;
    }
    for label in fields.labels() {
        crate::field_labels::check(resource, label)?;
    }
    Ok((labels, fields))
}

/// Go's strconv.ParseInt(s, 10, 64), with its error text (a 400, as the query conversion's).
fn parse_int(text: &str) -> ApiResult<i64> {
    text.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        ApiError::bad_request(format!("strconv.ParseInt: parsing {text:?}: {why}"))
    })
}

/// A boolean query parameter as apimachinery's conversion reads it
/// (`runtime.Convert_Slice_string_To_bool`): "0" and "false" (any case) are false, any other
/// value, the empty one included, is true. It never fails.
pub fn query_bool(text: &str) -> bool {
    !(text == "0" || text.eq_ignore_ascii_case("false"))
}

/// Go's strconv.ParseUint(s, 10, 64) as the storage versioner parses a resourceVersion; the
/// error is the versioner's field error text.
pub fn parse_resource_version(text: &str) -> Result<u64, String> {
    // Rust accepts a leading '+', ParseUint does not.
    let parsed = if text.starts_with('+') {
        Err(None)
    } else {
        text.parse::<u64>().map_err(|e| Some(*e.kind()))
    };
    parsed.map_err(|kind| {
        let why = match kind {
            Some(std::num::IntErrorKind::PosOverflow) => "value out of range",
            _ => "invalid syntax",
        };
        format!(
            "resourceVersion: Invalid value: {text:?}: strconv.ParseUint: parsing {text:?}: {why}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Query {
        Query::of(pairs)
    }

    #[test]
    fn decodes_limit_continue_and_resource_version() {
        let options = ListOptions::from_query(&query(&[
            ("limit", "500"),
            ("resourceVersion", "12"),
            ("resourceVersionMatch", "NotOlderThan"),
        ]))
        .unwrap();
        assert_eq!(options.limit, 500);
        assert_eq!(options.resource_version, "12");
        let error = ListOptions::from_query(&query(&[("limit", "ten")])).unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (400, "strconv.ParseInt: parsing \"ten\": invalid syntax")
        );
    }

    #[test]
    fn forbidden_combinations_are_invalid_as_upstream_says() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("resourceVersionMatch", "NotOlderThan")],
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            ),
            (
                &[
                    ("resourceVersion", "5"),
                    ("resourceVersionMatch", "Exact"),
                    ("continue", "x"),
                ],
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided",
            ),
            (
                &[("resourceVersion", "5"), ("resourceVersionMatch", "Newest")],
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"Newest\": supported values: \"Exact\", \"NotOlderThan\", \"\"",
            ),
            (
                &[("resourceVersion", "0"), ("resourceVersionMatch", "Exact")],
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ),
            (
                &[
                    ("resourceVersionMatch", "Newest"),
                    ("sendInitialEvents", "true"),
                ],
                "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided, resourceVersionMatch: Unsupported value: \"Newest\": supported values: \"Exact\", \"NotOlderThan\", \"\", sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list]",
            ),
        ];
        for (pairs, message) in cases {
            let error = ListOptions::from_query(&query(pairs)).unwrap_err();
            assert_eq!(error.code, 422);
            assert_eq!(error.reason, "Invalid");
            assert_eq!(error.message, *message);
        }
    }

    #[test]
    fn resource_versions_parse_as_parse_uint() {
        assert_eq!(parse_resource_version("42"), Ok(42));
        assert_eq!(
            parse_resource_version("+1"),
            Err("resourceVersion: Invalid value: \"+1\": strconv.ParseUint: parsing \"+1\": invalid syntax".into())
        );
        assert!(
            parse_resource_version("99999999999999999999")
                .unwrap_err()
                .ends_with("value out of range")
        );
    }
}
