//! The real kubectl (oldest and newest supported) against the API server.

use k8s_labs_apiserver::testing::{TestApiServer, kubectl_binary};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;

/// The newest and oldest supported kubectl (minor versions of 1.x).
const KUBECTLS: &[u32] = &[33, 27];

async fn kubectl(binary: &str, dir: &std::path::Path, args: &[&str]) -> String {
    let output = tokio::process::Command::new(binary)
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args(args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{binary} {args:?} failed: {stderr}\n{stdout}"
    );
    assert!(
        !stderr.contains("couldn't get"),
        "{binary} {args:?} warned: {stderr}"
    );
    stdout
}

const WEB_YAML: &str = "apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  ports:
  - port: 80
    name: web
  clusterIP: None
  selector:
    app: nginx
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx
        ports:
        - containerPort: 80
          name: web
";

#[tokio::test]
async fn kubectl_gets_applies_and_scales() {
    let api = TestApiServer::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "kube-system");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "coredns-0"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();

    for minor in KUBECTLS {
        let binary = kubectl_binary(*minor).display().to_string();
        let binary = binary.as_str();
        let dir = std::env::temp_dir().join(format!(
            "apiserver-kubectl-{}-{}",
            std::process::id(),
            minor
        ));
        std::fs::create_dir_all(&dir).unwrap();
        // client-go sends the token only over TLS, so kubectl uses the https URL.
        let kubeconfig = api.https_kubeconfig();
        std::fs::write(dir.join("kubeconfig"), kubeconfig).unwrap();

        let pods = kubectl(binary, &dir, &["get", "pods", "-A"]).await;
        assert!(
            pods.contains("kube-system") && pods.contains("coredns-0"),
            "{pods}"
        );
        let namespaces = kubectl(binary, &dir, &["get", "ns"]).await;
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            assert!(namespaces.contains(ns), "{namespaces}");
        }
        let resources = kubectl(binary, &dir, &["api-resources"]).await;
        for line in ["pods", "statefulsets", "endpointslices", "namespaces"] {
            assert!(resources.contains(line), "{resources}");
        }
        // apply works: kubectl learns from /openapi that the server validates fields.
        let manifest = dir.join("web.yaml");
        std::fs::write(&manifest, WEB_YAML).unwrap();
        let manifest = manifest.to_str().unwrap();
        let applied = kubectl(binary, &dir, &["apply", "-f", manifest]).await;
        assert!(
            applied.contains("statefulset.apps/web created"),
            "{applied}"
        );
        let again = kubectl(binary, &dir, &["apply", "-f", manifest]).await;
        assert!(again.contains("statefulset.apps/web unchanged"), "{again}");
        kubectl(
            binary,
            &dir,
            &["scale", "statefulset", "web", "--replicas=5"],
        )
        .await;
        let replicas = kubectl(
            binary,
            &dir,
            &["get", "sts", "web", "-o", "jsonpath={.spec.replicas}"],
        )
        .await;
        assert_eq!(replicas, "5");
        kubectl(binary, &dir, &["delete", "-f", manifest]).await;

        let services = kubectl(
            binary,
            &dir,
            &[
                "get",
                "svc",
                "kubernetes",
                "-o",
                "jsonpath={.spec.clusterIP}",
            ],
        )
        .await;
        assert_eq!(services, "10.96.0.1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

const MISMATCHED_SELECTOR: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx
";

/// kubectl prints kube-apiserver's validation error from the Status's causes, as it does for
/// a real cluster, for a client-side and a server-side apply.
#[tokio::test]
async fn kubectl_apply_shows_the_validation_error() {
    let api = TestApiServer::start().await.unwrap();
    for minor in KUBECTLS {
        let binary = kubectl_binary(*minor).display().to_string();
        let binary = binary.as_str();
        let dir = std::env::temp_dir().join(format!(
            "apiserver-kubectl-invalid-{}-{minor}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kubeconfig"), api.https_kubeconfig()).unwrap();
        let manifest = dir.join("web.yaml");
        std::fs::write(&manifest, MISMATCHED_SELECTOR).unwrap();
        let manifest = manifest.to_str().unwrap();
        for extra in [None, Some("--server-side")] {
            let mut args = vec!["apply", "-f", manifest];
            args.extend(extra);
            let output = tokio::process::Command::new(binary)
                .arg("--kubeconfig")
                .arg(dir.join("kubeconfig"))
                .args(&args)
                .arg("--cache-dir")
                .arg(dir.join("cache"))
                .output()
                .await
                .unwrap();
            assert!(!output.status.success(), "{binary} {args:?} succeeded");
            assert_eq!(
                String::from_utf8_lossy(&output.stderr),
                "The StatefulSet \"web\" is invalid: spec.template.metadata.labels: Invalid value: \
                 map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`\n",
                "{binary} {args:?}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
