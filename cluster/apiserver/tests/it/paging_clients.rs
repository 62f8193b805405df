//! Real clients page through 1200 ConfigMaps: the official Python client (`kubernetes` from
//! PyPI) with `limit=500` and `_continue`, and kubectl 1.33, which lists in chunks of 500.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_labs_apiserver::testing::{TestApiServer, kubectl_binary};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

const COUNT: usize = 1200;
const NAMESPACE: &str = "many";

/// Lists the namespace's ConfigMaps page by page as the client's users do, and prints what
/// each page held.
const PAGER: &str = r#"
import json, sys
import kubernetes
kubernetes.config.load_kube_config(config_file=sys.argv[1])
core = kubernetes.client.CoreV1Api()
pages, names, token = [], [], None
while True:
    page = core.list_namespaced_config_map(sys.argv[2], limit=500, _continue=token)
    pages.append({"items": len(page.items),
                  "remaining": page.metadata.remaining_item_count,
                  "resourceVersion": page.metadata.resource_version})
    names += [cm.metadata.name for cm in page.items]
    token = page.metadata._continue
    if not token:
        break
print(json.dumps({"pages": pages, "names": names}))
"#;

/// 1200 ConfigMaps in [`NAMESPACE`], created 32 at a time.
async fn create_config_maps(api: &TestApiServer) {
    let namespaces: Api<Namespace> = Api::all(api.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(api.client.clone(), NAMESPACE);
    let started = Instant::now();
    futures::stream::iter(0..COUNT)
        .map(|i| {
            let maps = maps.clone();
            async move {
                let cm: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": format!("cm-{i:04}")},
                    "data": {"index": i.to_string()},
                }))
                .unwrap();
                maps.create(&PostParams::default(), &cm).await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let took = started.elapsed();
    println!("created {COUNT} ConfigMaps in {took:?}");
    assert!(took < Duration::from_secs(60), "creating took {took:?}");
}

fn kubeconfig(api: &TestApiServer, name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "k8s-labs-paging-{}-{}-{name}.kubeconfig",
        std::process::id(),
        api.server.address().port()
    ));
    // The https URL: both clients send the bearer token only over TLS.
    std::fs::write(&path, api.https_kubeconfig()).unwrap();
    path
}

fn python_client_installed() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import kubernetes"])
        .output()
        .is_ok_and(|output| output.status.success())
}

async fn python_pages(config: &Path) -> Value {
    let output = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(PAGER)
        .arg(config)
        .arg(NAMESPACE)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the Python pager failed: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn the_python_client_and_kubectl_page_through_1200_config_maps() {
    let have_python = python_client_installed();
    let kubectl = kubectl_binary(33);
    if !have_python {
        eprintln!("skipping the Python client: `python3 -c 'import kubernetes'` fails");
    }
    let api = TestApiServer::start().await.unwrap();
    create_config_maps(&api).await;
    let expected: Vec<String> = (0..COUNT).map(|i| format!("cm-{i:04}")).collect();

    if have_python {
        let config = kubeconfig(&api, "python");
        let listed = python_pages(&config).await;
        std::fs::remove_file(&config).unwrap();
        let pages = listed["pages"].as_array().unwrap();
        let sizes: Vec<&Value> = pages.iter().map(|p| &p["items"]).collect();
        assert_eq!(sizes, [500, 500, 200], "{listed}");
        let remaining: Vec<&Value> = pages.iter().map(|p| &p["remaining"]).collect();
        assert_eq!(remaining, [&json!(700), &json!(200), &Value::Null]);
        // Every page is served at the first page's resourceVersion.
        assert!(
            pages
                .iter()
                .all(|p| p["resourceVersion"] == pages[0]["resourceVersion"])
        );
        let names: Vec<String> = serde_json::from_value(listed["names"].clone()).unwrap();
        assert_eq!(names, expected);
    }

    // kubectl lists in chunks of 500 (a block: its kubeconfig is its own).
    {
        let config = kubeconfig(&api, "kubectl");
        let output = tokio::process::Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&config)
            .args(["get", "configmaps", "-n", NAMESPACE, "-v=6"])
            .output()
            .await
            .unwrap();
        std::fs::remove_file(&config).unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "kubectl failed: {stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{stdout}");
        let rows: Vec<String> = lines[1..]
            .iter()
            .map(|line| line.split_whitespace().next().unwrap().to_string())
            .collect();
        assert_eq!(rows, expected);
        // kubectl asked for three chunks of 500 (its requests are logged at -v=6).
        let chunks = stderr
            .lines()
            .filter(|line| line.contains("/configmaps?") && line.contains("limit=500"))
            .count();
        assert_eq!(chunks, 3, "{stderr}");
    }
}
