//! Request routing: bearer-token authentication, then the path is parsed into discovery
//! documents or a resource target, and the method picks the verb — one generic dispatcher
//! for every resource in the registry, as kube-apiserver's generic REST storage does.

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode, request::Parts};

use crate::context::{Query, Shared, Target};
use crate::discovery;
use crate::errors::{ApiError, ApiResult};
use crate::{delete, handlers, scale, watch};
use crate::{openapi, registry};

/// The largest request body accepted: kube-apiserver's `MaxRequestBodyBytes` (3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

pub fn router(state: Shared) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

fn authorized(state: &Shared, parts: &Parts) -> bool {
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    header
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|token| token.trim() == state.token)
}

async fn dispatch(State(state): State<Shared>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().trim_end_matches('/').to_string();
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
    {
        return (
            StatusCode::OK,
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "ok",
        )
            .into_response();
    }
    if !authorized(&state, &parts) {
        return ApiError::unauthorized().into_response();
    }
    // After authentication, as upstream's filter chain counts requests; held until answered.
    let _slot = match state.in_flight.admit(&parts) {
        Ok(slot) => slot,
        Err(full) => return full.into_response(),
    };
    let query = Query(
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default(),
    );
    let body = if matches!(
        parts.method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        match read_body(body).await {
            Ok(bytes) => bytes,
            Err(error) => {
                // The rest of the body is left unread, so the connection cannot carry another
                // request: say so, as Go's net/http does (`Connection: close` when a handler
                // leaves over 256 KiB of the body), or a client reusing it would find it
                // closed under its next request.
                let mut response = error.into_response();
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
                return response;
            }
        }
    } else {
        bytes::Bytes::new()
    };
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = parts.method.clone();
    let response = match route(&state, &mut parts, &segments, &query, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    response
}

/// The request body, refused past [`MAX_BODY`] as kube-apiserver's `limitedReadBody` refuses
/// it (413 `Request entity too large: limit is 3145728`), without reading more of it.
async fn read_body(body: axum::body::Body) -> Result<bytes::Bytes, ApiError> {
    use futures::StreamExt as _;
    let mut chunks = body.into_data_stream();
    let mut collected = bytes::BytesMut::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
        if collected.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::request_entity_too_large(MAX_BODY));
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(collected.freeze())
}

async fn route(
    state: &Shared,
    parts: &mut Parts,
    segments: &[&str],
    query: &Query,
    body: &[u8],
) -> ApiResult<Response> {
    let get = parts.method == Method::GET;
    match segments {
        ["version"] if get => Ok(discovery::legacy(&discovery::version(
            &state.kubernetes_version,
        ))),
        ["api"] if get => Ok(match discovery::wants_aggregated(&parts.headers) {
            Some(v) => discovery::aggregated(true, v),
            None => discovery::legacy(&discovery::api_versions(state)),
        }),
        ["apis"] if get => Ok(match discovery::wants_aggregated(&parts.headers) {
            Some(v) => discovery::aggregated(false, v),
            None => discovery::legacy(&discovery::api_group_list()),
        }),
        ["openapi", "v2"] if get => Ok((
            StatusCode::OK,
            [(http::header::CONTENT_TYPE, crate::openapi_v2::CONTENT_TYPE)],
            crate::openapi_v2::document(&state.kubernetes_version),
        )
            .into_response()),
        ["openapi", "v3"] if get => Ok(discovery::legacy(&openapi::index())),
        ["openapi", "v3", rest @ ..] if get => openapi::group_version_document(&rest.join("/"))
            .map(discovery::legacy)
            .ok_or_else(ApiError::path_not_found),
        ["api", "v1"] if get => discovery::resource_list("", "v1")
            .map(|d| discovery::legacy(&d))
            .ok_or_else(ApiError::path_not_found),
        ["apis", group] if get => discovery::api_group(group)
            .map(|d| discovery::legacy(&d))
            .ok_or_else(ApiError::path_not_found),
        ["apis", group, version] if get => discovery::resource_list(group, version)
            .map(|d| discovery::legacy(&d))
            .ok_or_else(ApiError::path_not_found),
        ["api", "v1", rest @ ..] => match crate::proxy::ProxyRequest::parse(rest) {
            Some(request) => crate::proxy::serve(state, parts, body, request).await,
            None => resource_request(state, parts, "", "v1", rest, query, body).await,
        },
        ["apis", group, version, rest @ ..] => {
            resource_request(state, parts, group, version, rest, query, body).await
        }
        _ => Err(ApiError::path_not_found()),
    }
}

/// Parses `[watch/][namespaces/{ns}/]{plural}[/{name}[/{sub}]]` against the registry.
fn parse_target(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let (watch_path, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let target = |plural: &str, namespace: Option<&str>, tail: &[&str]| -> Option<Target> {
        let resource = registry::find(group, version, plural)?;
        if resource.namespaced != namespace.is_some()
            && !(resource.namespaced && namespace.is_none() && tail.is_empty())
        {
            return None;
        }
        let (name, subresource) = match tail {
            [] => (None, None),
            [name] => (Some(name.to_string()), None),
            [name, sub] if resource.has_subresource(sub) => {
                (Some(name.to_string()), Some(sub.to_string()))
            }
            _ => return None,
        };
        Some(Target {
            resource,
            namespace: namespace.map(String::from),
            name,
            subresource,
            watch_path,
        })
    };
    match rest {
        ["namespaces", ns, plural, tail @ ..]
            if registry::find(group, version, plural).is_some_and(|r| r.namespaced) =>
        {
            target(plural, Some(ns), tail)
        }
        [plural, tail @ ..] => target(plural, None, tail),
        [] => None,
    }
}

async fn resource_request(
    state: &Shared,
    parts: &mut Parts,
    group: &str,
    version: &str,
    rest: &[&str],
    query: &Query,
    body: &[u8],
) -> ApiResult<Response> {
    let target = parse_target(group, version, rest).ok_or_else(ApiError::path_not_found)?;
    let method = parts.method.clone();
    let headers = parts.headers.clone();
    if target.resource.group == crate::reviews::GROUP {
        return match (target.name.is_some(), method) {
            (false, Method::POST) => crate::reviews::create(&target, query, &headers, body),
            _ => Err(ApiError::method_not_allowed()),
        };
    }
    if target.resource.group == crate::metrics::GROUP {
        return crate::metrics::serve(state, &target, query, &headers, &method);
    }
    let sub = target.subresource.as_deref();
    match (sub, target.name.is_some(), method) {
        (None, false, Method::GET) if target.watch_path || query.flag("watch") => {
            watch::watch(state, &target, query, &headers)
        }
        (None, false, Method::GET) => handlers::list(state, &target, query, &headers),
        (None, false, Method::POST) => handlers::create(state, &target, query, &headers, body),
        (None, false, Method::DELETE) => delete::delete_collection(state, &target, query, body),
        (None, true, Method::GET) if target.watch_path || query.flag("watch") => {
            watch::watch(state, &target, query, &headers)
        }
        (None | Some("status"), true, Method::GET) => {
            handlers::get_response(state, &target, query, &headers)
        }
        (None | Some("status") | Some("finalize"), true, Method::PUT) => {
            handlers::update(state, &target, query, &headers, body)
        }
        (None | Some("status"), true, Method::PATCH) => {
            handlers::patch(state, &target, query, &headers, body)
        }
        (None, true, Method::DELETE) => delete::delete(state, &target, query, body),
        (Some("scale"), true, Method::GET) => scale::get(state, &target),
        (Some("scale"), true, Method::PUT) => scale::update(state, &target, query, &headers, body),
        (Some("scale"), true, Method::PATCH) => scale::patch(state, &target, query, &headers, body),
        (Some("binding"), true, Method::POST) => handlers::bind(state, &target, body),
        (Some("eviction"), true, Method::POST) => {
            crate::eviction::create(state, &target, query, body)
        }
        (Some(kind @ ("exec" | "attach")), true, Method::GET | Method::POST) => {
            let pod = handlers::get(state, &target)?;
            let ws = WebSocketUpgrade::from_request_parts(parts, state)
                .await
                .ok();
            Ok(crate::streaming::serve_exec(
                &state.nodes,
                &pod,
                &query.0,
                kind == "attach",
                ws,
                &headers,
            )
            .await)
        }
        (Some("portforward"), true, Method::GET | Method::POST) => {
            let pod = handlers::get(state, &target)?;
            // A WebSocket request hands over the connection's upgrade; a SPDY one keeps it.
            let ws = WebSocketUpgrade::from_request_parts(parts, state)
                .await
                .ok();
            let spdy = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
            Ok(crate::streaming::serve_port_forward(&state.nodes, &pod, ws, spdy, &headers).await)
        }
        (Some("log"), true, Method::GET) => {
            let pod = handlers::get(state, &target)?;
            Ok(crate::streaming::serve_log(&state.nodes, &pod, &query.0).await)
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}
