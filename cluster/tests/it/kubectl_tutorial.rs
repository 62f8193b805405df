//! The tutorial's kubectl commands, typed as a student types them, with the real kubectl 1.33
//! and 1.27 against one embedded cluster: kubectl is a client we did not write, so this is the
//! outside proof that the cluster speaks the Kubernetes API as kubectl expects it. Outputs are
//! compared after redacting ages and IP addresses. Needs root and `scripts/install-deps`, as
//! the other embedded-cluster tests do.
//!
//! kubectl < 1.30 streams exec and attach over SPDY, which this cluster does not serve (it
//! streams over WebSocket, what kubectl ≥ 1.30 uses by default); with kubectl 1.27 those
//! commands are checked to fail with the server's one-line explanation, and the DNS check
//! runs as a pod whose logs are read instead of attaching to it.

use crate::support;

use std::path::Path;

use k8s_labs_cluster::NODE_NAME;
use support::kubectl::{Kubectl, redact, redact_line};

/// The newest and the oldest kubectl the project supports.
const VERSIONS: &[u32] = &[33, 27];

fn manifest(relative: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
    root.join(relative).display().to_string()
}

fn assert_has(lines: &[String], wanted: &str, context: &str) {
    assert!(
        lines.iter().any(|line| line == wanted),
        "{context}: expected the line {wanted:?} in:\n{}",
        lines.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorial_commands_work_with_real_kubectl() {
    let _turn = crate::support::cluster_turn().await;
    let scratch = support::scratch_dir("kubectl-tutorial");
    let (cluster, kubeconfig) = support::start_cluster(&scratch).await;
    let kubectls: Vec<Kubectl> = VERSIONS
        .iter()
        .map(|minor| Kubectl::new(*minor, &kubeconfig, &scratch))
        .collect();
    for kubectl in &kubectls {
        eprintln!("kubectl 1.{}: {}", kubectl.minor, kubectl.binary.display());
        cluster_wide_commands(kubectl).await;
        statefulset_dns_section(kubectl).await;
        everyday_commands(kubectl).await;
        pvc_templates_section(kubectl).await;
        replicaset_and_validation(kubectl).await;
        clean_up(kubectl).await;
    }
    cluster.stop().await.expect("the cluster stops cleanly");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// `version`, `api-resources`, the DNS pod and Service in kube-system, `create namespace`.
async fn cluster_wide_commands(k: &Kubectl) {
    let version = k.ok(&["version"]).await;
    // kubectl 1.27 prints the server's version.Info struct, 1.33 only its gitVersion.
    let server = version.lines().find(|l| l.starts_with("Server Version: "));
    assert!(server.is_some_and(|l| l.contains("v1.33.0")), "{version}");

    let resources = redact(&k.ok(&["api-resources"]).await);
    assert_has(
        &resources,
        "NAME SHORTNAMES APIVERSION NAMESPACED KIND",
        "api-resources",
    );
    assert_has(&resources, "pods po v1 true Pod", "api-resources");
    assert_has(
        &resources,
        "statefulsets sts apps/v1 true StatefulSet",
        "api-resources",
    );

    // The DNS pod is Ready once the DNS server answers its probe: wait as a student would.
    k.ok(&[
        "wait",
        "-n",
        "kube-system",
        "--for=condition=Ready",
        "pod",
        "-l",
        "k8s-app=kube-dns",
        "--timeout=120s",
    ])
    .await;
    let system_pods = redact(&k.ok(&["get", "pod", "-n", "kube-system"]).await);
    assert_has(
        &system_pods,
        "NAME READY STATUS RESTARTS AGE",
        "get pod -n kube-system",
    );
    assert_has(
        &system_pods,
        &format!("coredns-{NODE_NAME} 1/1 Running 0 [AGE]"),
        "get pod -n kube-system",
    );
    let system_services = redact(&k.ok(&["get", "svc", "-n", "kube-system"]).await);
    assert_has(
        &system_services,
        "kube-dns ClusterIP [IP] <none> 53/UDP,53/TCP [AGE]",
        "get svc -n kube-system",
    );

    // kubectl ≥ 1.32 sends this one as protobuf.
    let namespace = format!("scratch-1-{}", k.minor);
    assert_eq!(
        k.ok(&["create", "namespace", &namespace]).await,
        format!("namespace/{namespace} created\n")
    );
    assert_eq!(
        k.ok(&[
            "create",
            "configmap",
            "settings",
            "-n",
            &namespace,
            "--from-literal=mode=tutorial"
        ])
        .await,
        "configmap/settings created\n"
    );
    let mode = k
        .ok(&[
            "get",
            "configmap",
            "settings",
            "-n",
            &namespace,
            "-o",
            "jsonpath={.data.mode}",
        ])
        .await;
    assert_eq!(mode, "tutorial");
    k.ok(&["delete", "namespace", &namespace, "--wait=false"])
        .await;
}

/// 应用: `kubectl apply -f web.yaml` twice, get pod/svc/ep, exec curl, nslookup from a pod.
async fn statefulset_dns_section(k: &Kubectl) {
    let web = manifest("statefulset-dns/web.yaml");
    let first = k.ok(&["apply", "-f", &web]).await;
    assert_eq!(
        first,
        "service/nginx created\nstatefulset.apps/web created\n"
    );
    let second = k.ok(&["apply", "-f", &web]).await;
    assert_eq!(
        second,
        "service/nginx unchanged\nstatefulset.apps/web unchanged\n"
    );
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=180s"])
        .await;

    let pods = redact(&k.ok(&["get", "pod"]).await);
    assert_eq!(pods[0], "NAME READY STATUS RESTARTS AGE");
    for name in ["web-0", "web-1", "web-2"] {
        assert_has(&pods, &format!("{name} 1/1 Running 0 [AGE]"), "get pod");
    }
    let services = redact(&k.ok(&["get", "svc"]).await);
    assert_eq!(services[0], "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE");
    assert_has(
        &services,
        "kubernetes ClusterIP [IP] <none> 443/TCP [AGE]",
        "get svc",
    );
    assert_has(
        &services,
        "nginx ClusterIP None <none> 80/TCP [AGE]",
        "get svc",
    );
    let endpoints = redact(&k.ok(&["get", "ep"]).await);
    assert_eq!(endpoints[0], "NAME ENDPOINTS AGE");
    assert_has(&endpoints, "nginx [IP]:80,[IP]:80,[IP]:80 [AGE]", "get ep");
    // As in the tutorial's `kubernetes   192.168.2.210:6443`: where the API server serves.
    assert!(
        endpoints
            .iter()
            .any(|line| line.starts_with("kubernetes [IP]:") && line.ends_with(" [AGE]")),
        "get ep: no kubernetes endpoint in:\n{}",
        endpoints.join("\n")
    );

    let web_0_ip = k
        .ok(&["get", "pod", "web-0", "-o", "jsonpath={.status.podIP}"])
        .await;
    assert!(web_0_ip.starts_with("10.244."), "web-0's IP: {web_0_ip:?}");

    // nslookup from a pod, without attaching: works with every kubectl.
    k.ok(&[
        "run",
        "dns-check",
        "--image",
        "busybox:1.28",
        "--restart=Never",
        "--",
        "nslookup",
        "web-0.nginx",
    ])
    .await;
    k.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/dns-check",
        "--timeout=120s",
    ])
    .await;
    let answer = k.ok(&["logs", "dns-check"]).await;
    assert!(
        answer.contains("Name:\tweb-0.nginx.default.svc.cluster.local"),
        "{answer}"
    );
    assert!(
        answer.contains(&format!("Address: {web_0_ip}\n")),
        "{answer}"
    );
    k.ok(&["delete", "pod", "dns-check"]).await;

    let curl = [
        "exec",
        "web-1",
        "--",
        "curl",
        "-s",
        "web-1.nginx.default.svc.cluster.local",
    ];
    let lookup_command = [
        "run",
        "dns-test",
        "--image",
        "busybox:1.28",
        "--restart=Never",
        "--rm",
        "-i",
        "--",
        "nslookup",
        "web-0.nginx",
    ];
    if k.minor >= 30 {
        let page = k.ok(&curl).await;
        assert!(page.contains("<title>Welcome to nginx!</title>"), "{page}");
        // `run -i` attaches once the pod is Running; the first attach gets what nslookup
        // wrote before it (kubectl_run_attach.rs runs this 20 times per kubectl under load).
        let lookup = k.ok(&lookup_command).await;
        assert!(
            lookup.contains("Name:\tweb-0.nginx.default.svc.cluster.local"),
            "{lookup}"
        );
        assert!(
            lookup.contains(&format!("Address: {web_0_ip}\n")),
            "{lookup}"
        );
        assert!(lookup.contains("pod \"dns-test\" deleted"), "{lookup}");
    } else {
        // SPDY: refused with the server's explanation (see the module doc).
        let error = k.fails(&curl).await;
        assert!(error.contains("use kubectl 1.30 or newer"), "{error}");
    }
}

/// The commands a student tries next: -o wide, -o yaml, describe, logs (-f), -w with scale,
/// delete pod, events, server-side apply.
async fn everyday_commands(k: &Kubectl) {
    let wide = redact(&k.ok(&["get", "pods", "-o", "wide"]).await);
    assert_eq!(
        wide[0],
        "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"
    );
    assert_has(
        &wide,
        &format!("web-0 1/1 Running 0 [AGE] [IP] {NODE_NAME} <none> <none>"),
        "get pods -o wide",
    );

    let yaml = k.ok(&["get", "pod", "web-0", "-o", "yaml"]).await;
    assert!(
        yaml.contains("kind: Pod\n") && yaml.contains("  name: web-0\n"),
        "{yaml}"
    );
    assert!(yaml.contains("phase: Running"), "{yaml}");

    let described = redact(&k.ok(&["describe", "pod", "web-0"]).await);
    assert_has(&described, "Name: web-0", "describe pod");
    assert_has(&described, "Status: Running", "describe pod");
    assert_has(&described, "Controlled By: StatefulSet/web", "describe pod");
    assert_has(
        &described,
        &format!(
            "Normal Scheduled [AGE] default-scheduler Successfully assigned default/web-0 to {NODE_NAME}"
        ),
        "describe pod",
    );

    let logs = k.ok(&["logs", "web-0"]).await;
    assert!(logs.contains("nginx/"), "nginx's start-up notices: {logs}");
    k.ok(&[
        "run",
        "counter",
        "--image",
        "busybox:1.28",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "echo one; echo two",
    ])
    .await;
    k.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/counter",
        "--timeout=120s",
    ])
    .await;
    assert_eq!(k.ok(&["logs", "-f", "counter"]).await, "one\ntwo\n");
    k.ok(&["delete", "pod", "counter"]).await;

    // `get pod -w` prints rows as they change: scale up and watch web-4 become Running.
    let scaled = k.ok(&["scale", "statefulset", "web", "--replicas=5"]).await;
    assert_eq!(scaled, "statefulset.apps/web scaled\n");
    let watched = k
        .watch_until(&["get", "pod", "-w"], |line| {
            line == "web-4 1/1 Running 0 [AGE]"
        })
        .await;
    assert_eq!(watched[0], "NAME READY STATUS RESTARTS AGE");

    let deleted = k.ok(&["delete", "pod", "web-4"]).await;
    assert_eq!(deleted, "pod \"web-4\" deleted\n");
    k.ok(&["scale", "statefulset", "web", "--replicas=3"]).await;

    let events = redact(&k.ok(&["get", "events"]).await);
    assert_eq!(events[0], "LAST SEEN TYPE REASON OBJECT MESSAGE");
    assert_has(
        &events,
        &format!(
            "[AGE] Normal Scheduled pod/web-0 Successfully assigned default/web-0 to {NODE_NAME}"
        ),
        "get events",
    );

    let server_side = k
        .ok(&[
            "apply",
            "--server-side",
            "-f",
            &manifest("statefulset-dns/web.yaml"),
        ])
        .await;
    assert_eq!(
        server_side,
        "service/nginx serverside-applied\nstatefulset.apps/web serverside-applied\n"
    );
}

/// 应用2: `kubectl apply -f statefulsets.yaml` next to web.yaml, then `get service nginx`.
async fn pvc_templates_section(k: &Kubectl) {
    let applied = k
        .ok(&[
            "apply",
            "-f",
            &manifest("pvc-templates/statefulsets.fixed-image.yaml"),
        ])
        .await;
    assert_eq!(
        applied,
        "service/nginx unchanged\nstatefulset.apps/nginx created\n"
    );
    let service = redact(&k.ok(&["get", "service", "nginx"]).await);
    assert_eq!(
        service,
        vec![
            "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE",
            "nginx ClusterIP None <none> 80/TCP [AGE]"
        ]
    );
    k.ok(&["rollout", "status", "statefulset/nginx", "--timeout=180s"])
        .await;
    let claims = redact(&k.ok(&["get", "pvc"]).await);
    assert!(
        claims
            .iter()
            .any(|l| l.starts_with("www-nginx-0 Bound pvc-") && l.contains("1Gi RWO standard")),
        "{claims:?}"
    );
}

/// `scale rs`, and an unknown field refused by server-side field validation.
async fn replicaset_and_validation(k: &Kubectl) {
    let replicaset = manifest("replicaset-scale/replicaset.fixed-image.yaml");
    assert_eq!(
        k.ok(&["apply", "-f", &replicaset]).await,
        "replicaset.apps/example-app created\n"
    );
    assert_eq!(
        k.ok(&["scale", "rs", "example-app", "--replicas=1"]).await,
        "replicaset.apps/example-app scaled\n"
    );

    let typo = std::env::temp_dir().join(format!("typo-{}-1.{}.yaml", std::process::id(), k.minor));
    let web = std::fs::read_to_string(manifest("statefulset-dns/web.yaml")).expect("web.yaml");
    let web = web.replace(
        "kind: StatefulSet\nmetadata:\n  name: web",
        "kind: StatefulSet\nmetadata:\n  name: typo",
    );
    std::fs::write(&typo, web.replace("  replicas: 3", "  replica: 3"))
        .expect("write the typo manifest");
    let error = k.fails(&["apply", "-f", &typo.display().to_string()]).await;
    let _ = std::fs::remove_file(&typo);
    assert!(
        error.contains("StatefulSet in version \"v1\" cannot be handled as a StatefulSet: strict decoding error: unknown field \"spec.replica\""),
        "{error}"
    );
}

/// `kubectl delete -f`, then wait until the next kubectl starts from an empty namespace.
async fn clean_up(k: &Kubectl) {
    let deleted = k
        .ok(&["delete", "-f", &manifest("statefulset-dns/web.yaml")])
        .await;
    assert_eq!(
        deleted,
        "service \"nginx\" deleted\nstatefulset.apps \"web\" deleted\n"
    );
    k.ok(&["delete", "statefulset", "nginx"]).await;
    k.ok(&["delete", "rs", "example-app"]).await;
    k.ok(&["wait", "--for=delete", "pod", "--all", "--timeout=180s"])
        .await;
    k.ok(&["delete", "pvc", "--all"]).await;
    let left = k.run(&["get", "pod"]).await;
    assert!(
        redact_line(&left.stdout).is_empty(),
        "pods left: {}",
        left.stdout
    );
}
