//! DeleteOptions as kube-apiserver reads them (`endpoints/handlers/delete.go`): from the body
//! when there is one (JSON, or protobuf as client-go's typed clients send it), otherwise from the query parameters, then checked by apimachinery's
//! `ValidateDeleteOptions` (422 `DeleteOptions.meta.k8s.io "" is invalid: …`).

use serde_json::{Value, json};

use crate::context::Query;
use crate::errors::{ApiError, ApiResult};

/// `propagationPolicy`: what happens to the dependents of the deleted object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// The dependents lose their owner reference and stay (`orphan` finalizer).
    Orphan,
    /// The owner goes now; the garbage collector deletes the dependents afterwards.
    Background,
    /// The dependents go first (`foregroundDeletion` finalizer), then the owner.
    Foreground,
}

/// The DeleteOptions of one request.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    pub dry_run: bool,
    /// The deprecated `orphanDependents`, kept apart from `propagation` because it still
    /// decides the 202 answer and the namespace finalizers on its own.
    pub orphan_dependents: Option<bool>,
    pub propagation: Option<Propagation>,
}

/// The raw values before validation: what the client sent, unchecked.
#[derive(Default)]
struct Raw {
    grace_period: Option<i64>,
    uid: Option<String>,
    resource_version: Option<String>,
    dry_run: Vec<String>,
    orphan_dependents: Option<bool>,
    propagation: Option<String>,
}

/// Parses and validates the DeleteOptions of a DELETE: the body if it is not empty, else the
/// query (kube-apiserver never mixes the two).
pub fn parse(query: &Query, body: &[u8]) -> ApiResult<DeleteOptions> {
    let raw = if body.iter().any(|b| !b.is_ascii_whitespace()) {
        from_body(body)?
    } else {
        from_query(query)?
    };
    validate(raw)
}

fn bad(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid DeleteOptions: {message}"))
}

fn from_body(body: &[u8]) -> ApiResult<Raw> {
    let value: Value = if crate::protobuf::is_protobuf(body) {
        crate::protobuf::decode_delete_options(body)?
    } else {
        serde_json::from_slice(body).map_err(bad)?
    };
    if !value.is_object() {
        return Err(bad("the body is not a JSON object"));
    }
    let string_at = |pointer: &str| -> ApiResult<Option<String>> {
        match value.pointer(pointer) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad(format!("{pointer}: expected a string, got {other}"))),
        }
    };
    let grace_period = match value.get("gracePeriodSeconds") {
        None | Some(Value::Null) => None,
        Some(g) => Some(
            g.as_i64()
                .ok_or_else(|| bad(format!("gracePeriodSeconds: expected an integer, got {g}")))?,
        ),
    };
    let orphan_dependents = match value.get("orphanDependents") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(bad(format!(
                "orphanDependents: expected a boolean, got {other}"
            )));
        }
    };
    let dry_run = match value.get("dryRun") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| bad(format!("dryRun: expected strings, got {v}")))
            })
            .collect::<ApiResult<_>>()?,
        Some(other) => return Err(bad(format!("dryRun: expected a list, got {other}"))),
    };
    Ok(Raw {
        grace_period,
        uid: string_at("/preconditions/uid")?,
        resource_version: string_at("/preconditions/resourceVersion")?,
        dry_run,
        orphan_dependents,
        propagation: string_at("/propagationPolicy")?,
    })
}

/// Go's `strconv.ParseBool`, which decodes boolean query parameters.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn from_query(query: &Query) -> ApiResult<Raw> {
    let mut raw = Raw::default();
    for (key, value) in &query.0 {
        match key.as_str() {
            "gracePeriodSeconds" => {
                raw.grace_period = Some(value.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "strconv.ParseInt: parsing {value:?}: invalid syntax"
                    ))
                })?);
            }
            "orphanDependents" => {
                raw.orphan_dependents = Some(parse_bool(value).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "strconv.ParseBool: parsing {value:?}: invalid syntax"
                    ))
                })?);
            }
            "propagationPolicy" => raw.propagation = Some(value.clone()),
            "dryRun" => raw.dry_run.push(value.clone()),
            _ => {}
        }
    }
    Ok(raw)
}

/// apimachinery's `ValidateDeleteOptions`.
fn validate(raw: Raw) -> ApiResult<DeleteOptions> {
    let mut causes: Vec<(&str, String, &str)> = Vec::new();
    if let (Some(_), Some(policy)) = (raw.orphan_dependents, &raw.propagation) {
        causes.push((
            "propagationPolicy",
            format!(
                "Invalid value: {policy:?}: orphanDependents and deletionPropagation cannot be both set"
            ),
            "FieldValueInvalid",
        ));
    }
    let propagation = match raw.propagation.as_deref() {
        None => None,
        Some("Orphan") => Some(Propagation::Orphan),
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some(other) => {
            causes.push((
                "propagationPolicy",
                format!(
                    "Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
                "FieldValueNotSupported",
            ));
            None
        }
    };
    if raw.dry_run.iter().any(|v| v != "All") {
        let values: Vec<String> = raw.dry_run.iter().map(|v| format!("{v:?}")).collect();
        causes.push((
            "dryRun",
            format!(
                "Unsupported value: []string{{{}}}: supported values: \"All\"",
                values.join(", ")
            ),
            "FieldValueNotSupported",
        ));
    }
    if !causes.is_empty() {
        return Err(invalid(&causes));
    }
    Ok(DeleteOptions {
        // Negative values mean 1 second on the delete path (`rest.BeforeDelete`).
        grace_period: raw.grace_period.map(|g| if g < 0 { 1 } else { g }),
        uid: raw.uid,
        resource_version: raw.resource_version,
        dry_run: !raw.dry_run.is_empty(),
        orphan_dependents: raw.orphan_dependents,
        propagation,
    })
}

/// The 422 of `errors.NewInvalid(GroupKind{meta.k8s.io, DeleteOptions}, "", errs)`.
fn invalid(causes: &[(&str, String, &str)]) -> ApiError {
    let pairs: Vec<(String, String)> = causes
        .iter()
        .map(|(field, message, _)| (field.to_string(), message.clone()))
        .collect();
    let mut error = ApiError::invalid("DeleteOptions.meta.k8s.io", "", &pairs);
    let causes: Vec<Value> = causes
        .iter()
        .map(|(field, message, reason)| {
            json!({"reason": reason, "message": message, "field": field})
        })
        .collect();
    error.details = Some(json!({
        "name": "", "group": "meta.k8s.io", "kind": "DeleteOptions", "causes": causes,
    }));
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Query {
        Query::of(pairs)
    }

    #[test]
    fn the_body_wins_over_the_query() {
        let options = parse(
            &query(&[("propagationPolicy", "Orphan"), ("gracePeriodSeconds", "5")]),
            br#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"}"#,
        )
        .unwrap();
        assert_eq!(options.propagation, Some(Propagation::Foreground));
        assert_eq!(options.grace_period, None);
    }

    #[test]
    fn the_query_is_read_without_a_body() {
        let options = parse(
            &query(&[
                ("propagationPolicy", "Orphan"),
                ("gracePeriodSeconds", "-3"),
                ("dryRun", "All"),
            ]),
            b"",
        )
        .unwrap();
        assert_eq!(options.propagation, Some(Propagation::Orphan));
        assert_eq!(options.grace_period, Some(1), "negative means 1 second");
        assert!(options.dry_run);
        let legacy = parse(&query(&[("orphanDependents", "false")]), b"").unwrap();
        assert_eq!(legacy.orphan_dependents, Some(false));
    }

    #[test]
    fn both_policies_are_refused_as_kube_apiserver_refuses_them() {
        let error = parse(
            &Query::default(),
            br#"{"orphanDependents":true,"propagationPolicy":"Foreground"}"#,
        )
        .unwrap_err();
        assert_eq!(error.code, 422);
        assert_eq!(
            error.message,
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"Foreground\": orphanDependents and deletionPropagation cannot be both set"
        );
        let details = error.details.unwrap();
        assert_eq!(details["group"], "meta.k8s.io");
        assert_eq!(details["kind"], "DeleteOptions");
        assert_eq!(details["causes"][0]["reason"], "FieldValueInvalid");
    }

    #[test]
    fn unknown_values_are_not_supported() {
        let error = parse(&Query::default(), br#"{"propagationPolicy":"Later"}"#).unwrap_err();
        assert_eq!(
            error.message,
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Later\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        );
        assert_eq!(
            error.details.unwrap()["causes"][0]["reason"],
            "FieldValueNotSupported"
        );
        let error = parse(&query(&[("dryRun", "Some")]), b"").unwrap_err();
        assert_eq!(
            error.message,
            "DeleteOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Some\"}: supported values: \"All\""
        );
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        for body in [
            &br#"{"propagationPolicy": 3}"#[..],
            br#"{"orphanDependents": "yes"}"#,
            br#"{"gracePeriodSeconds": "soon"}"#,
            b"[1]",
            b"{",
        ] {
            assert_eq!(parse(&Query::default(), body).unwrap_err().code, 400);
        }
    }
}
