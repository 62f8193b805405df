//! Graceful pod deletion with the real kubectl 1.33 on the embedded cluster, as kube-apiserver
//! and the kubelet 1.33 do it: the pod Terminating for its grace period (the spec's
//! `terminationGracePeriodSeconds` unless the delete asks for another, which may only
//! shrink it), each container's `preStop` hook before its SIGTERM, SIGKILL for what ignores
//! SIGTERM, the final status, and `--grace-period=0 --force`. Needs root and
//! `scripts/install-deps`, as the other embedded-cluster tests do.
//!
//! Every wait is one kubectl does (`wait`, `-w`, `logs -f`), so nothing here depends on how
//! fast the cluster is; what came first is read from the order of a stream.

use crate::support;

use std::collections::BTreeSet;

use support::kubectl::Kubectl;

/// A finalizer of the test's: it keeps the pod object after the node has stopped it, so that
/// the final status the node wrote can be read.
const UNHOLD: &str = r#"[{"op":"remove","path":"/metadata/finalizers"}]"#;

/// `trapper` catches SIGTERM and ends with its own code, printing what its `preStop` hook
/// (which never ends by itself) left; `stubborn` is `sleep` as PID 1, which the kernel does not
/// let SIGTERM end, and its hook fails.
const GRACEFUL: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: graceful
  finalizers: ["example.com/hold"]
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: trapper
    image: busybox:1.28
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'cat /tmp/hook; echo got SIGTERM; exit 3' TERM; echo started; sleep 3600 & wait"]
    lifecycle:
      preStop:
        exec:
          command: ["sh", "-c", "echo preStop ran > /tmp/hook; sleep 3600"]
  - name: stubborn
    image: busybox:1.28
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    lifecycle:
      preStop:
        exec:
          command: ["sh", "-c", "exit 1"]
"#;

const SLOW: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: slow
spec:
  terminationGracePeriodSeconds: 600
  containers:
  - name: stubborn
    image: busybox:1.28
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#;

const FORCED: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: forced
spec:
  containers:
  - name: trapper
    image: busybox:1.28
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'echo got SIGTERM; exit 0' TERM; echo started; sleep 3600 & wait"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_stops_pods_gracefully() {
    let _turn = crate::support::cluster_turn().await;
    let scratch = support::scratch_dir("kubectl-graceful");
    let (cluster, kubeconfig) = support::start_cluster(&scratch).await;
    let k = Kubectl::new(33, &kubeconfig, &scratch);
    for (name, manifest) in [("graceful", GRACEFUL), ("slow", SLOW), ("forced", FORCED)] {
        let path = scratch.join(format!("{name}.yaml"));
        std::fs::write(&path, manifest).expect("write a manifest");
        k.ok(&["apply", "-f", &path.display().to_string()]).await;
    }
    k.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/graceful",
        "pod/slow",
        "pod/forced",
        "--timeout=120s",
    ])
    .await;
    hooks_sigterm_and_sigkill(&k).await;
    grace_period_only_shrinks(&k).await;
    forced_deletion(&k).await;
    cluster.stop().await.expect("the cluster stops cleanly");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// `name=exitCode/reason` of each container of `pod`, once terminated.
async fn terminations(k: &Kubectl, pod: &str) -> BTreeSet<String> {
    let out = k
        .ok(&[
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={range .status.containerStatuses[*]}{.name}={.state.terminated.exitCode}/{.state.terminated.reason}{\"\\n\"}{end}",
        ])
        .await;
    out.lines().map(String::from).collect()
}

/// `reason: message` of each event about `pod`.
async fn events(k: &Kubectl, pod: &str) -> Vec<String> {
    let selector = format!("involvedObject.name={pod}");
    let out = k
        .ok(&[
            "get",
            "events",
            "--field-selector",
            &selector,
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
        ])
        .await;
    out.lines().map(String::from).collect()
}

/// The spec's grace period by default; `preStop` before SIGTERM; the pod Terminating
/// meanwhile; SIGKILL for a container that ignores SIGTERM; then the node's final status.
async fn hooks_sigterm_and_sigkill(k: &Kubectl) {
    let mut watch = k.stream(&["get", "pods", "graceful", "-w"]);
    watch
        .until(|line| line.starts_with("graceful 2/2 Running "))
        .await;
    let mut logs = k.stream(&["logs", "-f", "graceful", "-c", "trapper"]);
    logs.until(|line| line == "started").await;

    assert_eq!(
        k.ok(&["delete", "pod", "graceful", "--wait=false"]).await,
        "pod \"graceful\" deleted\n"
    );
    let terminating = watch.until(|line| line.contains(" Terminating ")).await;
    assert!(
        terminating[terminating.len() - 1].starts_with("graceful 2/2 Terminating "),
        "{terminating:?}"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "graceful",
            "-o",
            "jsonpath={.metadata.deletionGracePeriodSeconds}"
        ])
        .await,
        "3",
        "the spec's terminationGracePeriodSeconds"
    );
    // The hook's file is there when SIGTERM comes: the hook ran first, and SIGTERM came
    // although the hook never ended, its time taken from the grace period.
    assert_eq!(
        logs.until(|line| line == "got SIGTERM").await,
        ["preStop ran", "got SIGTERM"]
    );
    logs.stop().await;

    // The node writes the final status before deleting the pod, which the finalizer holds.
    k.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Failed",
        "pod/graceful",
        "--timeout=60s",
    ])
    .await;
    let ended: BTreeSet<String> = ["stubborn=137/Error", "trapper=3/Error"]
        .map(String::from)
        .into();
    assert_eq!(terminations(k, "graceful").await, ended);
    let seen = events(k, "graceful").await;
    for wanted in [
        "Killing: Stopping container trapper",
        "Killing: Stopping container stubborn",
        "FailedPreStopHook: PreStopHook failed",
    ] {
        assert!(seen.iter().any(|e| e == wanted), "{wanted}: {seen:?}");
    }
    assert_eq!(
        seen.iter()
            .filter(|e| e.starts_with("FailedPreStopHook"))
            .count(),
        1,
        "only stubborn's hook failed: {seen:?}"
    );
    watch.stop().await;

    k.ok(&["patch", "pod", "graceful", "--type=json", "-p", UNHOLD])
        .await;
    k.ok(&["wait", "--for=delete", "pod/graceful", "--timeout=60s"])
        .await;
}

/// A second delete may shorten the grace period, never lengthen it; the node then kills
/// sooner (with 600 s, the last delete would time out).
async fn grace_period_only_shrinks(k: &Kubectl) {
    let period = || async {
        k.ok(&[
            "get",
            "pod",
            "slow",
            "-o",
            "jsonpath={.metadata.deletionGracePeriodSeconds}",
        ])
        .await
    };
    k.ok(&["delete", "pod", "slow", "--wait=false"]).await;
    assert_eq!(period().await, "600");
    k.ok(&[
        "delete",
        "pod",
        "slow",
        "--grace-period=900",
        "--wait=false",
    ])
    .await;
    assert_eq!(period().await, "600", "a longer period is ignored");
    assert_eq!(
        k.ok(&["delete", "pod", "slow", "--grace-period=1", "--timeout=60s"])
            .await,
        "pod \"slow\" deleted\n"
    );
    let killing = events(k, "slow")
        .await
        .into_iter()
        .filter(|e| e == "Killing: Stopping container stubborn")
        .count();
    assert!(killing >= 1, "the node stopped it");
}

/// `--grace-period=0 --force`: kubectl's warning, the pod object gone at once, and the node
/// still stopping the container, which gets its SIGTERM.
async fn forced_deletion(k: &Kubectl) {
    let mut logs = k.stream(&["logs", "-f", "forced"]);
    logs.until(|line| line == "started").await;
    let out = k
        .run(&["delete", "pod", "forced", "--grace-period=0", "--force"])
        .await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "Warning: Immediate deletion does not wait for confirmation that the running resource \
         has been terminated. The resource may continue to run on the cluster indefinitely.\n"
    );
    assert_eq!(out.stdout, "pod \"forced\" force deleted\n");
    assert_eq!(
        k.fails(&["get", "pod", "forced"]).await,
        "Error from server (NotFound): pods \"forced\" not found\n"
    );
    assert_eq!(
        logs.until(|line| line == "got SIGTERM").await,
        ["got SIGTERM"]
    );
    logs.stop().await;
}
