//! `kubectl run dns-N -i --rm --restart=Never --image busybox:1.28 -- nslookup web-0.nginx`,
//! twenty times with every kubectl that attaches over WebSocket (1.30 … 1.33, and 1.29 with
//! `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true`), the five side by side, while another process
//! keeps a core busy: the answer must show every time, and no query may go unanswered (as one
//! did while the bridge changed its address under the pods). kubectl attaches once the pod
//! runs; nslookup may have printed its answer before that (the first attach of a `run -i`
//! container gets what was written before it), may print it during the handshake (the attach
//! joins the container before the upgrade), or may have ended (the attach is refused and
//! kubectl shows the log). Before these, about half of such runs printed nothing. Needs root,
//! as the other embedded-cluster tests do.

use crate::support;

use std::path::Path;
use std::process::Stdio;

use support::kubectl::Kubectl;

const RUNS: usize = 20;

/// A process that keeps one core busy, as a loaded CI machine is; killed (by its PID, which
/// this test started) when dropped.
struct BusyCore {
    _process: tokio::process::Child,
}

impl BusyCore {
    fn start() -> BusyCore {
        let child = tokio::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting a busy loop");
        BusyCore { _process: child }
    }
}

/// Runs the lookup `RUNS` times; the runs whose output lacks the answer, with what they printed.
async fn lookups(kubectl: &Kubectl, web_0_ip: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for run in 0..RUNS {
        let pod = format!("dns-{}-{run}", kubectl.minor);
        let output = kubectl
            .run(&[
                "run",
                &pod,
                "-i",
                "--rm",
                "--restart=Never",
                "--image",
                "busybox:1.28",
                "--",
                "nslookup",
                "web-0.nginx",
            ])
            .await;
        // nslookup prints ";; communications error …" for a query it got no answer to.
        let answered = output
            .stdout
            .contains("Name:\tweb-0.nginx.default.svc.cluster.local")
            && output.stdout.contains(&format!("Address: {web_0_ip}\n"))
            && !output.stdout.contains(";;");
        if !(output.success && answered) {
            failures.push(format!(
                "kubectl 1.{} run {run} (exit ok: {}):\n{}{}",
                kubectl.minor, output.success, output.stdout, output.stderr
            ));
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_i_shows_the_answer_every_time_under_load() {
    let _turn = crate::support::cluster_turn().await;
    let scratch = support::scratch_dir("kubectl-run-attach");
    let (cluster, kubeconfig) = support::start_cluster(&scratch).await;
    let newest = Kubectl::new(33, &kubeconfig, &scratch);
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/statefulset-dns/web.yaml");
    newest
        .ok(&["apply", "-f", &web.display().to_string()])
        .await;
    newest
        .ok(&["rollout", "status", "statefulset/web", "--timeout=180s"])
        .await;
    let web_0_ip = newest
        .ok(&["get", "pod", "web-0", "-o", "jsonpath={.status.podIP}"])
        .await;

    let kubectls = [
        Kubectl::new(29, &kubeconfig, &scratch)
            .with_env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "true"),
        Kubectl::new(30, &kubeconfig, &scratch),
        Kubectl::new(31, &kubeconfig, &scratch),
        Kubectl::new(32, &kubeconfig, &scratch),
        newest,
    ];
    let busy = BusyCore::start();
    // The kubectls run side by side, which loads the node and the API server more than one
    // run at a time would (and takes a fifth of the time).
    let runs = kubectls.iter().map(|kubectl| lookups(kubectl, &web_0_ip));
    let results = futures::future::join_all(runs).await;
    let mut failures = Vec::new();
    for (kubectl, failed) in kubectls.iter().zip(results) {
        eprintln!(
            "kubectl 1.{}: {} of {RUNS} runs showed the answer",
            kubectl.minor,
            RUNS - failed.len()
        );
        failures.extend(failed);
    }
    drop(busy);
    cluster.stop().await.expect("the cluster stops cleanly");
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        failures.is_empty(),
        "{} runs did not show the answer:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
