//! Errors answered as `Status` objects, exactly as kube-apiserver shapes them, because clients
//! (kube-rs, kubectl) decode `reason`, `code` and `details` to decide what to do next.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

/// An API error: the HTTP code plus the fields of the `Status` object sent back.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status code, also the Status object's `code`.
    pub code: u16,
    /// The Status object's `reason` (`NotFound`, `Invalid`, …); empty for none.
    pub reason: &'static str,
    /// The Status object's `message`, the text kubectl prints.
    pub message: String,
    /// The Status object's `details` (name, kind, causes), when there are any.
    pub details: Option<Value>,
}

/// The result type of every handler step.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, name: &str, kind: &str) -> Self {
        self.details = Some(json!({ "name": name, "kind": kind }));
        self
    }

    /// 404, e.g. `pods "x" not found`; `resource` is the plural (with group for non-core).
    pub(crate) fn not_found(resource: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
            .with_details(name, resource)
    }

    /// 409 when an object of that name already exists.
    pub(crate) fn already_exists(resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{resource} \"{name}\" already exists"),
        )
        .with_details(name, resource)
    }

    /// 409 for a stale `metadata.resourceVersion` (optimistic concurrency).
    pub(crate) fn conflict(resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        )
        .with_details(name, resource)
    }

    /// 422: the object fails validation; `causes` are `(field, message)` pairs, the message
    /// being what apimachinery's `field.Error.ErrorBody` prints (`Invalid value: "x": ...`).
    pub(crate) fn invalid(kind: &str, name: &str, causes: &[(String, String)]) -> Self {
        Self::invalid_in("", kind, name, causes)
    }

    /// 422 as apimachinery's `NewInvalid` for a kind of `group`: the message names the
    /// qualified kind (`StatefulSet.apps "web" is invalid: ...`), repeats no cause twice (as
    /// `ErrorList.ToAggregate`), and every cause keeps its type (`FieldValueRequired`, ...),
    /// read from the message's first words.
    pub(crate) fn invalid_in(
        group: &str,
        kind: &str,
        name: &str,
        causes: &[(String, String)],
    ) -> Self {
        let mut text: Vec<String> = Vec::new();
        for (f, m) in causes {
            let line = format!("{f}: {m}");
            if !text.contains(&line) {
                text.push(line);
            }
        }
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let message = match text.len() {
            0 => format!("{qualified} \"{name}\" is invalid"),
            1 => format!("{qualified} \"{name}\" is invalid: {}", text[0]),
            _ => format!("{qualified} \"{name}\" is invalid: [{}]", text.join(", ")),
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|(f, m)| {
                let mut cause = json!({"reason": cause_type(m), "message": m});
                if !f.is_empty() {
                    cause["field"] = json!(f);
                }
                cause
            })
            .collect();
        let mut details = json!({ "name": name, "kind": kind, "causes": causes });
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        ApiError {
            code: 422,
            reason: "Invalid",
            message,
            details: Some(details),
        }
    }

    /// 413, as apimachinery's `NewRequestEntityTooLargeError` for a body over `limit` bytes.
    pub(crate) fn request_entity_too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// What kube-apiserver answers when etcd refuses a write over its `--max-request-bytes`:
    /// the etcd client's `rpctypes.ErrRequestTooLarge` reaches the handler unconverted
    /// (etcd3's store returns the Txn error as is), so `ErrorToAPIStatus` makes it a 500
    /// with an empty reason and the error's text (kubernetes/kubernetes#112152).
    pub(crate) fn etcd_request_too_large() -> Self {
        Self::unconverted("etcdserver: request is too large")
    }

    /// An error kube-apiserver does not convert to a Status before answering it:
    /// `ErrorToAPIStatus` makes it a 500 with an empty reason and the error's text.
    pub(crate) fn unconverted(message: impl Into<String>) -> Self {
        Self::new(500, "", message)
    }

    /// 504 as storage's `NewTooLargeResourceVersionError`: a read at a resourceVersion the
    /// store has not reached (the watch cache waited for it in vain); retry in 1 s.
    pub(crate) fn too_large_resource_version(requested: u64, current: u64) -> Self {
        let mut error = Self::new(
            504,
            "Timeout",
            format!("Timeout: Too large resource version: {requested}, current: {current}"),
        );
        error.details = Some(json!({
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        }));
        error
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub(crate) fn forbidden(resource: &str, name: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            403,
            "Forbidden",
            format!("{resource} \"{name}\" is forbidden: {message}"),
        )
        .with_details(name, resource)
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 410 for a watch or list from a resourceVersion older than the kept history.
    pub(crate) fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 404 for a path that names no resource, as the real server's API handlers answer it
    /// (`NewGenericServerResponse`): reason NotFound and empty `details`, which kubectl reads
    /// (`kubectl debug` tells a missing subresource from a missing pod by the empty name).
    pub(crate) fn path_not_found() -> Self {
        let mut error = Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        error.details = Some(json!({}));
        error
    }

    /// 503, e.g. a proxy request whose Service has no endpoints or whose backend is not
    /// reachable.
    pub(crate) fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    pub(crate) fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})"
            ),
        )
    }

    /// 415 with a message of its own (what is accepted and what to do instead).
    pub(crate) fn unsupported_media_type_with(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The `Status` object for this error; an empty reason is left out, as Go's `omitempty`
    /// leaves it out of kube-apiserver's.
    pub(crate) fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        });
        if !self.reason.is_empty() {
            status["reason"] = json!(self.reason);
        }
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &self.to_status())
    }
}

/// The `CauseType` of a field error, from the words `ErrorType.String` starts its message
/// with (apimachinery's `field.ErrorType`).
fn cause_type(message: &str) -> &'static str {
    const TYPES: &[(&str, &str)] = &[
        ("Required value", "FieldValueRequired"),
        ("Duplicate value", "FieldValueDuplicate"),
        ("Unsupported value", "FieldValueNotSupported"),
        ("Forbidden", "FieldValueForbidden"),
        ("Too long", "FieldValueTooLong"),
        ("Too many", "FieldValueTooMany"),
        ("Not found", "FieldValueNotFound"),
        ("Internal error", "InternalError"),
    ];
    TYPES
        .iter()
        .find(|(words, _)| message.starts_with(words))
        .map_or("FieldValueInvalid", |(_, cause)| cause)
}

/// A JSON body with the given status code and `Content-Type: application/json`.
pub fn json_response(code: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        code,
        [(http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}
