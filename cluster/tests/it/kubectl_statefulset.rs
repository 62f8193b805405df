//! StatefulSet updates with the real kubectl 1.33 on the embedded cluster, as the upstream
//! "StatefulSet Basics" tutorial does them: staging an update behind a partition (a pod below
//! it, deleted, comes back on the old revision), a canary, the phased roll-out, the revision
//! history and `rollout undo|restart`, and the OnDelete strategy, including kube-apiserver's
//! 422 for OnDelete patched over the defaulted rollingUpdate. Needs root and
//! `scripts/install-deps`, as the other embedded-cluster tests do.
//!
//! Every wait is one kubectl itself does (`rollout status`, `wait --for=…`), so nothing here
//! depends on how fast the cluster is.

use crate::support;

use std::path::Path;

use support::kubectl::{Kubectl, redact};

const OLD_IMAGE: &str = "nginx";
const NEW_IMAGE: &str = "registry.k8s.io/nginx-slim:0.24";

fn web_yaml() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests/statefulset-dns/web.yaml")
        .display()
        .to_string()
}

/// `kubectl patch statefulset web` with a strategic-merge patch that sets the partition.
async fn set_partition(k: &Kubectl, partition: u32) {
    let patch = format!(
        r#"{{"spec":{{"updateStrategy":{{"type":"RollingUpdate","rollingUpdate":{{"partition":{partition}}}}}}}}}"#
    );
    assert_eq!(
        k.ok(&["patch", "statefulset", "web", "-p", &patch]).await,
        "statefulset.apps/web patched\n"
    );
}

/// The tutorial's JSON patch of the first container's image.
async fn set_image(k: &Kubectl, image: &str) {
    let patch = format!(
        r#"[{{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"{image}"}}]"#
    );
    assert_eq!(
        k.ok(&["patch", "statefulset", "web", "--type=json", "-p", &patch])
            .await,
        "statefulset.apps/web patched\n"
    );
}

/// `name image revision` of each pod, sorted by name.
async fn pods(k: &Kubectl) -> Vec<String> {
    let out = k
        .ok(&[
            "get",
            "pod",
            "-l",
            "app=nginx",
            "--sort-by=.metadata.name",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.spec.containers[0].image} {.metadata.labels.controller-revision-hash}{\"\\n\"}{end}",
        ])
        .await;
    out.lines().map(String::from).collect()
}

/// `current update` revision names from the set's status.
async fn revisions(k: &Kubectl) -> (String, String) {
    let out = k
        .ok(&[
            "get",
            "statefulset",
            "web",
            "-o",
            "jsonpath={.status.currentRevision} {.status.updateRevision}",
        ])
        .await;
    let (current, update) = out.split_once(' ').unwrap_or_default();
    (current.to_string(), update.to_string())
}

async fn rollout_status(k: &Kubectl) -> String {
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=180s"])
        .await
}

/// Deletes `pod` (kubectl waits until it is gone) and waits for its successor to be Ready.
async fn delete_and_wait_for_successor(k: &Kubectl, pod: &str) {
    k.ok(&["delete", "pod", pod]).await;
    let name = format!("pod/{pod}");
    k.ok(&["wait", "--for=create", &name, "--timeout=120s"])
        .await;
    k.ok(&["wait", "--for=condition=Ready", &name, "--timeout=180s"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_updates_as_in_the_upstream_tutorial() {
    let _turn = crate::support::cluster_turn().await;
    let scratch = support::scratch_dir("kubectl-statefulset");
    let (cluster, kubeconfig) = support::start_cluster(&scratch).await;
    let k = Kubectl::new(33, &kubeconfig, &scratch);
    k.ok(&["apply", "-f", &web_yaml()]).await;
    let (first, _) = rolled_out_with_one_revision(&k).await;
    let second = staged_then_canary(&k, &first).await;
    phased_roll_out_history_and_undo(&k, &first, &second).await;
    on_delete(&k).await;
    cluster.stop().await.expect("the cluster stops cleanly");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// A new set: every pod on revision 1, which is both current and update revision.
async fn rolled_out_with_one_revision(k: &Kubectl) -> (String, String) {
    let done = rollout_status(k).await;
    assert!(
        done.ends_with("partitioned roll out complete: 3 new pods have been updated...\n"),
        "{done}"
    );
    let (current, update) = revisions(k).await;
    assert_eq!(current, update);
    let hash = update.strip_prefix("web-").unwrap_or_default();
    assert!(!hash.is_empty(), "named <set>-<hash>: {update}");
    assert_eq!(
        pods(k).await,
        ["web-0", "web-1", "web-2"].map(|pod| format!("{pod} {OLD_IMAGE} {update}"))
    );
    let listed = k
        .ok(&[
            "get",
            "controllerrevisions",
            "-l",
            "app=nginx",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.revision} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}{\"\\n\"}{end}",
        ])
        .await;
    assert_eq!(listed, format!("{update} 1 StatefulSet/web\n"));
    // The table kube-apiserver prints for them: the controller as `kind.group/name`.
    let table = k
        .ok(&["get", "controllerrevisions", "-l", "app=nginx"])
        .await;
    assert_eq!(
        redact(&table),
        [
            "NAME CONTROLLER REVISION AGE".to_string(),
            format!("{update} statefulset.apps/web 1 [AGE]"),
        ]
    );
    (current, update)
}

/// Partition 3 stages a new image: web-2, deleted, comes back on the old revision; partition
/// 2 makes web-2 the canary. Returns the new revision's name.
async fn staged_then_canary(k: &Kubectl, first: &str) -> String {
    set_partition(k, 3).await;
    set_image(k, NEW_IMAGE).await;
    assert_eq!(
        rollout_status(k).await,
        "partitioned roll out complete: 0 new pods have been updated...\n"
    );
    let (current, second) = revisions(k).await;
    assert_eq!(current, first);
    assert_ne!(second, first, "a new template is a new revision");

    delete_and_wait_for_successor(k, "web-2").await;
    assert_eq!(
        pods(k).await,
        ["web-0", "web-1", "web-2"].map(|pod| format!("{pod} {OLD_IMAGE} {first}")),
        "below the partition, a deleted pod comes back on the current revision"
    );

    set_partition(k, 2).await;
    assert!(
        rollout_status(k)
            .await
            .ends_with("partitioned roll out complete: 1 new pods have been updated...\n")
    );
    assert_eq!(
        pods(k).await,
        [
            format!("web-0 {OLD_IMAGE} {first}"),
            format!("web-1 {OLD_IMAGE} {first}"),
            format!("web-2 {NEW_IMAGE} {second}"),
        ],
        "web-2 is the canary"
    );
    assert_eq!(revisions(k).await, (first.to_string(), second.clone()));
    let described = redact(&k.ok(&["describe", "statefulset", "web"]).await);
    for event in [
        "Normal SuccessfulCreate [AGE] statefulset-controller create Pod web-0 in StatefulSet web successful",
        "Normal SuccessfulDelete [AGE] statefulset-controller delete Pod web-2 in StatefulSet web successful",
    ] {
        assert!(described.contains(&event.to_string()), "{described:#?}");
    }
    second
}

/// Partition 0 rolls every pod; the history lists both revisions; `rollout undo` restores
/// the first template (its revision renumbered 3) and `rollout restart` makes revision 4.
async fn phased_roll_out_history_and_undo(k: &Kubectl, first: &str, second: &str) {
    set_partition(k, 0).await;
    assert!(
        rollout_status(k)
            .await
            .ends_with("partitioned roll out complete: 3 new pods have been updated...\n")
    );
    assert_eq!(
        pods(k).await,
        ["web-0", "web-1", "web-2"].map(|pod| format!("{pod} {NEW_IMAGE} {second}"))
    );
    assert_eq!(revisions(k).await, (second.to_string(), second.to_string()));
    assert_eq!(
        redact(&k.ok(&["rollout", "history", "statefulset/web"]).await),
        [
            "statefulset.apps/web",
            "REVISION CHANGE-CAUSE",
            "1 <none>",
            "2 <none>",
            ""
        ]
    );
    let detail = redact(
        &k.ok(&["rollout", "history", "statefulset/web", "--revision=1"])
            .await,
    );
    assert_eq!(
        detail[0], "statefulset.apps/web with revision #1",
        "{detail:?}"
    );
    assert!(
        detail.contains(&format!("Image: {OLD_IMAGE}")),
        "the first template: {detail:?}"
    );

    assert_eq!(
        k.ok(&["rollout", "undo", "statefulset/web"]).await,
        "statefulset.apps/web rolled back\n"
    );
    rollout_status(k).await;
    assert_eq!(
        pods(k).await,
        ["web-0", "web-1", "web-2"].map(|pod| format!("{pod} {OLD_IMAGE} {first}")),
        "undo restores the first template, under its revision's name"
    );
    assert_eq!(
        redact(&k.ok(&["rollout", "history", "statefulset/web"]).await)[2..],
        ["2 <none>", "3 <none>", ""]
    );

    assert_eq!(
        k.ok(&["rollout", "restart", "statefulset/web"]).await,
        "statefulset.apps/web restarted\n"
    );
    rollout_status(k).await;
    let (current, update) = revisions(k).await;
    assert_eq!(current, update);
    assert_ne!(update, first, "the restart annotation is a new template");
    assert_eq!(
        redact(&k.ok(&["rollout", "history", "statefulset/web"]).await)[2..],
        ["2 <none>", "3 <none>", "4 <none>", ""]
    );
}

/// OnDelete patched over the defaulted rollingUpdate is invalid, as on kube-apiserver; with
/// rollingUpdate removed it is accepted, and pods take a new template only when deleted.
async fn on_delete(k: &Kubectl) {
    let refused = k
        .fails(&[
            "patch",
            "statefulset",
            "web",
            "-p",
            r#"{"spec":{"updateStrategy":{"type":"OnDelete"}}}"#,
        ])
        .await;
    assert_eq!(
        refused,
        "The StatefulSet \"web\" is invalid: spec.updateStrategy.rollingUpdate: Invalid value: \
         apps.RollingUpdateStatefulSetStrategy{Partition:0, MaxUnavailable:(*intstr.IntOrString)(nil)}: \
         only allowed for updateStrategy 'RollingUpdate'\n"
    );
    k.ok(&[
        "patch",
        "statefulset",
        "web",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null}}}"#,
    ])
    .await;
    let before = pods(k).await;
    set_image(k, NEW_IMAGE).await;
    let refused = k
        .fails(&["rollout", "status", "statefulset/web", "--timeout=10s"])
        .await;
    assert_eq!(
        refused,
        "error: rollout status is only available for RollingUpdate strategy type\n"
    );
    delete_and_wait_for_successor(k, "web-1").await;
    let (_, update) = revisions(k).await;
    let after = pods(k).await;
    assert_eq!(after[0], before[0], "web-0 is kept");
    assert_eq!(after[2], before[2], "web-2 is kept");
    assert_eq!(after[1], format!("web-1 {NEW_IMAGE} {update}"));
}
