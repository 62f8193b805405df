//! kubectl 1.32's and 1.33's typed `create` commands send their objects as Kubernetes protobuf
//! (client-go ≥ 1.32); the API server reads them and stores the same object JSON would give.
//! Each command's request is checked to have been protobuf (kubectl -v=7 prints its
//! Content-Type), so a kubectl that fell back to JSON would fail this test.

use k8s_labs_apiserver::decode_object;
use k8s_labs_apiserver::testing::TestApiServer;
use serde_json::{Value, json};

#[allow(dead_code)]
#[path = "../../../tests/it/support/kubectl.rs"]
mod kubectl;

use kubectl::Kubectl;

const PROTOBUF: &str = "Content-Type: application/vnd.kubernetes.protobuf";

/// A scratch directory, removed when the test ends (passed or not).
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test API server and kubectl 1.`minor` for it, with its files in a scratch directory
/// named after the test.
async fn start(minor: u32, test: &str) -> (TestApiServer, Kubectl, Scratch) {
    let api = TestApiServer::start().await.unwrap();
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "apiserver-protobuf-{test}-{}-{minor}",
        std::process::id()
    )));
    std::fs::create_dir_all(&scratch.0).unwrap();
    let kubeconfig = scratch.0.join("kubeconfig");
    std::fs::write(&kubeconfig, api.https_kubeconfig()).unwrap();
    let kubectl = Kubectl::new(minor, &kubeconfig, &scratch.0);
    (api, kubectl, scratch)
}

/// Runs a `kubectl create …` that must send protobuf and succeed.
async fn create_as_protobuf(kubectl: &Kubectl, args: &[&str]) {
    let output = kubectl.run(&[&["-v=7"], args].concat()).await;
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
async fn kubectl_1_33_creates_objects_it_sends_as_protobuf() {
    creates_objects_it_sends_as_protobuf(33).await;
}

#[tokio::test]
async fn kubectl_1_32_creates_objects_it_sends_as_protobuf() {
    creates_objects_it_sends_as_protobuf(32).await;
}

async fn creates_objects_it_sends_as_protobuf(minor: u32) {
    let (api, kubectl, _scratch) = start(minor, "objects").await;

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

/// The protobuf body kubectl -v=9 logged for its request (a hex dump between
/// `"Request Body" body=<` and ` >`).
fn logged_body(stderr: &str) -> Vec<u8> {
    let dump = stderr
        .split("\"Request Body\" body=<\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no request body logged:\n{stderr}"));
    let mut bytes = Vec::new();
    for line in dump.lines().take_while(|line| line.trim() != ">") {
        let hex = line.split('|').next().unwrap_or_default();
        // The first word is the offset; the ASCII column is after '|'.
        for word in hex.split_whitespace().skip(1) {
            bytes.push(u8::from_str_radix(word, 16).unwrap_or_else(|e| panic!("{word}: {e}")));
        }
    }
    bytes
}

/// The bodies kubectl 1.33 sends for kinds this server may not serve yet (their POST may
/// get a 404), captured from its log and decoded as the server would decode them.
#[tokio::test]
async fn kubectl_bodies_of_other_kinds_decode() {
    let (api, kubectl, _scratch) = start(33, "bodies").await;
    let sent = async |args: &[&str]| -> Value {
        let output = kubectl.run(&[&["-v=9"], args].concat()).await;
        let body = logged_body(&output.stderr);
        decode_object(&body).unwrap_or_else(|e| panic!("{args:?}: {}", e.message))
    };

    let job = sent(&["create", "job", "j", "--image=busybox:1.28", "--", "true"]).await;
    assert_eq!(
        (&job["apiVersion"], &job["kind"]),
        (&json!("batch/v1"), &json!("Job"))
    );
    assert_eq!(
        job["spec"]["template"]["spec"],
        json!({"restartPolicy": "Never", "containers": [
            {"name": "j", "image": "busybox:1.28", "command": ["true"], "resources": {}}]})
    );
    let cron = [
        "create",
        "cronjob",
        "cj",
        "--image=busybox:1.28",
        "--schedule=*/1 * * * *",
    ];
    let cron_job = sent(&[&cron[..], &["--", "date"]].concat()).await;
    assert_eq!(cron_job["spec"]["schedule"], "*/1 * * * *");
    let template = &cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(template["restartPolicy"], "OnFailure");
    assert_eq!(template["containers"][0]["command"], json!(["date"]));

    let pdb = [
        "create",
        "poddisruptionbudget",
        "pdb",
        "--selector=app=web",
        "--min-available=1",
    ];
    let pdb = sent(&pdb).await;
    assert_eq!(
        pdb["spec"],
        json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}})
    );
    let ingress = sent(&["create", "ingress", "ing", "--rule=foo.com/bar=svc1:8080"]).await;
    assert_eq!(
        ingress["spec"]["rules"],
        json!([{"host": "foo.com", "http": {"paths": [{"path": "/bar", "pathType": "Exact",
            "backend": {"service": {"name": "svc1", "port": {"number": 8080}}}}]}}])
    );
    let quota = sent(&["create", "quota", "q", "--hard=cpu=500m,pods=2"]).await;
    assert_eq!(quota["spec"], json!({"hard": {"cpu": "500m", "pods": "2"}}));
    let priority = [
        "create",
        "priorityclass",
        "high",
        "--value=1000",
        "--description=x",
    ];
    let priority = sent(&priority).await;
    assert_eq!(
        (&priority["value"], &priority["description"]),
        (&json!(1000), &json!("x"))
    );

    let role = sent(&["create", "role", "r", "--verb=get", "--resource=pods"]).await;
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
    );
    let cluster_role = [
        "create",
        "clusterrole",
        "cr",
        "--verb=get",
        "--non-resource-url=/logs",
    ];
    let cluster_role = sent(&cluster_role).await;
    assert_eq!(
        cluster_role["rules"],
        json!([{"nonResourceURLs": ["/logs"], "verbs": ["get"]}])
    );
    let binding = sent(&["create", "rolebinding", "rb", "--role=r", "--user=u"]).await;
    assert_eq!(
        (&binding["roleRef"], &binding["subjects"]),
        (
            &json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}),
            &json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "u"}])
        )
    );
    let token = sent(&["create", "token", "default", "--duration=1h"]).await;
    assert_eq!(
        (
            &token["apiVersion"],
            &token["kind"],
            &token["spec"]["expirationSeconds"]
        ),
        (
            &json!("authentication.k8s.io/v1"),
            &json!("TokenRequest"),
            &json!(3600)
        )
    );
    api.shutdown().await;
}
