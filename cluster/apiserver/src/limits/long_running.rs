//! Which requests are long-running: kube-apiserver's `BasicLongRunningRequestCheck` with the
//! verbs `watch` and `proxy` and the subresources `attach`, `exec`, `proxy`, `log` and
//! `portforward`. They are neither counted against the in-flight limits nor timed out.

use http::{Method, Uri};

/// The subresources kube-apiserver treats as long-running.
const LONG_RUNNING_SUBRESOURCES: [&str; 5] = ["attach", "exec", "proxy", "log", "portforward"];

/// Whether a request is long-running, read from its path as `RequestInfoFactory` reads it.
pub fn is_long_running(method: &Method, uri: &Uri) -> bool {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return false,
    };
    // `/watch/…` and `/proxy/…` name the verb whatever the method.
    if let ["watch" | "proxy", _, ..] = rest {
        return true;
    }
    let parts = match rest {
        // `namespaces/{ns}/status` and `…/finalize` are the namespace's own subresources.
        ["namespaces", _, sub, ..] if !matches!(*sub, "status" | "finalize") => &rest[2..],
        _ => rest,
    };
    if parts
        .get(2)
        .is_some_and(|sub| LONG_RUNNING_SUBRESOURCES.contains(sub))
    {
        return true;
    }
    // A watch by query: this server streams one for a collection or a named object when
    // `watch` is "true" or "1" (routes), so exactly those are exempt.
    *method == Method::GET && parts.len() <= 2 && watch_requested(uri)
}

fn watch_requested(uri: &Uri) -> bool {
    uri.query().is_some_and(|query| {
        query.split('&').any(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            key == "watch" && matches!(value, "true" | "1")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long(method: Method, uri: &str) -> bool {
        is_long_running(&method, &uri.parse().unwrap())
    }

    #[test]
    fn watches_and_streams_are_long_running() {
        assert!(long(Method::GET, "/api/v1/pods?watch=true"));
        assert!(long(Method::GET, "/api/v1/namespaces/a/pods?watch=1&x=y"));
        assert!(long(Method::GET, "/api/v1/watch/namespaces/a/pods"));
        assert!(long(
            Method::GET,
            "/apis/apps/v1/namespaces/a/deployments/d?watch=true"
        ));
        assert!(long(Method::GET, "/api/v1/namespaces/a/pods/p/log"));
        assert!(long(Method::POST, "/api/v1/namespaces/a/pods/p/exec"));
        assert!(long(Method::GET, "/api/v1/namespaces/a/pods/p/attach"));
        assert!(long(
            Method::POST,
            "/api/v1/namespaces/a/pods/p/portforward"
        ));
        assert!(long(Method::GET, "/api/v1/nodes/n/proxy"));
    }

    #[test]
    fn everything_else_is_not() {
        assert!(!long(Method::GET, "/api/v1/pods"));
        assert!(!long(Method::GET, "/api/v1/pods?watch=false"));
        assert!(!long(Method::POST, "/api/v1/namespaces/a/pods?watch=true"));
        assert!(!long(Method::PUT, "/api/v1/namespaces/a/status"));
        assert!(!long(Method::GET, "/api/v1/namespaces/a/pods/p/status"));
        assert!(!long(Method::GET, "/version"));
        assert!(!long(Method::GET, "/healthz?watch=true"));
        assert!(!long(Method::GET, "/api/v1/watch"));
    }
}
