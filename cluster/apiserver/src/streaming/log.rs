//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: the container's log as `text/plain`,
//! streamed as it arrives (with `follow`, until the container's log ends or the client goes).
//!
//! The node serves the bytes (with `tailLines`, `timestamps`, `previous`, `follow`); this
//! module adds what kube-apiserver and the kubelet decide from the pod itself — the
//! container, the "waiting to start" answers — and `sinceSeconds` / `sinceTime` /
//! `limitBytes`, which it applies to the stream it gets.

use std::str::FromStr;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use jiff::Timestamp;
use k8s_labs_node_api::{LogRequest, NodeConnections};
use serde_json::Value;

use super::{PodTarget, StatusError, query_bool, query_i64, query_value};

/// GET .../pods/{name}/log
pub async fn serve_log(
    nodes: &NodeConnections,
    pod: &Value,
    query: &[(String, String)],
) -> Response {
    match open_log(nodes, pod, query).await {
        Ok(body) => (
            [(http::header::CONTENT_TYPE, "text/plain")],
            Body::from_stream(body),
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

/// `PodLogOptions`, validated as kube-apiserver does.
struct LogOptions {
    follow: bool,
    previous: bool,
    timestamps: bool,
    tail_lines: Option<i64>,
    limit_bytes: Option<i64>,
    since: Option<Timestamp>,
}

impl LogOptions {
    fn parse(query: &[(String, String)], pod_name: &str) -> Result<Self, StatusError> {
        let tail_lines = query_i64(query, "tailLines")?;
        let limit_bytes = query_i64(query, "limitBytes")?;
        let since_seconds = query_i64(query, "sinceSeconds")?;
        let since_time = query_value(query, "sinceTime");
        let mut problems = Vec::new();
        if let Some(n) = tail_lines.filter(|n| *n < 0) {
            problems.push(format!(
                "tailLines: Invalid value: {n}: must be greater than or equal to 0"
            ));
        }
        if let Some(n) = limit_bytes.filter(|n| *n < 1) {
            problems.push(format!(
                "limitBytes: Invalid value: {n}: must be greater than 0"
            ));
        }
        let since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => {
                problems.push(
                    "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
                        .to_string(),
                );
                None
            }
            (Some(seconds), None) if seconds < 1 => {
                problems.push(format!(
                    "sinceSeconds: Invalid value: {seconds}: must be greater than 0"
                ));
                None
            }
            (Some(seconds), None) => Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_secs(seconds))
                .ok(),
            (None, Some(text)) => Some(Timestamp::from_str(text).map_err(|_| {
                StatusError::bad_request(format!(
                    "parsing time \"{text}\" as \"2006-01-02T15:04:05Z07:00\": cannot parse"
                ))
            })?),
            (None, None) => None,
        };
        match problems.as_slice() {
            [] => {}
            [one] => {
                return Err(StatusError::invalid(format!(
                    "PodLogOptions \"{pod_name}\" is invalid: {one}"
                )));
            }
            many => {
                return Err(StatusError::invalid(format!(
                    "PodLogOptions \"{pod_name}\" is invalid: [{}]",
                    many.join(", ")
                )));
            }
        }
        Ok(LogOptions {
            follow: query_bool(query, "follow", false)?,
            previous: query_bool(query, "previous", false)?,
            timestamps: query_bool(query, "timestamps", false)?,
            tail_lines,
            limit_bytes,
            since,
        })
    }
}

type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

async fn open_log(
    nodes: &NodeConnections,
    pod: &Value,
    query: &[(String, String)],
) -> Result<ByteStream, StatusError> {
    let target = PodTarget::resolve(pod, query_value(query, "container"))?;
    let options = LogOptions::parse(query, &target.name)?;
    if target.node_name().is_empty() {
        // kube-apiserver answers an empty log for a pod that has no node yet.
        return Ok(stream::empty().boxed());
    }
    let node = target.node(nodes)?;
    check_log_status(&target, options.previous)?;
    let request = LogRequest {
        namespace: target.namespace.clone(),
        pod: target.name.clone(),
        container: target.container.clone(),
        follow: options.follow,
        previous: options.previous,
        tail_lines: options.tail_lines,
        // `since` filters on the timestamps, so ask for them and strip them again if needed.
        timestamps: options.timestamps || options.since.is_some(),
    };
    let mut body = node.logs(request).await.map_err(StatusError::from_node)?;
    if let Some(cutoff) = options.since {
        body = since_filter(body, cutoff, options.timestamps);
    }
    if let Some(limit) = options.limit_bytes {
        body = limit_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok(body)
}

/// The kubelet's `validateContainerLogStatus`: which state of the container has a log.
fn check_log_status(target: &PodTarget<'_>, previous: bool) -> Result<(), StatusError> {
    let (container, pod) = (&target.container, &target.name);
    let Some(status) = target.container_status() else {
        if target.pod["status"]["phase"].as_str() == Some("Running") {
            return Ok(());
        }
        return Err(StatusError::bad_request(format!(
            "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
        )));
    };
    let state = &status["state"];
    let last_terminated = status["lastState"]["terminated"].is_object();
    if previous {
        if last_terminated {
            return Ok(());
        }
        return Err(StatusError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{pod}\" not found"
        )));
    }
    if state["running"].is_object() || state["terminated"].is_object() || last_terminated {
        return Ok(());
    }
    let message = match state["waiting"]["reason"].as_str() {
        Some("ErrImagePull") => "image can't be pulled".to_string(),
        Some("ImagePullBackOff") => "trying and failing to pull image".to_string(),
        Some(reason) => reason.to_string(),
        None if state["waiting"].is_object() => String::new(),
        None => {
            return Err(StatusError::bad_request(format!(
                "container \"{container}\" in pod \"{pod}\" is waiting to start - no logs yet"
            )));
        }
    };
    Err(StatusError::bad_request(format!(
        "container \"{container}\" in pod \"{pod}\" is waiting to start: {message}"
    )))
}

/// Keeps the lines stamped at or after `cutoff`; strips the stamps unless they were asked for.
fn since_filter(body: ByteStream, cutoff: Timestamp, keep_timestamps: bool) -> ByteStream {
    let state = (body, BytesMut::new(), false);
    stream::unfold(
        state,
        move |(mut body, mut pending, mut ended)| async move {
            loop {
                if let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let line = pending.split_to(end + 1).freeze();
                    if let Some(kept) = filter_line(line, cutoff, keep_timestamps) {
                        return Some((Ok(kept), (body, pending, ended)));
                    }
                    continue;
                }
                if ended {
                    if pending.is_empty() {
                        return None;
                    }
                    let line = pending.split().freeze();
                    if let Some(kept) = filter_line(line, cutoff, keep_timestamps) {
                        return Some((Ok(kept), (body, pending, ended)));
                    }
                    return None;
                }
                match body.next().await {
                    Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                    Some(Err(error)) => return Some((Err(error), (body, pending, true))),
                    None => ended = true,
                }
            }
        },
    )
    .boxed()
}

fn filter_line(line: Bytes, cutoff: Timestamp, keep_timestamps: bool) -> Option<Bytes> {
    let space = line.iter().position(|b| *b == b' ')?;
    let stamp = std::str::from_utf8(&line[..space]).ok()?;
    let stamp = Timestamp::from_str(stamp).ok()?;
    if stamp < cutoff {
        return None;
    }
    Some(if keep_timestamps {
        line
    } else {
        line.slice(space + 1..)
    })
}

/// Ends the stream after `limit` bytes (`limitBytes`).
fn limit_bytes(body: ByteStream, limit: usize) -> ByteStream {
    stream::unfold((body, limit), |(mut body, left)| async move {
        if left == 0 {
            return None;
        }
        match body.next().await? {
            Ok(chunk) => {
                let chunk = if chunk.len() > left {
                    chunk.slice(..left)
                } else {
                    chunk
                };
                let left = left - chunk.len();
                Some((Ok(chunk), (body, left)))
            }
            Err(error) => Some((Err(error), (body, 0))),
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod_with(status: Value) -> Value {
        json!({
            "metadata": {"name": "web-0", "namespace": "default"},
            "spec": {"containers": [{"name": "nginx"}], "nodeName": "n"},
            "status": status,
        })
    }

    #[test]
    fn a_creating_container_has_no_log_yet() {
        let pod = pod_with(json!({"phase": "Pending", "containerStatuses": [
            {"name": "nginx", "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
        let target = PodTarget::resolve(&pod, None).unwrap();
        let error = check_log_status(&target, false).unwrap_err();
        assert_eq!(
            error,
            StatusError::bad_request(
                "container \"nginx\" in pod \"web-0\" is waiting to start: ContainerCreating"
            )
        );
    }

    #[test]
    fn image_pull_failures_are_explained() {
        let pod = pod_with(json!({"containerStatuses": [
            {"name": "nginx", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}));
        let target = PodTarget::resolve(&pod, None).unwrap();
        assert!(
            check_log_status(&target, false)
                .unwrap_err()
                .message
                .ends_with("is waiting to start: trying and failing to pull image")
        );
    }

    #[test]
    fn previous_needs_a_terminated_container() {
        let pod = pod_with(json!({"containerStatuses": [
            {"name": "nginx", "state": {"running": {}}, "lastState": {}}]}));
        let target = PodTarget::resolve(&pod, None).unwrap();
        assert!(check_log_status(&target, false).is_ok());
        assert_eq!(
            check_log_status(&target, true).unwrap_err().message,
            "previous terminated container \"nginx\" in pod \"web-0\" not found"
        );
    }

    #[test]
    fn invalid_options_are_422_with_the_real_message() {
        let query = vec![("tailLines".to_string(), "-1".to_string())];
        let error = LogOptions::parse(&query, "web-0").err().unwrap();
        assert_eq!(error.code, 422);
        assert_eq!(
            error.message,
            "PodLogOptions \"web-0\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
    }

    fn collect(body: ByteStream) -> String {
        let chunks: Vec<Bytes> =
            futures::executor::block_on(body.map(|chunk| chunk.unwrap()).collect::<Vec<_>>());
        chunks
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    }

    #[test]
    fn since_keeps_later_lines_and_strips_stamps() {
        let chunks = [
            "2024-01-01T00:00:00.5Z old\n2024-01-01T00:00:0",
            "2.000000001Z new\n2024-01-01T00:00:03Z last",
        ];
        let body = stream::iter(chunks.map(|c| Ok(Bytes::from(c)))).boxed();
        let cutoff = Timestamp::from_str("2024-01-01T00:00:01Z").unwrap();
        assert_eq!(collect(since_filter(body, cutoff, false)), "new\nlast");
    }

    #[test]
    fn limit_bytes_cuts_the_stream() {
        let body = stream::iter(["hello ", "world\n"].map(|c| Ok(Bytes::from(c)))).boxed();
        assert_eq!(collect(limit_bytes(body, 8)), "hello wo");
    }
}
