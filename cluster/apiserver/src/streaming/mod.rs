//! The pod subresources that are streams rather than objects: `exec`, `attach` (WebSocket,
//! the `v5.channel.k8s.io` / `v4.channel.k8s.io` protocols), `log` (chunked text) and
//! `portforward` (SPDY/3.1, plain or tunneled in a WebSocket).
//!
//! kube-apiserver validates the request against the stored pod (container name, node) and
//! then proxies to the kubelet, which checks the container's state. Here the API server and
//! the node agent share a process, so this module does both checks and calls the node through
//! [`k8s_labs_node_api::NodeConnection`]. The error texts are the real server's and
//! kubelet's, because users and tools match on them.

mod exec;
mod forward;
mod log;
mod portforward;
pub mod spdy;

pub use exec::serve_exec;
pub use log::serve_log;
pub use portforward::serve_port_forward;

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use k8s_labs_node_api::{NodeConnection, NodeConnections, NodeError};
use serde_json::Value;

use crate::errors::ApiError;

/// A failure answered before any stream starts, as a Kubernetes `Status` object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StatusError {
    code: u16,
    reason: &'static str,
    message: String,
}

impl StatusError {
    fn bad_request(message: impl Into<String>) -> Self {
        StatusError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        StatusError {
            code: 422,
            reason: "Invalid",
            message: message.into(),
        }
    }

    fn internal(message: impl Into<String>) -> Self {
        StatusError {
            code: 500,
            reason: "InternalError",
            message: format!("Internal error occurred: {}", message.into()),
        }
    }

    fn from_node(error: NodeError) -> Self {
        match error {
            NodeError::NotFound(message) => StatusError {
                code: 404,
                reason: "NotFound",
                message,
            },
            NodeError::BadRequest(message) => Self::bad_request(message),
            NodeError::Internal(message) => Self::internal(message),
        }
    }
}

/// The same `Status` as every other API error: one place shapes it.
impl From<StatusError> for ApiError {
    fn from(error: StatusError) -> Self {
        ApiError {
            code: error.code,
            reason: error.reason,
            message: error.message,
            details: None,
        }
    }
}

impl IntoResponse for StatusError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

/// The values of one query parameter, in order (`command` repeats).
fn query_values<'a>(query: &'a [(String, String)], key: &'a str) -> impl Iterator<Item = &'a str> {
    query
        .iter()
        .filter(move |(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A boolean query parameter, parsed like Go's `strconv.ParseBool` (what the real server's
/// parameter codec uses): `1`, `t`, `true`, `TRUE`, `True`, and the `0`/`f`/`false` forms.
fn query_bool(query: &[(String, String)], key: &str, default: bool) -> Result<bool, StatusError> {
    match query_value(query, key) {
        None => Ok(default),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(StatusError::bad_request(format!(
            "strconv.ParseBool: parsing \"{other}\": invalid syntax"
        ))),
    }
}

/// An integer query parameter (`tailLines`, `limitBytes`, `sinceSeconds`).
fn query_i64(query: &[(String, String)], key: &str) -> Result<Option<i64>, StatusError> {
    match query_value(query, key) {
        None => Ok(None),
        Some(text) => text.parse::<i64>().map(Some).map_err(|_| {
            StatusError::bad_request(format!(
                "strconv.ParseInt: parsing \"{text}\": invalid syntax"
            ))
        }),
    }
}

/// The pod a stream is for, and the container it targets after defaulting.
struct PodTarget<'a> {
    pod: &'a Value,
    namespace: String,
    name: String,
    container: String,
}

impl<'a> PodTarget<'a> {
    /// Chooses the container like kube-apiserver's `validateContainer`: the named one must be
    /// one of the pod's (init, regular or ephemeral) containers; without a name, a pod with one
    /// container means that one, otherwise the client must choose (kubectl chooses for the user
    /// from the `kubectl.kubernetes.io/default-container` annotation or the first container).
    fn resolve(pod: &'a Value, container: Option<&str>) -> Result<Self, StatusError> {
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let namespace = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let regular = container_names(pod, "containers");
        let container = match container.filter(|c| !c.is_empty()) {
            Some(requested) => {
                let known = ["initContainers", "containers", "ephemeralContainers"]
                    .iter()
                    .any(|list| container_names(pod, list).contains(&requested));
                if !known {
                    return Err(StatusError::bad_request(format!(
                        "container {requested} is not valid for pod {name}"
                    )));
                }
                requested.to_string()
            }
            None => match regular.as_slice() {
                [only] => only.to_string(),
                [] => {
                    return Err(StatusError::bad_request(format!(
                        "a container name must be specified for pod {name}"
                    )));
                }
                _ => {
                    let all: Vec<&str> = ["initContainers", "containers", "ephemeralContainers"]
                        .iter()
                        .flat_map(|list| container_names(pod, list))
                        .collect();
                    return Err(StatusError::bad_request(format!(
                        "a container name must be specified for pod {name}, choose one of: [{}]",
                        all.join(" ")
                    )));
                }
            },
        };
        Ok(PodTarget {
            pod,
            namespace,
            name,
            container,
        })
    }

    /// `spec.nodeName`, empty when the pod is not scheduled.
    fn node_name(&self) -> &str {
        self.pod["spec"]["nodeName"].as_str().unwrap_or_default()
    }

    /// The node agent serving this pod's node.
    fn node(&self, nodes: &NodeConnections) -> Result<Arc<dyn NodeConnection>, StatusError> {
        node_connection(nodes, self.node_name())
    }

    /// The container's entry in `status.containerStatuses` (or the init/ephemeral lists).
    fn container_status(&self) -> Option<&'a Value> {
        let status = &self.pod["status"];
        [
            "containerStatuses",
            "initContainerStatuses",
            "ephemeralContainerStatuses",
        ]
        .iter()
        .filter_map(|list| status[*list].as_array())
        .flatten()
        .find(|entry| entry["name"].as_str() == Some(self.container.as_str()))
    }
}

/// The node agent of node `node_name`.
fn node_connection(
    nodes: &NodeConnections,
    node_name: &str,
) -> Result<Arc<dyn NodeConnection>, StatusError> {
    nodes.get(node_name).ok_or_else(|| {
        StatusError::internal(format!(
            "no connection to node \"{node_name}\": its node agent is not registered with the API server"
        ))
    })
}

fn container_names<'a>(pod: &'a Value, list: &str) -> Vec<&'a str> {
    pod["spec"][list]
        .as_array()
        .map(|containers| {
            containers
                .iter()
                .filter_map(|c| c["name"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str]) -> Value {
        let containers: Vec<Value> = containers.iter().map(|c| json!({"name": c})).collect();
        json!({
            "metadata": {"name": "web-0", "namespace": "default"},
            "spec": {"containers": containers, "nodeName": "node-1"},
        })
    }

    #[test]
    fn the_only_container_is_the_default() {
        let pod = pod(&["nginx"]);
        let target = PodTarget::resolve(&pod, None).unwrap();
        assert_eq!(target.container, "nginx");
        assert_eq!(target.namespace, "default");
        assert_eq!(target.node_name(), "node-1");
    }

    #[test]
    fn an_unknown_container_is_rejected_with_the_real_message() {
        let pod = pod(&["nginx"]);
        let error = PodTarget::resolve(&pod, Some("x")).err().unwrap();
        assert_eq!(
            error,
            StatusError::bad_request("container x is not valid for pod web-0")
        );
    }

    #[test]
    fn several_containers_need_a_name() {
        let pod = pod(&["a", "b"]);
        let error = PodTarget::resolve(&pod, None).err().unwrap();
        assert_eq!(
            error.message,
            "a container name must be specified for pod web-0, choose one of: [a b]"
        );
        assert_eq!(PodTarget::resolve(&pod, Some("b")).unwrap().container, "b");
    }

    #[test]
    fn booleans_parse_like_go() {
        let query = vec![
            ("stdin".to_string(), "1".to_string()),
            ("tty".into(), "false".into()),
        ];
        assert!(query_bool(&query, "stdin", false).unwrap());
        assert!(!query_bool(&query, "tty", true).unwrap());
        assert!(query_bool(&query, "stdout", true).unwrap());
        let bad = vec![("stdin".to_string(), "yes".to_string())];
        assert_eq!(query_bool(&bad, "stdin", false).unwrap_err().code, 400);
    }

    #[test]
    fn status_json_has_the_kubernetes_shape() {
        let json = ApiError::from(StatusError::bad_request("nope")).to_status();
        assert_eq!(
            json,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                   "message":"nope","reason":"BadRequest","code":400})
        );
    }
}
