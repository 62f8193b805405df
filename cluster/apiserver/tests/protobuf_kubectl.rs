//! kubectl 1.33's typed `create` commands send their objects as Kubernetes protobuf
//! (client-go ≥ 1.32); the API server reads them and stores the same object JSON would give.
//! Each command's request is checked to have been protobuf (kubectl -v=7 prints its
//! Content-Type), so a kubectl that fell back to JSON would fail this test.

use k8s_labs_apiserver::testing::TestApiServer;
use serde_json::{Value, json};

#[allow(dead_code)]
#[path = "../../tests/support/kubectl.rs"]
mod kubectl;

use kubectl::Kubectl;

const PROTOBUF: &str = "Content-Type: application/vnd.kubernetes.protobuf";

/// Runs a `kubectl create …` that must send protobuf and succeed.
async fn create_as_protobuf(kubectl: &Kubectl, args: &[&str]) {
    let output = kubectl.run(&[args, &["-v=7"]].concat()).await;
    assert!(
        output.success,
        "kubectl {args:?} failed:\n{}",
        output.stderr
    );
    assert!(
        output.stderr.contains(PROTOBUF),
        "kubectl {args:?} did not send protobuf:\n{}",
        output.stderr
    );
}

/// `kubectl get <what> -o json`, parsed.
async fn get(kubectl: &Kubectl, what: &[&str]) -> Value {
    let out = kubectl
        .ok(&[&["get", "-o", "json", "-n", "proto"], what].concat())
        .await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl get {what:?}: {e}\n{out}"))
}

#[tokio::test]
async fn kubectl_creates_objects_it_sends_as_protobuf() {
    let api = TestApiServer::start().await.unwrap();
    let scratch = std::env::temp_dir().join(format!("apiserver-protobuf-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let kubeconfig = scratch.join("kubeconfig");
    std::fs::write(&kubeconfig, api.https_kubeconfig()).unwrap();
    let kubectl = Kubectl::new(33, &kubeconfig, &scratch);

    create_as_protobuf(&kubectl, &["create", "namespace", "proto"]).await;
    let namespace = get(&kubectl, &["namespace", "proto"]).await;
    assert_eq!(namespace["metadata"]["name"], "proto");

    let ns = ["-n", "proto"];
    let config_map = [
        "create",
        "configmap",
        "cm",
        "--from-literal=a=b c",
        "--from-literal=empty=",
    ];
    create_as_protobuf(&kubectl, &[&config_map[..], &ns].concat()).await;
    let config_map = get(&kubectl, &["configmap", "cm"]).await;
    assert_eq!(config_map["data"], json!({"a": "b c", "empty": ""}));

    let secret = ["create", "secret", "generic", "sec", "--from-literal=k=v"];
    create_as_protobuf(&kubectl, &[&secret[..], &ns].concat()).await;
    let secret = get(&kubectl, &["secret", "sec"]).await;
    assert_eq!(
        (&secret["data"], &secret["type"]),
        (&json!({"k": "dg=="}), &json!("Opaque"))
    );

    let deployment = [
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
        "--port=80",
    ];
    create_as_protobuf(&kubectl, &[&deployment[..], &ns].concat()).await;
    let deployment = get(&kubectl, &["deployment", "web"]).await;
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["selector"], json!({"matchLabels": {"app": "web"}}));
    assert_eq!(
        spec["template"]["metadata"]["labels"],
        json!({"app": "web"})
    );
    let container = &spec["template"]["spec"]["containers"][0];
    assert_eq!(
        (&container["name"], &container["image"]),
        (&json!("nginx"), &json!("nginx"))
    );
    assert_eq!(
        container["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );

    let service = ["create", "service", "clusterip", "s", "--tcp=80:8080"];
    create_as_protobuf(&kubectl, &[&service[..], &ns].concat()).await;
    let service = get(&kubectl, &["service", "s"]).await;
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(service["spec"]["selector"], json!({"app": "s"}));
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    );
    let cluster_ip = service["spec"]["clusterIP"].as_str().unwrap_or_default();
    assert!(
        cluster_ip.parse::<std::net::Ipv4Addr>().is_ok(),
        "{service}"
    );

    // expose builds its Service with the dynamic client, which sends JSON.
    let expose = [
        "expose",
        "deployment",
        "web",
        "--port=8080",
        "--target-port=80",
    ];
    kubectl.ok(&[&expose[..], &ns].concat()).await;
    let exposed = get(&kubectl, &["service", "web"]).await;
    assert_eq!(exposed["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(
        exposed["spec"]["ports"],
        json!([{"port": 8080, "protocol": "TCP", "targetPort": 80}])
    );

    create_as_protobuf(
        &kubectl,
        &["create", "serviceaccount", "robot", "-n", "proto"],
    )
    .await;
    assert_eq!(
        get(&kubectl, &["serviceaccount", "robot"]).await["metadata"]["name"],
        "robot"
    );

    kubectl
        .ok(&["scale", "deployment", "web", "--replicas=3", "-n", "proto"])
        .await;
    assert_eq!(
        get(&kubectl, &["deployment", "web"]).await["spec"]["replicas"],
        3
    );
    api.shutdown().await;
}
