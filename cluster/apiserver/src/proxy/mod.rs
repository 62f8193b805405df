//! `pods/proxy` and `services/proxy`: an HTTP request to
//! `/api/v1/namespaces/{ns}/pods/{[scheme:]name[:port]}/proxy/{path}` (or `services/…`) is
//! sent on to the pod, as kube-apiserver's proxy sends it (what `kubectl proxy` users and
//! `kubectl cluster-info`'s links reach). The API server dials the pod's IP from its node's
//! network namespace through [`k8s_labs_node_api::NodeConnection::dial`], as kube-apiserver
//! dials it from the control-plane node: the machine itself never gets a route to a pod.
//!
//! As upstream: the request path after `proxy` is cleaned and keeps its trailing slash, a GET
//! or HEAD of `…/proxy` itself is redirected to `…/proxy/`, the client's credentials are not
//! passed on, and a backend that cannot be reached is a 503 `error trying to reach service:
//! …`. Not done: `https:` backends (refused with a 503 that says so), rewriting links in
//! HTML answers, and upgrades (WebSocket) through the proxy.

mod location;
mod relay;

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Method, StatusCode};
use serde_json::Value;

use crate::context::Shared;
use crate::errors::{ApiError, ApiResult};
use crate::registry;
use location::Backend;

/// A request for a pod's or a Service's `proxy` subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyRequest<'a> {
    namespace: &'a str,
    /// `pods` or `services`.
    plural: &'a str,
    /// `name`, `name:port` or `scheme:name:port`.
    id: &'a str,
}

impl<'a> ProxyRequest<'a> {
    /// The proxy request a path under `/api/v1/` names, if it names one (`rest` is what
    /// follows `/api/v1/`).
    pub fn parse(rest: &[&'a str]) -> Option<ProxyRequest<'a>> {
        match rest {
            [
                "namespaces",
                namespace,
                plural @ ("pods" | "services"),
                id,
                "proxy",
                ..,
            ] => Some(ProxyRequest {
                namespace,
                plural,
                id,
            }),
            _ => None,
        }
    }
}

/// The methods the proxy subresources accept (`ConnectMethods`).
const METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];

/// Sends the request on to its backend and answers with the backend's answer.
pub async fn serve(
    state: &Shared,
    parts: &Parts,
    body: &[u8],
    request: ProxyRequest<'_>,
) -> ApiResult<Response> {
    if !METHODS.contains(&parts.method) {
        return Err(ApiError::method_not_allowed());
    }
    let path = match proxied_path(parts.uri.path()) {
        Some(path) => path,
        None if matches!(parts.method, Method::GET | Method::HEAD) => {
            return Ok(redirect_to_slash(&parts.uri));
        }
        None => "/".to_string(),
    };
    forward(state, parts, body, request, path).await
}

async fn forward(
    state: &Shared,
    parts: &Parts,
    body: &[u8],
    request: ProxyRequest<'_>,
    path: String,
) -> ApiResult<Response> {
    let invalid = || {
        let singular = &request.plural[..request.plural.len() - 1];
        ApiError::bad_request(format!("invalid {singular} request \"{}\"", request.id))
    };
    let (scheme, name, port) = location::split_scheme_name_port(request.id).ok_or_else(invalid)?;
    let backend = match request.plural {
        "pods" => location::pod_backend(&stored(state, "pods", request.namespace, name)?, port)?,
        _ => service_backend(state, request, name, port)?,
    };
    if scheme == "https" {
        return Err(ApiError::service_unavailable(format!(
            "error trying to reach service: this cluster's API server proxies to http only, not \
             https ({}); use http or kubectl port-forward",
            backend.address
        )));
    }
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let stream = dial(state, &backend).await?;
    relay::send(stream, parts, path_and_query, body.to_vec()).await
}

/// The Service's backend: its Endpoints' address for `port`, its pod read from the store.
fn service_backend(
    state: &Shared,
    request: ProxyRequest<'_>,
    name: &str,
    port: &str,
) -> ApiResult<Backend> {
    // Upstream reads the Service only to turn a port number into the port's name.
    let service = match port.parse::<i64>() {
        Ok(_) => stored(state, "services", request.namespace, name)?,
        Err(_) => serde_json::json!({"metadata": {"name": name}}),
    };
    let endpoints = stored(state, "endpoints", request.namespace, name)?;
    let pod_of = |pod: &str| stored(state, "pods", request.namespace, pod).ok();
    location::service_backend(&service, &endpoints, request.id, port, pod_of)
}

/// A stored core object, or the 404 a GET of it gets.
fn stored(state: &Shared, plural: &str, namespace: &str, name: &str) -> ApiResult<Value> {
    let resource = registry::find("", "v1", plural).ok_or_else(ApiError::path_not_found)?;
    state
        .store
        .get(resource.store_key(), namespace, name)
        .ok_or_else(|| ApiError::not_found(&resource.qualified_plural(), name))
}

/// A connection to the backend, made by its node.
async fn dial(state: &Shared, backend: &Backend) -> ApiResult<tokio::net::TcpStream> {
    let unreachable = |why: String| {
        ApiError::service_unavailable(format!("error trying to reach service: {why}"))
    };
    let node = state.nodes.get(&backend.node_name).ok_or_else(|| {
        unreachable(format!(
            "dial tcp {}: no connection to node \"{}\"",
            backend.address, backend.node_name
        ))
    })?;
    node.dial(backend.address)
        .await
        .map_err(|error| unreachable(error.to_string()))
}

/// What follows `/api/v1/namespaces/{ns}/{plural}/{id}/proxy` in the raw path, cleaned as
/// Go's `path.Join` cleans it and keeping a trailing slash; `None` when nothing follows.
fn proxied_path(raw: &str) -> Option<String> {
    let cut = raw.match_indices('/').nth(7).map(|(index, _)| index)?;
    let tail = &raw[cut..];
    let mut kept: Vec<&str> = Vec::new();
    for segment in tail.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            segment => kept.push(segment),
        }
    }
    let mut path = format!("/{}", kept.join("/"));
    if tail.ends_with('/') && !path.ends_with('/') {
        path.push('/');
    }
    Some(path)
}

/// A 301 to the same path with a slash (`proxyRedirectsforRootPath`).
fn redirect_to_slash(uri: &http::Uri) -> Response {
    let location = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    (
        StatusCode::MOVED_PERMANENTLY,
        [(http::header::LOCATION, location)],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pods_and_services_proxy_paths_are_proxy_requests() {
        let rest = [
            "namespaces",
            "default",
            "pods",
            "web-0:80",
            "proxy",
            "index.html",
        ];
        let parsed = ProxyRequest::parse(&rest).unwrap();
        assert_eq!(
            (parsed.namespace, parsed.plural, parsed.id),
            ("default", "pods", "web-0:80")
        );
        let service = ["namespaces", "default", "services", "nginx", "proxy"];
        assert!(ProxyRequest::parse(&service).is_some());
        let deployments = ["namespaces", "default", "deployments", "web", "proxy"];
        assert!(ProxyRequest::parse(&deployments).is_none());
        let node = ["nodes", "n", "proxy"];
        assert!(ProxyRequest::parse(&node).is_none());
        let log = ["namespaces", "default", "pods", "web-0", "log"];
        assert!(ProxyRequest::parse(&log).is_none());
    }

    #[test]
    fn the_proxied_path_is_cleaned_and_keeps_its_trailing_slash() {
        let base = "/api/v1/namespaces/default/services/nginx/proxy";
        let path = |tail: &str| proxied_path(&format!("{base}{tail}"));
        assert_eq!(path(""), None);
        assert_eq!(path("/").as_deref(), Some("/"));
        assert_eq!(path("/index.html").as_deref(), Some("/index.html"));
        assert_eq!(path("/a/b/").as_deref(), Some("/a/b/"));
        assert_eq!(path("/a//./b/../c").as_deref(), Some("/a/c"));
        assert_eq!(path("/../../etc/passwd").as_deref(), Some("/etc/passwd"));
    }

    #[test]
    fn the_bare_proxy_path_redirects_to_the_one_with_a_slash() {
        let uri: http::Uri = "/api/v1/namespaces/default/pods/web-0/proxy?x=1"
            .parse()
            .unwrap();
        let response = redirect_to_slash(&uri);
        assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(
            response.headers()[http::header::LOCATION],
            "/api/v1/namespaces/default/pods/web-0/proxy/?x=1"
        );
    }
}
