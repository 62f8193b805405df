//! Deployments with the real kubectl on the embedded cluster, as the upstream Deployment
//! tutorials drive them: `apply`, `rollout status|history|undo|pause|resume|restart`,
//! `set image`, `scale`, `expose`, and `create deployment`. Needs root and
//! `scripts/install-deps`, as the other embedded-cluster tests do.
//!
//! Every wait is one kubectl itself does (`rollout status`, `wait --for=jsonpath`, a `-w`
//! watch), so nothing here depends on how fast the cluster is.

use crate::support;

use std::cell::RefCell;
use std::collections::BTreeMap;

use support::kubectl::{Kubectl, Stream, redact};

const SLIM: &str = "registry.k8s.io/nginx-slim:0.24";

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  strategy:
    rollingUpdate:
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx
        imagePullPolicy: IfNotPresent
";

const RECREATE: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: batch
spec:
  replicas: 2
  selector:
    matchLabels:
      app: batch
  strategy:
    type: Recreate
  template:
    metadata:
      labels:
        app: batch
    spec:
      containers:
      - name: nginx
        image: nginx
        imagePullPolicy: IfNotPresent
";

const STUCK: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: stuck
spec:
  replicas: 1
  progressDeadlineSeconds: 2
  selector:
    matchLabels:
      app: stuck
  template:
    metadata:
      labels:
        app: stuck
    spec:
      containers:
      - name: missing
        image: registry.invalid/missing:1
        imagePullPolicy: IfNotPresent
";

/// One line per pod event: name, deletionTimestamp, Ready, image.
const POD_LINE: &str = "jsonpath={.metadata.name},{.metadata.deletionTimestamp},{.status.conditions[?(@.type==\"Ready\")].status},{.spec.containers[0].image}{\"\\n\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rolls_deployments_as_on_a_real_cluster() {
    let _turn = crate::support::cluster_turn().await;
    let scratch = support::scratch_dir("kubectl-deployment");
    let (cluster, kubeconfig) = support::start_cluster(&scratch).await;
    let k = Kubectl::new(33, &kubeconfig, &scratch);
    let manifest = scratch.join("web.yaml");
    std::fs::write(&manifest, DEPLOYMENT).expect("write the Deployment manifest");
    let first = applied_and_rolled_out(&k, &manifest.display().to_string()).await;
    image_rolled_without_fewer_ready_pods(&k).await;
    history_and_undo(&k, &first).await;
    paused_and_resumed(&k).await;
    scaled_restarted_and_exposed(&k).await;
    let recreate = scratch.join("recreate.yaml");
    std::fs::write(&recreate, RECREATE).expect("write the Recreate manifest");
    recreated(&k, &recreate.display().to_string()).await;
    let stuck = scratch.join("stuck.yaml");
    std::fs::write(&stuck, STUCK).expect("write the stuck manifest");
    past_its_deadline(&k, &stuck.display().to_string()).await;
    created_with_kubectl_create(&k).await;
    cluster.stop().await.expect("the cluster stops cleanly");
    let _ = std::fs::remove_dir_all(&scratch);
}

async fn rollout_status(k: &Kubectl, deployment: &str) {
    let out = k
        .ok(&["rollout", "status", deployment, "--timeout=300s"])
        .await;
    let name = deployment.trim_start_matches("deployment/");
    assert!(
        out.ends_with(&format!("deployment \"{name}\" successfully rolled out\n")),
        "{out}"
    );
}

/// `kubectl wait --for=jsonpath=<condition> <object>`.
async fn wait_for(k: &Kubectl, condition: &str, object: &str) {
    let condition = format!("--for=jsonpath={condition}");
    k.ok(&["wait", &condition, object, "--timeout=120s"]).await;
}

async fn jsonpath(k: &Kubectl, object: &str, path: &str) -> String {
    k.ok(&["get", object, "-o", &format!("jsonpath={path}")])
        .await
}

/// `kubectl apply`, then the ReplicaSet the controller made: `web-<hash>`, labelled and
/// owned as upstream's. Returns its name.
async fn applied_and_rolled_out(k: &Kubectl, manifest: &str) -> String {
    assert_eq!(
        k.ok(&["apply", "-f", manifest]).await,
        "deployment.apps/web created\n"
    );
    rollout_status(k, "deployment/web").await;
    assert_eq!(
        redact(&k.ok(&["get", "deployment", "web"]).await),
        ["NAME READY UP-TO-DATE AVAILABLE AGE", "web 3/3 3 3 [AGE]"]
    );
    let set = jsonpath(k, "replicaset", "{.items[0].metadata.name}").await;
    let hash = jsonpath(
        k,
        &format!("replicaset/{set}"),
        "{.metadata.labels.pod-template-hash}",
    )
    .await;
    assert_eq!(set, format!("web-{hash}"));
    let owner = jsonpath(
        k,
        &format!("replicaset/{set}"),
        "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} {.metadata.ownerReferences[0].controller} {.metadata.ownerReferences[0].blockOwnerDeletion}",
    )
    .await;
    assert_eq!(owner, "Deployment/web true true");
    let annotations = jsonpath(k, &format!("replicaset/{set}"), "{.metadata.annotations}").await;
    let annotations: BTreeMap<String, String> =
        serde_json::from_str(&annotations).expect("annotations as JSON");
    assert_eq!(annotations["deployment.kubernetes.io/revision"], "1");
    assert_eq!(
        annotations["deployment.kubernetes.io/desired-replicas"],
        "3"
    );
    assert_eq!(annotations["deployment.kubernetes.io/max-replicas"], "4");
    let conditions = jsonpath(
        k,
        "deployment/web",
        "{range .status.conditions[*]}{.type}={.status}/{.reason}: {.message}{\"\\n\"}{end}",
    )
    .await;
    assert!(
        conditions.contains(
            "Available=True/MinimumReplicasAvailable: Deployment has minimum availability.\n"
        ),
        "{conditions}"
    );
    assert!(
        conditions.contains(&format!(
            "Progressing=True/NewReplicaSetAvailable: ReplicaSet \"{set}\" has successfully progressed.\n"
        )),
        "{conditions}"
    );
    let described = redact(&k.ok(&["describe", "deployment", "web"]).await);
    let scaled = format!(
        "Normal ScalingReplicaSet [AGE] deployment-controller Scaled up replica set {set} from 0 to 3"
    );
    assert!(described.contains(&scaled), "{described:#?}");
    set
}

/// Live pods (not being deleted) by name: (Ready, image).
type Pods = BTreeMap<String, (bool, String)>;

/// Applies one line of the pod watch to `pods`.
fn observe(pods: &mut Pods, line: &str) {
    let fields: Vec<&str> = line.split(',').collect();
    let [name, deleted, ready, image] = fields[..] else {
        panic!("unexpected watch line {line:?}");
    };
    if deleted.is_empty() {
        pods.insert(name.into(), (ready == "True", image.into()));
    } else {
        pods.remove(name);
    }
}

fn ready_count(pods: &Pods) -> usize {
    pods.values().filter(|(ready, _)| *ready).count()
}

/// `kubectl set image` with maxUnavailable 0: a watch of the pods never shows fewer than 3
/// Ready pods, from the first listing to the moment every pod runs the new image.
async fn image_rolled_without_fewer_ready_pods(k: &Kubectl) {
    let mut watch: Stream = k.stream(&["get", "pods", "-l", "app=web", "-w", "-o", POD_LINE]);
    let pods = RefCell::new(Pods::new());
    let listed = watch
        .until(|line| {
            observe(&mut pods.borrow_mut(), line);
            ready_count(&pods.borrow()) == 3
        })
        .await;
    assert_eq!(listed.len(), 3, "the three pods listed: {listed:?}");
    assert_eq!(
        k.ok(&["set", "image", "deployment/web", &format!("nginx={SLIM}")])
            .await,
        "deployment.apps/web image updated\n"
    );
    rollout_status(k, "deployment/web").await;
    let lowest = RefCell::new(usize::MAX);
    let seen = watch
        .until(|line| {
            let mut pods = pods.borrow_mut();
            observe(&mut pods, line);
            let ready = ready_count(&pods);
            lowest.replace_with(|low| (*low).min(ready));
            pods.len() == 3 && pods.values().all(|(ready, image)| *ready && image == SLIM)
        })
        .await;
    watch.stop().await;
    assert!(
        *lowest.borrow() >= 3,
        "fewer than 3 Ready pods during the rollout: {seen:#?}"
    );
    assert!(seen.len() >= 9, "three pods replaced one by one: {seen:#?}");
}

/// `rollout history` lists both revisions; `rollout undo` brings nginx back as revision 3.
async fn history_and_undo(k: &Kubectl, first: &str) {
    assert_eq!(
        redact(&k.ok(&["rollout", "history", "deployment/web"]).await),
        [
            "deployment.apps/web",
            "REVISION CHANGE-CAUSE",
            "1 <none>",
            "2 <none>",
            ""
        ]
    );
    assert_eq!(
        k.ok(&["rollout", "undo", "deployment/web"]).await,
        "deployment.apps/web rolled back\n"
    );
    rollout_status(k, "deployment/web").await;
    assert_eq!(
        jsonpath(
            k,
            "deployment/web",
            "{.spec.template.spec.containers[0].image}"
        )
        .await,
        "nginx"
    );
    assert_eq!(
        redact(&k.ok(&["rollout", "history", "deployment/web"]).await),
        [
            "deployment.apps/web",
            "REVISION CHANGE-CAUSE",
            "2 <none>",
            "3 <none>",
            ""
        ]
    );
    // The first ReplicaSet is the new one again, with its old revision remembered.
    let rs = format!("replicaset/{first}");
    assert_eq!(
        jsonpath(k, &rs, "{.metadata.annotations.deployment\\.kubernetes\\.io/revision} {.metadata.annotations.deployment\\.kubernetes\\.io/revision-history} {.spec.replicas}").await,
        "3 1 3"
    );
}

/// A paused Deployment takes a new template without rolling it; resumed, it rolls.
async fn paused_and_resumed(k: &Kubectl) {
    assert_eq!(
        k.ok(&["rollout", "pause", "deployment/web"]).await,
        "deployment.apps/web paused\n"
    );
    k.ok(&["set", "image", "deployment/web", &format!("nginx={SLIM}")])
        .await;
    wait_for(
        k,
        "{.status.conditions[?(@.type==\"Progressing\")].reason}=DeploymentPaused",
        "deployment/web",
    )
    .await;
    let generation = jsonpath(k, "deployment/web", "{.metadata.generation}").await;
    wait_for(
        k,
        &format!("{{.status.observedGeneration}}={generation}"),
        "deployment/web",
    )
    .await;
    // The template is revision 2's again, so its ReplicaSet is the new one (0 up to date),
    // but nothing scales while paused.
    assert_eq!(
        redact(&k.ok(&["get", "deployment", "web"]).await),
        ["NAME READY UP-TO-DATE AVAILABLE AGE", "web 3/3 0 3 [AGE]"]
    );
    let sets = jsonpath(
        k,
        "replicaset",
        "{range .items[*]}{.spec.template.spec.containers[0].image}={.spec.replicas}{\"\\n\"}{end}",
    )
    .await;
    let mut sets: Vec<&str> = sets.lines().collect();
    sets.sort_unstable();
    assert_eq!(
        sets,
        ["nginx=3", &format!("{SLIM}=0")],
        "nothing scaled while paused"
    );
    assert_eq!(
        k.ok(&["rollout", "resume", "deployment/web"]).await,
        "deployment.apps/web resumed\n"
    );
    rollout_status(k, "deployment/web").await;
    assert_eq!(
        jsonpath(
            k,
            "deployment/web",
            "{.status.conditions[?(@.type==\"Progressing\")].reason}"
        )
        .await,
        "NewReplicaSetAvailable"
    );
}

/// `kubectl scale`, `rollout restart` (a new revision of the same image), `expose`.
async fn scaled_restarted_and_exposed(k: &Kubectl) {
    assert_eq!(
        k.ok(&["scale", "deployment/web", "--replicas=1"]).await,
        "deployment.apps/web scaled\n"
    );
    wait_for(k, "{.status.replicas}=1", "deployment/web").await;
    rollout_status(k, "deployment/web").await;
    assert_eq!(
        redact(&k.ok(&["get", "deployment", "web"]).await),
        ["NAME READY UP-TO-DATE AVAILABLE AGE", "web 1/1 1 1 [AGE]"]
    );
    assert_eq!(
        k.ok(&["rollout", "restart", "deployment/web"]).await,
        "deployment.apps/web restarted\n"
    );
    rollout_status(k, "deployment/web").await;
    let restarted = jsonpath(
        k,
        "deployment/web",
        "{.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt} {.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
    )
    .await;
    let (at, revision) = restarted.split_once(' ').unwrap_or_default();
    assert!(at.ends_with('Z') || at.contains('+'), "{restarted}");
    assert_eq!(revision, "5", "{restarted}");
    assert_eq!(
        k.ok(&["expose", "deployment/web", "--port", "80"]).await,
        "service/web exposed\n"
    );
    assert_eq!(
        jsonpath(k, "service/web", "{.spec.selector}").await,
        "{\"app\":\"web\"}"
    );
    wait_for(k, "{.subsets[0].ports[0].port}=80", "endpoints/web").await;
}

/// Recreate: a watch of the pods never shows a pod of the new template while one of the old
/// is still there (being deleted counts as there, until it is gone).
async fn recreated(k: &Kubectl, manifest: &str) {
    assert_eq!(
        k.ok(&["apply", "-f", manifest]).await,
        "deployment.apps/batch created\n"
    );
    rollout_status(k, "deployment/batch").await;
    let mut watch = k.stream(&["get", "pods", "-l", "app=batch", "-w", "-o", POD_LINE]);
    let live = RefCell::new(Pods::new());
    watch
        .until(|line| {
            observe(&mut live.borrow_mut(), line);
            ready_count(&live.borrow()) == 2
        })
        .await;
    assert_eq!(
        k.ok(&["set", "image", "deployment/batch", &format!("nginx={SLIM}")])
            .await,
        "deployment.apps/batch image updated\n"
    );
    rollout_status(k, "deployment/batch").await;
    let seen = watch
        .until(|line| {
            let mut live = live.borrow_mut();
            observe(&mut live, line);
            live.len() == 2 && live.values().all(|(ready, image)| *ready && image == SLIM)
        })
        .await;
    watch.stop().await;
    // kubectl prints a deleted pod's last state when it is gone, so every line of an old
    // pod (its deletion last) comes before the first line of a new one.
    let first_new = seen.iter().position(|line| line.ends_with(SLIM));
    let last_old = seen.iter().rposition(|line| line.ends_with(",nginx"));
    assert!(
        matches!((first_new, last_old), (Some(new), Some(old)) if old < new),
        "old pods were still there when new ones came: {seen:#?}"
    );
    let old_deleted = seen
        .iter()
        .filter(|line| line.ends_with(",nginx") && !line.contains(",,"))
        .count();
    assert!(old_deleted >= 2, "both old pods deleted: {seen:#?}");
}

/// An image no registry has: the rollout makes no progress, and after
/// `progressDeadlineSeconds` the controller reports ProgressDeadlineExceeded, which ends
/// `kubectl rollout status` with kubectl's error.
async fn past_its_deadline(k: &Kubectl, manifest: &str) {
    assert_eq!(
        k.ok(&["apply", "-f", manifest]).await,
        "deployment.apps/stuck created\n"
    );
    let error = k
        .fails(&["rollout", "status", "deployment/stuck", "--timeout=300s"])
        .await;
    assert!(
        error.ends_with("error: deployment \"stuck\" exceeded its progress deadline\n"),
        "{error}"
    );
    let set = jsonpath(
        k,
        "deployment/stuck",
        "{.status.conditions[?(@.type==\"Progressing\")].message}",
    )
    .await;
    assert!(
        set.starts_with("ReplicaSet \"stuck-") && set.ends_with("\" has timed out progressing."),
        "{set}"
    );
    k.ok(&["delete", "deployment/stuck"]).await;
}

/// `kubectl create deployment` (kubectl 1.33 sends the Deployment as protobuf).
async fn created_with_kubectl_create(k: &Kubectl) {
    assert_eq!(
        k.ok(&[
            "create",
            "deployment",
            "hello",
            "--image=nginx",
            "--replicas=2"
        ])
        .await,
        "deployment.apps/hello created\n"
    );
    rollout_status(k, "deployment/hello").await;
    assert_eq!(
        redact(&k.ok(&["get", "deployment", "hello"]).await),
        ["NAME READY UP-TO-DATE AVAILABLE AGE", "hello 2/2 2 2 [AGE]"]
    );
}
