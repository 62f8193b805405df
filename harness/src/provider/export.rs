//! Exporting what a cluster says about itself, for a failed run's artifacts: the logs of every
//! container and the events of the namespaces asked for (kube-system always), one file each.
//! What cannot be read is written into the file as the reason, so the export itself never
//! hides a lab's result.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};

use crate::diagnostics::event_time;

/// How many lines of each container's log are kept: enough for a crash, bounded for CI
/// artifacts.
pub const LOG_TAIL_LINES: i64 = 2000;

/// Writes `dir/<namespace>/<pod>.<container>.log` and `dir/<namespace>/events.txt` for
/// kube-system and each of `namespaces`; returns the files written.
pub async fn export_namespaces(
    client: &Client,
    dir: &Path,
    namespaces: &[&str],
) -> Result<Vec<PathBuf>> {
    let mut all: Vec<&str> = vec!["kube-system"];
    for namespace in namespaces {
        if !all.contains(namespace) {
            all.push(namespace);
        }
    }
    let mut written = Vec::new();
    for namespace in all {
        let namespace_dir = dir.join(namespace);
        tokio::fs::create_dir_all(&namespace_dir)
            .await
            .with_context(|| format!("cannot create {}", namespace_dir.display()))?;
        written.extend(export_pod_logs(client, &namespace_dir, namespace).await?);
        let events = namespace_dir.join("events.txt");
        write(&events, &events_text(client, namespace).await).await?;
        written.push(events);
    }
    Ok(written)
}

async fn export_pod_logs(client: &Client, dir: &Path, namespace: &str) -> Result<Vec<PathBuf>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = match pods.list(&ListParams::default()).await {
        Ok(list) => list,
        Err(error) => {
            let path = dir.join("pods.error.txt");
            write(
                &path,
                &format!("cannot list pods in {namespace}: {error}\n"),
            )
            .await?;
            return Ok(vec![path]);
        }
    };
    let mut written = Vec::new();
    for pod in list.items {
        let Some(name) = pod.metadata.name.clone() else {
            continue;
        };
        let containers = pod
            .spec
            .iter()
            .flat_map(|spec| {
                spec.init_containers
                    .iter()
                    .flatten()
                    .chain(spec.containers.iter())
                    .map(|container| container.name.clone())
            })
            .collect::<Vec<_>>();
        for container in containers {
            let params = LogParams {
                container: Some(container.clone()),
                tail_lines: Some(LOG_TAIL_LINES),
                timestamps: true,
                ..Default::default()
            };
            let text = match pods.logs(&name, &params).await {
                Ok(text) => text,
                Err(error) => format!(
                    "cannot read the log of {namespace}/{name} container {container}: {error}\n"
                ),
            };
            let path = dir.join(format!(
                "{}.{}.log",
                file_safe(&name),
                file_safe(&container)
            ));
            write(&path, &text).await?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The namespace's events, oldest first, one line each like `kubectl get events` shows them.
async fn events_text(client: &Client, namespace: &str) -> String {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let mut list = match events.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(error) => return format!("cannot list events in {namespace}: {error}\n"),
    };
    list.sort_by_key(event_time);
    let mut text = String::new();
    for event in &list {
        let _ = writeln!(
            text,
            "{} {} {} {}/{}: {}",
            event_time(event)
                .map(|time| time.to_string())
                .unwrap_or_else(|| "-".to_string()),
            event.type_.as_deref().unwrap_or("-"),
            event.reason.as_deref().unwrap_or("-"),
            event.involved_object.kind.as_deref().unwrap_or("-"),
            event.involved_object.name.as_deref().unwrap_or("-"),
            event.message.as_deref().unwrap_or("").trim_end(),
        );
    }
    if list.is_empty() {
        text.push_str("no events\n");
    }
    text
}

/// A Kubernetes name as a file name: names are DNS labels already, but a stray `/` must never
/// escape the directory.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

async fn write(path: &Path, text: &str) -> Result<()> {
    tokio::fs::write(path, text)
        .await
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_export_directory() {
        assert_eq!(file_safe("web-0"), "web-0");
        assert_eq!(file_safe("../etc/passwd"), ".._etc_passwd");
    }
}
