//! `kubectl delete --cascade=orphan|foreground|background` with the real kubectl 1.33 on the
//! embedded cluster: what a student sees when deleting a StatefulSet or a ReplicaSet without
//! its pods (and creating it again, which adopts them), before its pods, or with them after
//! it. Needs root and `scripts/install-deps`, as the other embedded-cluster tests do.
//!
//! Every wait is one kubectl itself does (`--for=jsonpath`, `--for=delete`, a `-w` watch), so
//! nothing here depends on how fast the cluster is.

use crate::support;

use std::path::Path;

use support::kubectl::{Kubectl, redact};

const WEB_PODS: [&str; 3] = ["pod/web-0", "pod/web-1", "pod/web-2"];

/// A finalizer of the test's: it holds a deleted pod (Terminating, then Completed once the
/// node has stopped it) until the test removes it, so that a foreground deletion can be
/// looked at while it waits.
const HOLD: &str = r#"{"metadata":{"finalizers":["example.com/hold"]}}"#;
const UNHOLD: &str = r#"[{"op":"remove","path":"/metadata/finalizers"}]"#;

const REPLICASET: &str = "\
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: front
spec:
  replicas: 2
  selector:
    matchLabels:
      app: front
  template:
    metadata:
      labels:
        app: front
    spec:
      containers:
      - name: nginx
        image: nginx
        imagePullPolicy: IfNotPresent
";

fn web_yaml() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests/statefulset-dns/web.yaml")
        .display()
        .to_string()
}

/// `name=uid` of each pod with label `selector`, sorted by name.
async fn pod_uids(k: &Kubectl, selector: &str) -> Vec<String> {
    let out = k
        .ok(&[
            "get",
            "pod",
            "-l",
            selector,
            "--sort-by=.metadata.name",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.metadata.uid}{\"\\n\"}{end}",
        ])
        .await;
    out.lines().map(String::from).collect()
}

/// `pod/<name>` of each `name=uid` line.
fn pod_refs(uids: &[String]) -> Vec<String> {
    uids.iter()
        .map(|line| format!("pod/{}", line.split('=').next().unwrap_or_default()))
        .collect()
}

async fn uid_of(k: &Kubectl, object: &str) -> String {
    k.ok(&["get", object, "-o", "jsonpath={.metadata.uid}"])
        .await
}

/// Waits, as `kubectl wait` does, until every one of `pods` names `owner_uid` as its owner.
async fn wait_owned(k: &Kubectl, pods: &[String], owner_uid: &str) {
    let condition = format!("--for=jsonpath={{.metadata.ownerReferences[0].uid}}={owner_uid}");
    let mut args = vec!["wait", condition.as_str(), "--timeout=120s"];
    args.extend(pods.iter().map(String::as_str));
    k.ok(&args).await;
}

/// The kind/name of each owner of `pod`, as `kubectl get -o jsonpath` prints them.
async fn owners(k: &Kubectl, pod: &str) -> String {
    k.ok(&[
        "get",
        pod,
        "-o",
        "jsonpath={range .metadata.ownerReferences[*]}{.kind}/{.name} {end}",
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_cascades_as_on_a_real_cluster() {
    let _turn = crate::support::cluster_turn().await;
    let scratch = support::scratch_dir("kubectl-deletion");
    let (cluster, kubeconfig) = support::start_cluster(&scratch).await;
    let k = Kubectl::new(33, &kubeconfig, &scratch);
    statefulset_orphaned_then_adopted(&k).await;
    statefulset_deleted_in_the_foreground(&k).await;
    let manifest = scratch.join("front.yaml");
    std::fs::write(&manifest, REPLICASET).expect("write the ReplicaSet manifest");
    let manifest = manifest.display().to_string();
    let released = replicaset_orphaned_adopted_and_released(&k, &manifest).await;
    replicaset_deleted_in_the_background(&k, &released).await;
    cluster.stop().await.expect("the cluster stops cleanly");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// `--cascade=orphan` leaves the pods running without owner; the StatefulSet applied again
/// adopts the same pods.
async fn statefulset_orphaned_then_adopted(k: &Kubectl) {
    k.ok(&["apply", "-f", &web_yaml()]).await;
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=120s"])
        .await;
    let before = pod_uids(k, "app=nginx").await;
    assert_eq!(before.len(), 3, "{before:?}");

    assert_eq!(
        k.ok(&["delete", "statefulset", "web", "--cascade=orphan"])
            .await,
        "statefulset.apps \"web\" deleted\n"
    );
    let missing = k.fails(&["get", "statefulset", "web"]).await;
    assert_eq!(
        missing,
        "Error from server (NotFound): statefulsets.apps \"web\" not found\n"
    );
    let pods = redact(&k.ok(&["get", "pod", "-l", "app=nginx"]).await);
    for name in ["web-0", "web-1", "web-2"] {
        let line = format!("{name} 1/1 Running 0 [AGE]");
        assert!(pods.contains(&line), "{pods:?}");
        assert_eq!(
            owners(k, &format!("pod/{name}")).await,
            "",
            "{name} is an orphan"
        );
    }

    assert_eq!(
        k.ok(&["apply", "-f", &web_yaml()]).await,
        "service/nginx unchanged\nstatefulset.apps/web created\n"
    );
    let uid = uid_of(k, "statefulset/web").await;
    wait_owned(k, &WEB_PODS.map(String::from), &uid).await;
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"])
        .await;
    assert_eq!(
        pod_uids(k, "app=nginx").await,
        before,
        "the same pods, adopted"
    );
    let described = redact(&k.ok(&["describe", "pod", "web-1"]).await);
    assert!(
        described.contains(&"Controlled By: StatefulSet/web".to_string()),
        "{described:?}"
    );
}

/// `--cascade=foreground`: the StatefulSet stays, marked and with `foregroundDeletion`,
/// until its pods are gone; then it goes.
async fn statefulset_deleted_in_the_foreground(k: &Kubectl) {
    for pod in WEB_PODS {
        k.ok(&["patch", pod, "--type=merge", "-p", HOLD]).await;
    }
    assert_eq!(
        k.ok(&[
            "delete",
            "statefulset",
            "web",
            "--cascade=foreground",
            "--wait=false"
        ])
        .await,
        "statefulset.apps \"web\" deleted\n"
    );
    // The garbage collector deletes the pods; the test's finalizer holds them.
    let mut args = vec![
        "wait",
        "--for=jsonpath={.metadata.deletionTimestamp}",
        "--timeout=120s",
    ];
    args.extend(WEB_PODS);
    k.ok(&args).await;
    let marked = k
        .ok(&[
            "get",
            "statefulset",
            "web",
            "-o",
            "jsonpath={.metadata.finalizers} {.metadata.deletionTimestamp}",
        ])
        .await;
    let (finalizers, timestamp) = marked.split_once(' ').unwrap_or_default();
    assert_eq!(finalizers, "[\"foregroundDeletion\"]", "{marked}");
    assert!(timestamp.ends_with('Z'), "a deletionTimestamp: {marked}");
    // The node stops each pod (nginx ends on SIGTERM) and writes its terminal phase, as the
    // kubelet does; the finalizer keeps the object, which kubectl then shows Completed.
    let mut args = vec![
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "--timeout=120s",
    ];
    args.extend(WEB_PODS);
    k.ok(&args).await;
    let pods = redact(&k.ok(&["get", "pod", "-l", "app=nginx"]).await);
    assert_eq!(
        pods.len(),
        4,
        "no pod replaced while the set goes: {pods:?}"
    );
    assert!(
        pods[1..]
            .iter()
            .all(|line| line.contains(" 0/1 Completed ")),
        "{pods:?}"
    );

    for pod in WEB_PODS {
        k.ok(&["patch", pod, "--type=json", "-p", UNHOLD]).await;
    }
    k.ok(&["wait", "--for=delete", "statefulset/web", "--timeout=120s"])
        .await;
    assert_eq!(
        pod_uids(k, "app=nginx").await,
        Vec::<String>::new(),
        "the set went after its pods"
    );
    k.ok(&["delete", "service", "nginx"]).await;
}

/// A ReplicaSet the same way: orphaned, adopted by the next one; then a pod relabelled out of
/// its selector is released and replaced. Returns the released pod (`pod/<name>`).
async fn replicaset_orphaned_adopted_and_released(k: &Kubectl, manifest: &str) -> String {
    k.ok(&["apply", "-f", manifest]).await;
    k.ok(&[
        "wait",
        "--for=jsonpath={.status.readyReplicas}=2",
        "rs/front",
        "--timeout=120s",
    ])
    .await;
    let before = pod_uids(k, "app=front").await;
    assert_eq!(before.len(), 2, "{before:?}");
    let pods = pod_refs(&before);

    assert_eq!(
        k.ok(&["delete", "rs", "front", "--cascade=orphan"]).await,
        "replicaset.apps \"front\" deleted\n"
    );
    for pod in &pods {
        assert_eq!(owners(k, pod).await, "", "{pod} is an orphan");
    }
    assert_eq!(
        k.ok(&["apply", "-f", manifest]).await,
        "replicaset.apps/front created\n"
    );
    let uid = uid_of(k, "rs/front").await;
    wait_owned(k, &pods, &uid).await;
    assert_eq!(
        pod_uids(k, "app=front").await,
        before,
        "the same pods, adopted"
    );
    assert_eq!(owners(k, &pods[0]).await, "ReplicaSet/front ");

    // Out of the selector: released (no owner left) and replaced by a new pod.
    k.ok(&["label", &pods[0], "app=solo", "--overwrite"]).await;
    let seen = k
        .watch_until(
            &["get", "pod", "-l", "app=front", "-w", "-o", "name"],
            |line| !pods.iter().any(|pod| pod == line),
        )
        .await;
    let replacement = seen.last().cloned().unwrap_or_default();
    k.ok(&[
        "wait",
        "--for=condition=Ready",
        &replacement,
        "--timeout=120s",
    ])
    .await;
    assert_eq!(owners(k, &replacement).await, "ReplicaSet/front ");
    // The set releases before it creates, so the release is done by now.
    let released = pods[0].clone();
    assert_eq!(owners(k, &released).await, "", "released");
    released
}

/// The default, background: the ReplicaSet goes at once, its pods after it; the pod it
/// released stays.
async fn replicaset_deleted_in_the_background(k: &Kubectl, released: &str) {
    let owned = pod_refs(&pod_uids(k, "app=front").await);
    assert_eq!(owned.len(), 2, "{owned:?}");
    assert_eq!(
        k.ok(&["delete", "rs", "front"]).await,
        "replicaset.apps \"front\" deleted\n"
    );
    let mut args = vec!["wait", "--for=delete", "--timeout=120s"];
    args.extend(owned.iter().map(String::as_str));
    k.ok(&args).await;
    let left = redact(&k.ok(&["get", released, "--no-headers"]).await);
    assert!(left[0].contains(" 1/1 Running "), "{left:?}");
    k.ok(&["delete", released]).await;
}
