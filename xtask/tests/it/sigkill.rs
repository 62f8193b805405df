//! `kill -9` of `cargo xtask cluster up`: the cluster runs no cleanup, yet none of its
//! containers outlives it (the node's watchdog kills them when the process's pipe closes), and
//! the next start removes what it left. Prints how long the container took to go. Needs root.

use crate::common;

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};

/// Guards against a hang; never a timed assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// The host PID of the init process of runc container `id` of any cluster instance.
fn container_pid(id: &str) -> Option<i32> {
    let instances = std::fs::read_dir(k8s_labs_cluster::RUN_ROOT).ok()?;
    instances.filter_map(Result::ok).find_map(|instance| {
        let state: PathBuf = instance.path().join("runc").join(id).join("state.json");
        let state: serde_json::Value = serde_json::from_slice(&std::fs::read(state).ok()?).ok()?;
        state["init_process_pid"]
            .as_i64()
            .and_then(|pid| i32::try_from(pid).ok())
    })
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits until process `pid` (not our child) has exited, at most `guard`: a pidfd becomes
/// readable when it does. False if it still runs.
fn wait_for_exit(pid: i32, guard: Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let Ok(fd) = i32::try_from(fd) else {
        return !alive(pid);
    };
    if fd < 0 {
        return !alive(pid);
    }
    // SAFETY: `fd` is a descriptor pidfd_open just returned to us alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let timeout = i32::try_from(guard.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut poll, 1, timeout) == 1 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_container_outlives_a_killed_cluster() {
    let _turn = common::cluster_turn().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("xtask-sigkill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let mut cluster = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["cluster", "up", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(cluster.stdout.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("the cluster prints that it runs")
            .unwrap();
        if line.starts_with("embedded cluster running") {
            break;
        }
    }
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "survivor"},
        "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let running = tokio::time::timeout(
        HANG_GUARD,
        await_condition(pods.clone(), "survivor", conditions::is_pod_running()),
    )
    .await
    .expect("the pod runs")
    .unwrap()
    .unwrap();
    let container_id = running.status.unwrap().container_statuses.unwrap()[0]
        .container_id
        .clone()
        .unwrap();
    let pid = container_pid(container_id.trim_start_matches("runc://")).expect("its runc state");
    assert!(alive(pid));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(cluster.id()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let killed = Instant::now();
    let _ = cluster.wait();
    assert!(
        wait_for_exit(pid, HANG_GUARD),
        "nginx (pid {pid}) outlived the killed cluster"
    );
    eprintln!(
        "the container was gone {} ms after SIGKILL",
        killed.elapsed().as_millis()
    );

    // The next start removes what the killed one left (network namespaces, mounts, its
    // directory), and stops cleanly.
    let (next, _, next_dir) = common::start_cluster("sigkill-next").await;
    next.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&next_dir);
    let _ = std::fs::remove_dir_all(&dir);
}
