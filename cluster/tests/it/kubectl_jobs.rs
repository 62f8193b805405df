//! batch/v1 Jobs and CronJobs with the real kubectl on the embedded cluster: a Job that runs
//! three pods two at a time to completion (`kubectl wait --for=condition=complete`,
//! `kubectl logs job/x`), a failing Job that ends Failed after its backoff limit, a CronJob
//! that creates its Job, and `kubectl create job|cronjob`, `create job --from=cronjob/x`
//! (which kubectl 1.33 sends as protobuf). Needs root and `scripts/install-deps`,
//! as the other embedded-cluster tests do.
//!
//! The cluster's controllers run with a clock 61 seconds ahead of the wall clock, so a
//! `*/1 * * * *` CronJob finds a run due as soon as it is created instead of at the next
//! minute (see `k8s_labs_controllers::Clock`). Every wait is one kubectl itself does.

use crate::support;

use k8s_labs_cluster::{Clock, ClusterConfig};
use support::kubectl::{Kubectl, redact};

const THREE: &str = "\
apiVersion: batch/v1
kind: Job
metadata:
  name: three
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: echo
        image: busybox:1.28
        command: [\"sh\", \"-c\", \"echo done\"]
";

const FAILING: &str = "\
apiVersion: batch/v1
kind: Job
metadata:
  name: failing
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: fail
        image: busybox:1.28
        command: [\"sh\", \"-c\", \"exit 3\"]
";

const HELLO: &str = "\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
spec:
  schedule: \"*/1 * * * *\"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: hello
            image: busybox:1.28
            command: [\"sh\", \"-c\", \"echo hello from the cronjob\"]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_runs_jobs_and_cronjobs() {
    let _turn = crate::support::cluster_turn().await;
    let scratch = support::scratch_dir("kubectl-jobs");
    let config = ClusterConfig {
        controller_clock: Clock::ahead_by(jiff::SignedDuration::from_secs(61)),
        ..ClusterConfig::default()
    };
    let (cluster, kubeconfig) = support::start_cluster_with(&scratch, config).await;
    let k = Kubectl::new(33, &kubeconfig, &scratch);
    let manifest = |name: &str, text: &str| {
        let path = scratch.join(name);
        std::fs::write(&path, text).expect("write a manifest");
        path.display().to_string()
    };
    job_completes(&k, &manifest("three.yaml", THREE)).await;
    job_fails_after_its_backoff_limit(&k, &manifest("failing.yaml", FAILING)).await;
    cronjob_creates_its_job(&k, &manifest("hello.yaml", HELLO)).await;
    kubectl_create_job_and_cronjob(&k).await;
    cluster.stop().await.expect("the cluster stops cleanly");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// completions 3, parallelism 2: three pods succeed, the Job is Complete, its logs say done.
async fn job_completes(k: &Kubectl, manifest: &str) {
    assert_eq!(
        k.ok(&["apply", "-f", manifest]).await,
        "job.batch/three created\n"
    );
    let waited = k
        .ok(&[
            "wait",
            "--for=condition=complete",
            "job/three",
            "--timeout=600s",
        ])
        .await;
    assert_eq!(waited, "job.batch/three condition met\n");
    let status = k
        .ok(&[
            "get",
            "job",
            "three",
            "-o",
            "jsonpath={.status.succeeded} {.status.ready} {.status.active}|{.status.conditions[*].type}",
        ])
        .await;
    assert_eq!(status, "3 0 |SuccessCriteriaMet Complete");
    let pods = k
        .ok(&[
            "get",
            "pods",
            "-l",
            "job-name=three",
            "-o",
            "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}",
        ])
        .await;
    assert_eq!(pods, "Succeeded\nSucceeded\nSucceeded\n");
    assert_eq!(k.ok(&["logs", "job/three"]).await, "done\n");
    let table = redact(&k.ok(&["get", "job", "three"]).await);
    assert_eq!(
        table[0], "NAME STATUS COMPLETIONS DURATION AGE",
        "{table:?}"
    );
    assert!(table[1].starts_with("three Complete 3/3 "), "{table:?}");
    let events = k
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=Job,involvedObject.name=three",
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
        ])
        .await;
    assert_eq!(
        events
            .matches("SuccessfulCreate: Created pod: three-")
            .count(),
        3,
        "{events}"
    );
    assert!(events.contains("Completed: Job completed"), "{events}");
}

/// backoffLimit 0: the first failed pod fails the Job with BackoffLimitExceeded. (With a
/// higher limit the replacement comes after upstream's 10 s backoff, which the Job
/// controller's tests cover: `a_failed_pod_is_replaced_after_its_backoff`.)
async fn job_fails_after_its_backoff_limit(k: &Kubectl, manifest: &str) {
    k.ok(&["apply", "-f", manifest]).await;
    let waited = k
        .ok(&[
            "wait",
            "--for=condition=failed",
            "job/failing",
            "--timeout=600s",
        ])
        .await;
    assert_eq!(waited, "job.batch/failing condition met\n");
    let failed = k
        .ok(&[
            "get",
            "job",
            "failing",
            "-o",
            "jsonpath={.status.failed} {.status.conditions[?(@.type==\"Failed\")].reason}: {.status.conditions[?(@.type==\"Failed\")].message}",
        ])
        .await;
    assert_eq!(
        failed,
        "1 BackoffLimitExceeded: Job has reached the specified backoff limit"
    );
    let table = redact(&k.ok(&["get", "job", "failing"]).await);
    assert!(table[1].starts_with("failing Failed 0/1 "), "{table:?}");
}

/// A CronJob every minute creates `hello-<minutes>`, which completes and leaves `active`.
async fn cronjob_creates_its_job(k: &Kubectl, manifest: &str) {
    assert_eq!(
        k.ok(&["apply", "-f", manifest]).await,
        "cronjob.batch/hello created\n"
    );
    let seen = k
        .watch_until(&["get", "jobs", "-w", "--no-headers"], |line| {
            line.starts_with("hello-")
        })
        .await;
    let job = seen
        .last()
        .and_then(|line| line.split(' ').next())
        .expect("a Job line")
        .to_string();
    let minutes = job.trim_start_matches("hello-");
    assert!(
        minutes.len() >= 8 && minutes.chars().all(|c| c.is_ascii_digit()),
        "{job}"
    );
    let reference = format!("job/{job}");
    k.ok(&[
        "wait",
        "--for=condition=complete",
        &reference,
        "--timeout=600s",
    ])
    .await;
    let owner = k
        .ok(&[
            "get",
            &reference,
            "-o",
            "jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}",
        ])
        .await;
    assert_eq!(owner, "CronJob/hello");
    let logs = k.ok(&["logs", &reference]).await;
    assert_eq!(logs, "hello from the cronjob\n");
    let table = redact(&k.ok(&["get", "cronjob", "hello"]).await);
    assert_eq!(
        table[0], "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE",
        "{table:?}"
    );
    assert!(
        table[1].starts_with("hello */1 * * * * <none> False "),
        "{table:?}"
    );
}

/// `kubectl create job`, `create cronjob` and `create job --from=cronjob/x` (protobuf bodies).
async fn kubectl_create_job_and_cronjob(k: &Kubectl) {
    let created = k
        .ok(&["create", "job", "j", "--image=busybox:1.28", "--", "true"])
        .await;
    assert_eq!(created, "job.batch/j created\n");
    k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/j",
        "--timeout=600s",
    ])
    .await;
    let created = k
        .ok(&[
            "create",
            "cronjob",
            "cj",
            "--image=busybox:1.28",
            "--schedule=*/5 * * * *",
            "--",
            "true",
        ])
        .await;
    assert_eq!(created, "cronjob.batch/cj created\n");
    let created = k
        .ok(&["create", "job", "manual", "--from=cronjob/cj"])
        .await;
    assert_eq!(created, "job.batch/manual created\n");
    k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/manual",
        "--timeout=600s",
    ])
    .await;
    let annotation = k
        .ok(&[
            "get",
            "job",
            "manual",
            "-o",
            "jsonpath={.metadata.annotations.cronjob\\.kubernetes\\.io/instantiate}",
        ])
        .await;
    assert_eq!(annotation, "manual");
}
