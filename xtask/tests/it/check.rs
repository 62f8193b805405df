//! `cargo xtask check statefulset-dns` against a student's namespace on an embedded cluster:
//! a correct setup passes every claim; a StatefulSet scaled to 2 fails only the pods claim;
//! a Service misspelt `ngnix` fails the Service, endpoints and DNS claims — each with its
//! hint — and the student's objects are left as they were.
//!
//! Needs root and `scripts/install-deps` (the embedded cluster runs pods with runc).

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::start_cluster;
use k8s_labs_harness::apply::{Applier, parse_manifests};
use k8s_labs_harness::wait::{is_statefulset_settled, wait_for};
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use tokio::process::Command;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(120);

fn manifest(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests")
        .join(path)
}

fn web_yaml() -> PathBuf {
    manifest("statefulset-dns/web.yaml")
}

async fn create_namespace(client: &Client, name: &str) {
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(name.to_string());
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
}

/// Waits (by watch) until StatefulSet web runs `replicas` Ready pods and no others.
async fn wait_web(client: &Client, namespace: &str, replicas: i32) {
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let what = format!("StatefulSet web to settle at {replicas} ready replicas");
    wait_for(api, "web", &what, Instant::now() + WAIT, |sts| {
        sts.is_some_and(|sts| {
            is_statefulset_settled(sts)
                && sts.status.as_ref().is_some_and(|status| {
                    status.replicas == replicas && status.ready_replicas == Some(replicas)
                })
        })
    })
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let gone = format!("web-{replicas}");
    wait_for(
        pods,
        &gone,
        "the scaled-away pod to be gone",
        Instant::now() + WAIT,
        |pod| pod.is_none(),
    )
    .await
    .unwrap();
}

struct Checked {
    code: Option<i32>,
    stdout: String,
    /// The summary's lines: `✓ claim`, `✗ claim` and hint lines.
    summary: Vec<String>,
}

async fn check(kubeconfig: &Path, namespace: &str) -> Checked {
    check_lab(kubeconfig, "statefulset-dns", namespace, &[]).await
}

/// A check of a setup that is broken for good: a failing claim is retried for a quarter of its
/// usual time (a 30 s DNS claim for 7.5 s), still long enough for a whole try of each claim.
async fn check_broken(kubeconfig: &Path, namespace: &str) -> Checked {
    let quick = ["--timeout-scale", "0.25"];
    check_lab(kubeconfig, "statefulset-dns", namespace, &quick).await
}

async fn check_lab(kubeconfig: &Path, lab: &str, namespace: &str, extra: &[&str]) -> Checked {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .args(["check", lab, "--namespace", namespace, "--kubeconfig"])
        .arg(kubeconfig)
        .args(extra)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary: Vec<String> = stdout
        .lines()
        .skip_while(|line| !line.contains("claims hold in namespace"))
        .skip(1)
        .map(|line| line.trim().to_string())
        .collect();
    assert!(!summary.is_empty(), "no summary:\n{stdout}\n{stderr}");
    Checked {
        code: output.status.code(),
        stdout,
        summary,
    }
}

impl Checked {
    fn holds(&self, claim: &str) -> bool {
        self.summary.contains(&format!("✓ {claim}"))
    }

    fn fails(&self, claim: &str) -> bool {
        self.summary.contains(&format!("✗ {claim}"))
    }

    /// The hint printed under a failed claim in the summary.
    fn hint(&self, claim: &str) -> String {
        self.summary
            .iter()
            .skip_while(|line| **line != format!("✗ {claim}"))
            .skip(1)
            .take_while(|line| !line.starts_with('✓') && !line.starts_with('✗'))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

const PODS: &str = "pods web-0, web-1, web-2 exist and are Running and Ready";
const SERVICE: &str =
    "Service nginx (the StatefulSet's serviceName) is headless, port 80 named web";
const ENDPOINTS: &str = "endpoints nginx are the Ready pods' IPs on port 80";
const DNS: &str = "DNS in a pod answers web-0.nginx and web-1.nginx with the pods' IPs";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_a_correct_setup_and_names_what_is_broken_with_hints() {
    let _turn = common::cluster_turn().await;
    let (cluster, kubeconfig, dir) = start_cluster("check-statefulset-dns").await;
    let client = cluster.client().await.unwrap();

    // Two students applied web.yaml by hand.
    let mut applier = Applier::new(client.clone());
    for namespace in ["student-a", "student-b"] {
        create_namespace(&client, namespace).await;
        applier.apply_file(&web_yaml(), namespace).await.unwrap();
    }
    for namespace in ["student-a", "student-b"] {
        wait_web(&client, namespace, 3).await;
    }

    let correct = check(&kubeconfig, "student-a").await;
    assert_eq!(correct.code, Some(0), "{}", correct.stdout);
    assert!(
        correct
            .stdout
            .contains("4 of 4 claims hold in namespace student-a"),
        "{}",
        correct.stdout
    );
    for claim in [PODS, SERVICE, ENDPOINTS, DNS] {
        assert!(correct.holds(claim), "{claim}:\n{}", correct.stdout);
    }

    // (a) replicas 2: only the pods claim fails, with the cluster-state hint.
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), "student-a");
    statefulsets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    wait_web(&client, "student-a", 2).await;
    let scaled = check_broken(&kubeconfig, "student-a").await;
    assert_eq!(scaled.code, Some(1), "{}", scaled.stdout);
    assert!(scaled.fails(PODS), "{}", scaled.stdout);
    assert!(
        scaled.hint(PODS).contains("replicas: 3"),
        "{}",
        scaled.stdout
    );
    assert!(
        scaled.stdout.contains("-web-2 Running and Ready"),
        "the failure shows the missing pod as a diff:\n{}",
        scaled.stdout
    );
    for claim in [SERVICE, ENDPOINTS, DNS] {
        assert!(scaled.holds(claim), "{claim}:\n{}", scaled.stdout);
    }

    // (b) the Service misspelt: Service, endpoints and DNS claims fail, each with its hint.
    let services: Api<Service> = Api::namespaced(client.clone(), "student-b");
    services
        .delete("nginx", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        services.clone(),
        "nginx",
        "Service nginx to be gone",
        Instant::now() + WAIT,
        |service| service.is_none(),
    )
    .await
    .unwrap();
    let yaml = std::fs::read_to_string(web_yaml()).unwrap();
    let mut misspelt = parse_manifests(&yaml)
        .unwrap()
        .into_iter()
        .find(|object| {
            object
                .types
                .as_ref()
                .is_some_and(|types| types.kind == "Service")
        })
        .unwrap();
    misspelt.metadata.name = Some("ngnix".to_string());
    applier.apply(misspelt, "student-b").await.unwrap();
    let misspelt = check_broken(&kubeconfig, "student-b").await;
    assert_eq!(misspelt.code, Some(1), "{}", misspelt.stdout);
    assert!(misspelt.holds(PODS), "{}", misspelt.stdout);
    assert!(misspelt.fails(SERVICE), "{}", misspelt.stdout);
    assert!(
        misspelt.hint(SERVICE).contains("spelling") || misspelt.hint(SERVICE).contains("typos")
    );
    assert!(
        misspelt
            .stdout
            .contains("Service \"nginx\" does not exist in namespace student-b"),
        "{}",
        misspelt.stdout
    );
    assert!(misspelt.fails(ENDPOINTS), "{}", misspelt.stdout);
    assert!(!misspelt.hint(ENDPOINTS).is_empty(), "{}", misspelt.stdout);
    assert!(misspelt.fails(DNS), "{}", misspelt.stdout);
    assert!(
        misspelt.hint(DNS).contains("search domains"),
        "{}",
        misspelt.stdout
    );
    assert!(
        misspelt.stdout.contains("web-0.nginx -> (no answer)"),
        "{}",
        misspelt.stdout
    );

    // The students' objects are as they left them; nothing of the check's is left.
    for (namespace, replicas) in [("student-a", 2), ("student-b", 3)] {
        let mut names: Vec<String> = Api::<Pod>::namespaced(client.clone(), namespace)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|pod| pod.name_any())
            .collect();
        names.sort();
        let expected: Vec<String> = (0..replicas).map(|i| format!("web-{i}")).collect();
        assert_eq!(names, expected, "pods in {namespace}");
        assert!(
            Api::<Namespace>::all(client.clone())
                .get_opt(namespace)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(services.get_opt("ngnix").await.unwrap().is_some());
    assert_eq!(
        statefulsets
            .get("web")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(2)
    );
    cluster.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_labs_checks_pass_on_their_corrected_manifests() {
    let _turn = common::cluster_turn().await;
    let (cluster, kubeconfig, dir) = start_cluster("check-others").await;
    let client = cluster.client().await.unwrap();
    let mut applier = Applier::new(client.clone());
    let setups: [(&str, &[&str]); 2] = [
        (
            "replicaset-scale",
            &[
                "replicaset-scale/replicaset.fixed-image.yaml",
                "replicaset-scale/service.fixed-target-port.yaml",
            ],
        ),
        (
            "pvc-templates",
            &["pvc-templates/statefulsets.fixed-image.yaml"],
        ),
    ];
    for (lab, files) in setups {
        create_namespace(&client, lab).await;
        for file in files {
            applier.apply_file(&manifest(file), lab).await.unwrap();
        }
    }
    // The students waited for their pods before pressing "Check".
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), "replicaset-scale");
    wait_for(
        replicasets,
        "example-app",
        "ReplicaSet example-app to have 3 ready pods",
        Instant::now() + WAIT,
        |rs| {
            rs.and_then(|rs| rs.status.as_ref())
                .is_some_and(|status| status.ready_replicas == Some(3))
        },
    )
    .await
    .unwrap();
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), "pvc-templates");
    wait_for(
        statefulsets,
        "nginx",
        "StatefulSet nginx to have 2 ready pods",
        Instant::now() + WAIT,
        |sts| sts.is_some_and(is_statefulset_settled),
    )
    .await
    .unwrap();
    for (lab, _) in setups {
        let checked = check_lab(&kubeconfig, lab, lab, &[]).await;
        assert_eq!(checked.code, Some(0), "{}", checked.stdout);
        assert!(
            checked.summary.iter().all(|line| line.starts_with('✓')),
            "{}",
            checked.stdout
        );
        let pods: Vec<String> = Api::<Pod>::namespaced(client.clone(), lab)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|pod| pod.name_any())
            .filter(|name| name.starts_with("k8s-labs-"))
            .collect();
        assert!(pods.is_empty(), "the check's pods are gone: {pods:?}");
    }
    cluster.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
