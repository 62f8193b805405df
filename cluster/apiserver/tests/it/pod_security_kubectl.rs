//! Pod Security admission as the real kubectl shows it (the newest and oldest kubectl
//! installed), against the API server alone: admission happens before any node would run a
//! pod, so no node is needed.

use crate::support::kubectl::Kubectl;
use k8s_labs_apiserver::testing::TestApiServer;

/// The newest and oldest supported kubectl (minor versions of 1.x).
const KUBECTLS: &[u32] = &[33, 27];

const HOST_PATH_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: c
    image: nginx
    volumeMounts:
    - name: h
      mountPath: /host
  volumes:
  - name: h
    hostPath:
      path: /
";

const PLAIN_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: c
    image: nginx
";

const STATEFULSET: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 1
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: c
        image: nginx
";

/// What restricted says about `PLAIN_POD`, in upstream's order and words.
const RESTRICTED_DETAIL: &str = "allowPrivilegeEscalation != false (container \"c\" must set \
    securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" \
    must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or \
    container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or \
    container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \
    \"Localhost\")";

/// A namespace of its own for each kubectl and scenario: `<scenario>-<kubectl minor>`.
async fn namespace(kubectl: &Kubectl, scenario: &str, labels: &[&str]) -> String {
    let minor = kubectl.binary.rsplit('.').next().unwrap_or("x");
    let name = format!("{scenario}-{minor}");
    kubectl.ok(&["create", "namespace", &name]).await;
    if !labels.is_empty() {
        let mut args = vec!["label", "namespace", name.as_str()];
        args.extend(labels);
        let (stdout, stderr) = kubectl.ok(&args).await;
        assert_eq!(stdout, format!("namespace/{name} labeled\n"));
        assert_eq!(stderr, "", "no pods, no warnings");
    }
    name
}

/// (a) enforce=baseline refuses a hostPath pod with kube-apiserver's message, as kubectl
/// prints a refused create.
async fn enforce_refuses(kubectl: &Kubectl) {
    let ns = namespace(
        kubectl,
        "enforce",
        &["pod-security.kubernetes.io/enforce=baseline"],
    )
    .await;
    let manifest = kubectl.manifest("host-path.yaml", HOST_PATH_POD);
    let run = kubectl.run(&["apply", "-n", &ns, "-f", &manifest]).await;
    assert!(!run.success, "{}", run.stdout);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        format!(
            "Error from server (Forbidden): error when creating \"{manifest}\": pods \"p\" is \
             forbidden: violates PodSecurity \"baseline:latest\": hostPath volumes (volume \"h\")\n"
        )
    );
    let forbidden = "pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": \
        hostPath volumes (volume \"h\")";
    // Server-side apply creates through its own path.
    let run = kubectl
        .run(&["apply", "--server-side", "-n", &ns, "-f", &manifest])
        .await;
    assert!(!run.success);
    assert_eq!(
        run.stderr,
        format!("Error from server (Forbidden): {forbidden}\n")
    );
    let missing = kubectl.run(&["get", "pod", "p", "-n", &ns]).await;
    assert!(!missing.success, "the pod was not stored");
    // A pod that meets baseline is created.
    let plain = kubectl.manifest("plain.yaml", PLAIN_POD);
    let (stdout, stderr) = kubectl.ok(&["apply", "-n", &ns, "-f", &plain]).await;
    assert_eq!((stdout.as_str(), stderr.as_str()), ("pod/p created\n", ""));
    // Updates that add the hostPath volume are refused too, PUT and PATCH: with a 422
    // before admission runs, as kube-apiserver refuses them, since a pod's volumes cannot
    // change.
    let immutable = "The Pod \"p\" is invalid: spec: Forbidden: pod updates may not change \
        fields other than `spec.containers[*].image`,";
    let run = kubectl.run(&["replace", "-n", &ns, "-f", &manifest]).await;
    assert!(!run.success);
    assert!(run.stderr.starts_with(immutable), "{}", run.stderr);
    assert!(run.stderr.contains("+ \tVolumes: ["), "{}", run.stderr);
    let patch =
        r#"[{"op":"add","path":"/spec/volumes","value":[{"name":"h","hostPath":{"path":"/"}}]}]"#;
    let run = kubectl
        .run(&["patch", "pod", "p", "-n", &ns, "--type=json", "-p", patch])
        .await;
    assert!(!run.success);
    assert!(run.stderr.starts_with(immutable), "{}", run.stderr);
}

/// (b) warn=restricted creates the pod and kubectl prints the warning.
async fn warn_warns(kubectl: &Kubectl) {
    let ns = namespace(
        kubectl,
        "warn",
        &["pod-security.kubernetes.io/warn=restricted"],
    )
    .await;
    let manifest = kubectl.manifest("plain.yaml", PLAIN_POD);
    let (stdout, stderr) = kubectl.ok(&["apply", "-n", &ns, "-f", &manifest]).await;
    assert_eq!(stdout, "pod/p created\n");
    assert_eq!(
        stderr,
        format!("Warning: would violate PodSecurity \"restricted:latest\": {RESTRICTED_DETAIL}\n")
    );
}

/// (c) a StatefulSet in an enforce=restricted namespace is created, with the warning that
/// its pods would be refused (warn follows the stricter enforce level).
async fn workloads_are_warned(kubectl: &Kubectl) {
    let ns = namespace(
        kubectl,
        "workload",
        &[
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=v1.33",
        ],
    )
    .await;
    let manifest = kubectl.manifest("statefulset.yaml", STATEFULSET);
    let (stdout, stderr) = kubectl.ok(&["apply", "-n", &ns, "-f", &manifest]).await;
    assert_eq!(stdout, "statefulset.apps/web created\n");
    assert_eq!(
        stderr,
        format!("Warning: would violate PodSecurity \"restricted:v1.33\": {RESTRICTED_DETAIL}\n")
    );
    // A change to the template is warned again; `kubectl scale` (the /scale subresource) is not.
    let (_, stderr) = kubectl
        .ok(&["set", "image", "-n", &ns, "statefulset/web", "c=busybox"])
        .await;
    assert!(
        stderr.starts_with("Warning: would violate PodSecurity"),
        "{stderr}"
    );
    let (_, stderr) = kubectl
        .ok(&["scale", "-n", &ns, "statefulset/web", "--replicas=2"])
        .await;
    assert_eq!(stderr, "");
}

/// (d) labelling a namespace whose pods violate the new enforce level names them.
async fn existing_pods_are_named(kubectl: &Kubectl) {
    let ns = namespace(kubectl, "existing", &[]).await;
    let manifest = kubectl.manifest("plain.yaml", PLAIN_POD);
    kubectl.ok(&["apply", "-n", &ns, "-f", &manifest]).await;
    let (stdout, stderr) = kubectl
        .ok(&[
            "label",
            "namespace",
            &ns,
            "pod-security.kubernetes.io/enforce=restricted",
        ])
        .await;
    assert_eq!(stdout, format!("namespace/{ns} labeled\n"));
    assert_eq!(
        stderr,
        format!(
            "Warning: existing pods in namespace \"{ns}\" violate the new PodSecurity enforce \
             level \"restricted:latest\"\n\
             Warning: p: allowPrivilegeEscalation != false, unrestricted capabilities, \
             runAsNonRoot != true, seccompProfile\n"
        )
    );
    // The existing pod stays; a relabel to a value that is not a level is refused.
    let run = kubectl
        .run(&[
            "label",
            "namespace",
            &ns,
            "--overwrite",
            "pod-security.kubernetes.io/enforce=foo",
        ])
        .await;
    assert!(!run.success, "{}", run.stdout);
    assert_eq!(
        run.stderr,
        format!(
            "The Namespace \"{ns}\" is invalid: \
             metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"foo\": must \
             be one of privileged, baseline, restricted\n"
        )
    );
}

#[tokio::test]
async fn pod_security_admission_as_kubectl_shows_it() {
    let api = TestApiServer::start().await.unwrap();
    for minor in KUBECTLS {
        let kubectl = Kubectl::new(&api, "apiserver-pod-security", *minor);
        enforce_refuses(&kubectl).await;
        warn_warns(&kubectl).await;
        workloads_are_warned(&kubectl).await;
        existing_pods_are_named(&kubectl).await;
        kubectl.remove();
    }
    api.shutdown().await;
}
