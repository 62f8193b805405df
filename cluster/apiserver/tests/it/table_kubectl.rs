//! `kubectl get` against the API server: the server-side Table must print as on a real
//! cluster (columns, -o wide, -A, --show-labels, --sort-by).

use std::path::{Path, PathBuf};

use crate::support::streaming::{kubectl_kubeconfig, running_pod, start};
use k8s_labs_apiserver::testing::kubectl_binary;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use serde_json::json;

async fn kubectl(config: &Path, args: &[&str]) -> String {
    let output = tokio::process::Command::new(kubectl_binary(33))
        .arg("--kubeconfig")
        .arg(config)
        .args(args)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kubectl {args:?} failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The output with the AGE values (which depend on the clock) replaced by "<age>".
fn without_ages(output: &str, age_column: usize) -> Vec<Vec<String>> {
    output
        .lines()
        .map(|line| {
            let mut fields: Vec<String> = line.split_whitespace().map(String::from).collect();
            if fields.len() > age_column && fields[0] != "NAME" && fields[0] != "NAMESPACE" {
                fields[age_column] = "<age>".to_string();
            }
            fields
        })
        .collect()
}

fn row(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|f| f.to_string()).collect()
}

/// A server with two running pods, and a kubeconfig for kubectl; panics first if kubectl 1.33
/// is missing, before starting anything.
async fn setup() -> (crate::support::streaming::Harness, PathBuf) {
    kubectl_binary(33);
    let harness = start().await;
    running_pod(&harness.client, "web-0").await;
    running_pod(&harness.client, "web-1").await;
    let path = std::env::temp_dir().join(format!(
        "k8s-labs-table-{}-{}.kubeconfig",
        std::process::id(),
        harness.server.address().port()
    ));
    std::fs::write(&path, kubectl_kubeconfig(&harness)).unwrap();
    (harness, path)
}

#[tokio::test]
async fn kubectl_get_prints_server_side_tables() {
    let (harness, path) = setup().await;
    let services: Api<Service> = Api::namespaced(harness.client.clone(), "default");
    let nginx: Service = serde_json::from_value(json!({
        "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
        "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 80}], "selector": {"app": "nginx"}},
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &nginx)
        .await
        .unwrap();

    let pods = kubectl(&path, &["get", "pods"]).await;
    assert_eq!(
        without_ages(&pods, 4),
        [
            row(&["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
            row(&["web-0", "1/1", "Running", "0", "<age>"]),
            row(&["web-1", "1/1", "Running", "0", "<age>"]),
        ]
    );
    let wide = kubectl(&path, &["get", "pods", "-o", "wide"]).await;
    assert_eq!(
        without_ages(&wide, 4)[..2],
        [
            row(&[
                "NAME",
                "READY",
                "STATUS",
                "RESTARTS",
                "AGE",
                "IP",
                "NODE",
                "NOMINATED",
                "NODE",
                "READINESS",
                "GATES"
            ]),
            row(&[
                "web-0",
                "1/1",
                "Running",
                "0",
                "<age>",
                "<none>",
                "local-node",
                "<none>",
                "<none>"
            ]),
        ]
    );
    let sorted = kubectl(
        &path,
        &["get", "pods", "--sort-by=.metadata.name", "--no-headers"],
    )
    .await;
    assert_eq!(
        sorted
            .lines()
            .map(|l| l.split_whitespace().next().unwrap())
            .collect::<Vec<_>>(),
        ["web-0", "web-1"]
    );

    let service = kubectl(&path, &["get", "svc", "-l", "app=nginx", "--show-labels"]).await;
    assert_eq!(
        without_ages(&service, 5),
        [
            row(&[
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
                "LABELS"
            ]),
            row(&[
                "nginx",
                "ClusterIP",
                "None",
                "<none>",
                "80/TCP",
                "<age>",
                "app=nginx"
            ]),
        ]
    );
    let all = kubectl(&path, &["get", "svc", "-A"]).await;
    let namespaces: Vec<&str> = all
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert!(namespaces.contains(&"default"), "{all}");
    assert!(all.starts_with("NAMESPACE"), "{all}");
    let _ = std::fs::remove_file(&path);
}

/// `kubectl get pod web-0` (the tutorial's `kubectl get service nginx`) asks for a Table of
/// one object; the GET handler must answer it with `to_table(plural, &[object], ..)`.
#[tokio::test]
async fn kubectl_get_one_object_prints_its_row() {
    let (_harness, path) = setup().await;
    let pod = kubectl(&path, &["get", "pod", "web-0"]).await;
    assert_eq!(
        without_ages(&pod, 4),
        [
            row(&["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
            row(&["web-0", "1/1", "Running", "0", "<age>"])
        ]
    );
    let _ = std::fs::remove_file(&path);
}
