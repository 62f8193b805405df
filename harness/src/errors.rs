//! Errors from the cluster turned into one line a person can act on: a refused request names
//! the verb and resource that was refused and what to check, instead of a bare status code.

use kube::Error;

/// `error` from `verb`ing `resource` (e.g. "create", "namespaces"), explained.
pub fn explain_api_error(error: Error, verb: &str, resource: &str) -> anyhow::Error {
    match &error {
        Error::Api(status) if status.code == 401 => anyhow::anyhow!(
            "the cluster did not accept our credentials (401 Unauthorized) to {verb} {resource}; \
             check the user and token or certificate of the kubeconfig's context"
        ),
        Error::Api(status) if status.code == 403 => anyhow::anyhow!(
            "the cluster forbids us to {verb} {resource} (403 Forbidden: {}); the kubeconfig's \
             user needs RBAC permission for it",
            status.message
        ),
        Error::HyperError(_) | Error::Service(_) => anyhow::anyhow!(
            "cannot reach the cluster to {verb} {resource}: {error}; is it running, and is the \
             kubeconfig's server URL right?"
        ),
        _ => anyhow::Error::new(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn status(code: u16, message: &str) -> Error {
        Error::Api(Box::new(
            Status::failure(message, "Forbidden").with_code(code),
        ))
    }

    #[test]
    fn refusals_name_the_verb_and_resource() {
        let forbidden = explain_api_error(
            status(
                403,
                "namespaces is forbidden: User \"student\" cannot create",
            ),
            "create",
            "namespaces",
        )
        .to_string();
        assert!(
            forbidden.contains("forbids us to create namespaces"),
            "{forbidden}"
        );
        assert!(forbidden.contains("User \"student\""), "{forbidden}");
        let unauthorized =
            explain_api_error(status(401, "Unauthorized"), "list", "pods").to_string();
        assert!(
            unauthorized.contains("401 Unauthorized) to list pods"),
            "{unauthorized}"
        );
        let other = explain_api_error(status(409, "exists"), "create", "pods").to_string();
        assert!(!other.contains("RBAC"), "{other}");
    }
}
