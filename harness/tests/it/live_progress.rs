//! The live line a terminal shows while a step waits, seen through a real pty: a step waits
//! for a pod whose image cannot be pulled (the tutorial's `example-image:latest`, as
//! replicaset-scale's erratum); the line says what it waits for and what the pod shows, and
//! changes as time passes; once the test replaces the pod with one of a real image the step
//! passes and its result takes the line's place. On the embedded cluster (needs root and
//! `scripts/install-deps`).

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};

use std::time::Duration;

use anyhow::Result;
use k8s_labs_harness::testing::start_embedded_cluster;
use k8s_labs_harness::{
    CancellationToken, Console, Lab, RunOptions, Step, StepContext, StepOutcome,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, ResourceExt};
use tokio::sync::watch;

/// Guards against a hang; never a timed assertion.
const HANG_GUARD: Duration = Duration::from_secs(120);
const WAITING: &str = "waiting for pod slow to be Running and Ready";

fn pod(image: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "slow", "labels": {"app": "slow"}},
        "spec": {"containers": [{"name": "web", "image": image, "imagePullPolicy": "IfNotPresent"}]}
    }))
    .expect("a valid pod")
}

async fn slow_step(ctx: StepContext) -> Result<StepOutcome> {
    Api::<Pod>::namespaced(ctx.client(), ctx.namespace())
        .create(&PostParams::default(), &pod("example-image:latest"))
        .await?;
    ctx.wait_pod_running_ready("slow").await?;
    Ok(StepOutcome::passed("pod/slow Running and Ready"))
}

/// A pty: the console writes to its terminal side; a thread reads everything shown, and
/// each read wakes whoever waits on the receiver.
fn open_pty() -> (File, watch::Receiver<Vec<u8>>) {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 200,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors; no name buffer, no termios, a valid winsize.
    let result = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(result, 0, "openpty");
    // SAFETY: both descriptors were just returned to us alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let (sink, shown) = watch::channel(Vec::new());
    std::thread::spawn(move || {
        let mut master = File::from(master);
        let mut buffer = [0u8; 4096];
        // Ends with EIO once the terminal side is closed.
        while let Ok(read) = master.read(&mut buffer) {
            if read == 0 {
                break;
            }
            sink.send_modify(|shown| shown.extend_from_slice(&buffer[..read]));
        }
    });
    (File::from(slave), shown)
}

fn text(shown: &watch::Receiver<Vec<u8>>) -> String {
    String::from_utf8_lossy(&shown.borrow()).into_owned()
}

/// The live frames drawn so far: the text after each line clear up to the next control,
/// without the spinner (which turns on its own).
fn frames(output: &str) -> Vec<String> {
    output
        .split("\x1b[2K")
        .skip(1)
        .map(|frame| {
            frame
                .split(['\r', '\n', '\x1b'])
                .next()
                .unwrap_or_default()
                .trim()
                .split_once(' ')
                .map_or(String::new(), |(_spinner, line)| line.to_string())
        })
        .filter(|frame| frame.contains(WAITING))
        .collect()
}

/// Waits until `done` holds of what the terminal showed, as the hang guard allows.
async fn until_shown(shown: &watch::Receiver<Vec<u8>>, what: &str, done: impl Fn(&str) -> bool) {
    let mut changes = shown.clone();
    let waited = tokio::time::timeout(
        HANG_GUARD,
        changes.wait_for(|bytes| done(&String::from_utf8_lossy(bytes))),
    )
    .await;
    assert!(
        waited.is_ok_and(|seen| seen.is_ok()),
        "never shown: {what}; shown:\n{:?}",
        text(shown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_step_shows_a_live_line_that_changes_and_gives_way_to_its_result() {
    let _turn = crate::support::one_cluster_at_a_time().await;
    let provider = start_embedded_cluster().await;
    let (terminal, shown) = open_pty();
    let console = Console::terminal(terminal);
    let lab = Lab::new("live-test", "a slow step", "manifests").step(Step::new(
        "slow pod",
        "kubectl apply -f slow.yaml",
        HANG_GUARD,
        slow_step,
    ));
    let cancel = CancellationToken::new();
    let run = {
        let provider = provider.clone();
        tokio::spawn(async move {
            lab.run_with(&provider, &console, &cancel, &RunOptions::default())
                .await
        })
    };

    // The line names the wait and the pod's failing pull, then changes (its clock moves on).
    until_shown(&shown, "the pull failure", |output| {
        frames(output).iter().any(|frame| {
            frame.contains("slow ErrImagePull") || frame.contains("slow ImagePullBackOff")
        })
    })
    .await;
    until_shown(&shown, "a changed line", |output| {
        let frames = frames(output);
        frames.windows(2).any(|pair| pair[0] != pair[1])
    })
    .await;

    // The fix: the pod again, from an image that exists.
    let namespace = text(&shown)
        .lines()
        .find_map(|line| {
            line.split("namespace ")
                .nth(1)
                .map(str::trim)
                .map(str::to_string)
        })
        .expect("the run names its namespace");
    let pods: Api<Pod> = Api::namespaced(provider.client(), &namespace);
    let broken = pods.get("slow").await.expect("the broken pod exists");
    pods.delete("slow", &DeleteParams::default().grace_period(0))
        .await
        .expect("the broken pod is deleted");
    let broken_uid = broken.uid().unwrap_or_default();
    let gone = await_condition(pods.clone(), "slow", conditions::is_deleted(&broken_uid));
    tokio::time::timeout(HANG_GUARD, gone)
        .await
        .expect("the broken pod goes away")
        .expect("the pod watch works");
    pods.create(&PostParams::default(), &pod("nginx"))
        .await
        .expect("the fixed pod is created");

    let report = tokio::time::timeout(HANG_GUARD, run)
        .await
        .expect("the run ends")
        .expect("the run does not panic");
    assert!(report.passed(), "{:?}", report.error);
    let output = text(&shown);
    let result = output.rfind("✓").expect("the step's result is shown");
    // The line was cleared before the result, and not drawn again after it.
    let before = &output[..result];
    let last_frame = before
        .rfind(WAITING)
        .expect("a live line before the result");
    assert!(before[last_frame..].contains("\x1b[2K"), "{before:?}");
    assert!(!output[result..].contains(WAITING), "{output:?}");
}
