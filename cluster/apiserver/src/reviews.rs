//! `authorization.k8s.io/v1` SelfSubjectAccessReview and SelfSubjectRulesReview: create-only
//! resources that are answered, never stored (kube-apiserver's
//! pkg/registry/authorization/selfsubject*review). The one user of this cluster is its
//! admin, whom upstream's authorizers allow everything; so `kubectl auth can-i` always
//! answers "yes", and `auth can-i --list` lists the rules RBAC resolves for a kind
//! cluster's admin.

use axum::response::Response;
use http::HeaderMap;
use serde_json::{Value, json};

use crate::context::{Query, Target};
use crate::errors::{ApiError, ApiResult};
use crate::handlers::{created_response, decode_for_create};

/// The group of the review resources, whose only verb is "create".
pub const GROUP: &str = "authorization.k8s.io";

/// `POST` of a review: the review with its status filled in, as 201 Created.
pub fn create(
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    let (object, warnings) = decode_for_create(target, query, headers, body)?;
    let answered = match target.resource.kind {
        "SelfSubjectAccessReview" => access_review(object)?,
        _ => rules_review(&object)?,
    };
    Ok(created_response(&answered, &warnings))
}

/// The review as sent, with `status.allowed`: upstream's privileged-group authorizer allows
/// the admin everything, with no reason given.
fn access_review(mut review: Value) -> ApiResult<Value> {
    let spec = &review["spec"];
    let has = |field: &str| spec.get(field).is_some_and(|v| !v.is_null());
    let cause = match (has("resourceAttributes"), has("nonResourceAttributes")) {
        (true, true) => Some((
            "spec.nonResourceAttributes",
            format!(
                "Invalid value: {}: cannot be specified in combination with resourceAttributes",
                go_value(&spec["nonResourceAttributes"])
            ),
        )),
        (false, false) => Some((
            "spec.resourceAttributes",
            "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes \
             must be specified"
                .to_string(),
        )),
        _ => None,
    };
    if let Some((field, message)) = cause {
        let kind = "SelfSubjectAccessReview";
        return Err(ApiError::invalid_in(
            GROUP,
            kind,
            "",
            &[(field.to_string(), message)],
        ));
    }
    review["metadata"] = json!({ "creationTimestamp": null });
    review["status"] = json!({ "allowed": true });
    Ok(review)
}

/// A new review holding only the status (upstream answers a fresh object): the rules of
/// the RBAC roles a kind cluster's admin has (cluster-admin, system:basic-user,
/// system:discovery, system:public-info-viewer), in the order RBAC resolves them.
fn rules_review(review: &Value) -> ApiResult<Value> {
    let namespace = review["spec"]["namespace"].as_str().unwrap_or_default();
    if namespace.is_empty() {
        return Err(ApiError::bad_request("no namespace on request"));
    }
    // The roles' rules as upstream's bootstrap policy writes them (plugin/pkg/auth/
    // authorizer/rbac/bootstrappolicy/policy.go), bindings visited by name.
    let resource_rules = json!([
        { "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] },
        {
            "verbs": ["create"],
            "apiGroups": [GROUP],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        },
        {
            "verbs": ["create"],
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["selfsubjectreviews"],
        },
    ]);
    let public_info = ["/livez", "/readyz", "/healthz", "/version", "/version/"];
    let discovery = [
        &public_info[..],
        &[
            "/openapi",
            "/openapi/*",
            "/api",
            "/api/*",
            "/apis",
            "/apis/*",
        ],
    ]
    .concat();
    let non_resource_rules = json!([
        { "verbs": ["*"], "nonResourceURLs": ["*"] },
        { "verbs": ["get"], "nonResourceURLs": discovery },
        { "verbs": ["get"], "nonResourceURLs": public_info },
    ]);
    Ok(json!({
        "kind": "SelfSubjectRulesReview",
        "apiVersion": format!("{GROUP}/v1"),
        "metadata": { "creationTimestamp": null },
        "spec": {},
        "status": {
            "resourceRules": resource_rules,
            "nonResourceRules": non_resource_rules,
            "incomplete": false,
        },
    }))
}

/// How apimachinery's `field.Invalid` prints a struct value: Go's `%#v`-like JSON.
fn go_value(value: &Value) -> String {
    format!("{:?}", value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_review_is_allowed_and_needs_exactly_one_kind_of_attributes() {
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": { "resourceAttributes": { "verb": "create", "resource": "pods" } },
        });
        let answered = access_review(review).unwrap();
        assert_eq!(answered["status"], json!({ "allowed": true }));
        assert_eq!(answered["spec"]["resourceAttributes"]["verb"], "create");
        let neither = json!({ "spec": {} });
        let error = access_review(neither).unwrap_err().to_status();
        assert_eq!(error["code"], 422);
        assert_eq!(
            error["message"],
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: \
             spec.resourceAttributes: Invalid value: \"null\": exactly one of \
             nonResourceAttributes or resourceAttributes must be specified"
        );
    }

    #[test]
    fn a_rules_review_needs_a_namespace_and_lists_everything() {
        let error = rules_review(&json!({ "spec": {} }))
            .unwrap_err()
            .to_status();
        assert_eq!(error["message"], "no namespace on request");
        let answered = rules_review(&json!({ "spec": { "namespace": "default" } })).unwrap();
        let rules = &answered["status"]["resourceRules"];
        assert_eq!(
            rules[0],
            json!({ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] })
        );
        let urls = &answered["status"]["nonResourceRules"][0];
        assert_eq!(urls, &json!({ "verbs": ["*"], "nonResourceURLs": ["*"] }));
    }
}
