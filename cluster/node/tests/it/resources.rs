//! A container's `resources` are enforced with cgroups, not just accepted: a memory limit ends
//! a container that outgrows it as `OOMKilled` (exit 137, restarted with back-off), a fork
//! loop stops at the pod's pids limit, and the CPU limit and request are the CFS quota and
//! shares of the container's processes. Needs root, as the node does.

use crate::common;

use std::path::{Path, PathBuf};

use common::{Cluster, create_pod, delete_and_wait, first_container, run_to_end, wait_for};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::json;

fn busybox(
    name: &str,
    restart: &str,
    command: &str,
    resources: serde_json::Value,
) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": restart, "containers": [{
            "name": "main", "image": "busybox", "command": ["sh", "-c", command],
            "resources": resources}]},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_over_its_memory_limit_is_oom_killed() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let limits = json!({"limits": {"memory": "64Mi"}});

    // tail keeps the "line" it reads from /dev/zero, which never ends.
    let (ended, _) = run_to_end(
        &cluster,
        &pods,
        busybox("oom", "Never", "tail /dev/zero", limits.clone()),
    )
    .await;
    let terminated = first_container(Some(&ended))
        .and_then(|status| status.state)
        .and_then(|state| state.terminated)
        .expect("terminated");
    assert_eq!(
        (terminated.reason.as_deref(), terminated.exit_code),
        (Some("OOMKilled"), 137)
    );
    assert_eq!(
        ended.status.and_then(|s| s.phase).as_deref(),
        Some("Failed")
    );

    // Within its limit the same container runs on.
    let (fits, log) = run_to_end(
        &cluster,
        &pods,
        busybox(
            "fits",
            "Never",
            "head -c 16000000 /dev/zero | tail -c 1 | wc -c",
            limits.clone(),
        ),
    )
    .await;
    assert_eq!(log, "1\n");
    let completed = first_container(Some(&fits))
        .and_then(|status| status.state)
        .and_then(|state| state.terminated)
        .and_then(|terminated| terminated.reason);
    assert_eq!(completed.as_deref(), Some("Completed"));
    assert_eq!(
        fits.status.and_then(|s| s.phase).as_deref(),
        Some("Succeeded")
    );

    // Restarted per its restartPolicy, with the kubelet's back-off.
    let again = create_pod(
        &pods,
        busybox(
            "oom-again",
            "Always",
            "tail /dev/zero",
            json!({"limits": {"memory": "64Mi", "cpu": "500m"}}),
        ),
    )
    .await;
    let restarted = wait_for(&pods, "oom-again", |pod| {
        first_container(pod).is_some_and(|status| {
            let last = status.last_state.and_then(|s| s.terminated);
            let waiting = status.state.and_then(|s| s.waiting);
            status.restart_count >= 1
                && last
                    .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled") && t.exit_code == 137)
                && waiting.is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"))
        })
    })
    .await;
    let status = restarted.status.unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    // Requests default to the limits of cpu and memory: Guaranteed, also once the node has
    // reported the pod.
    assert_eq!(status.qos_class.as_deref(), Some("Guaranteed"));
    delete_and_wait(&cluster, &pods, &again).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_loop_stops_at_the_pods_pids_limit() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    // The subshell forks until a fork fails, and ends with that error. Counting and killing
    // then use builtins only: no process can be started while the pod is at its limit.
    let script = "(while :; do sleep 600 & done) 2>/dev/null; n=0; \
                  for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n; kill -9 -1";
    let (_, log) = run_to_end(
        &cluster,
        &pods,
        busybox("forks", "Never", script, json!({})),
    )
    .await;
    let processes: u64 = log.trim().parse().expect("a count");
    let limit = k8s_labs_node::POD_PIDS_LIMIT;
    assert!(
        (limit - 2..limit).contains(&processes),
        "{processes} processes under a pids limit of {limit}"
    );
    cluster.stop().await;
}

/// The cgroup directory, in the v1 hierarchy or v2 tree, of the node's cgroup that holds the
/// container process `pid` (the parent of runc's own).
fn container_cgroup(pid: &str, controller: &str) -> PathBuf {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let unified = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|line| line.contains(" /sys/fs/cgroup ") && line.contains(" - cgroup2 "));
    let (mount, path) = cgroups
        .lines()
        .find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            if unified {
                controllers
                    .is_empty()
                    .then(|| ("/sys/fs/cgroup".to_string(), path))
            } else {
                controllers
                    .split(',')
                    .any(|c| c == controller)
                    .then(|| (format!("/sys/fs/cgroup/{controller}"), path))
            }
        })
        .unwrap();
    let leaf = Path::new(&mount).join(path.trim_start_matches('/'));
    leaf.parent().unwrap().to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_and_memory_limits_are_the_container_cgroups() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let resources = json!({"requests": {"cpu": "250m", "memory": "32Mi"},
                           "limits": {"cpu": "500m", "memory": "64Mi"}});
    let pod = create_pod(
        &pods,
        busybox("limited", "Always", "echo $$ started; sleep 600", resources),
    )
    .await;
    wait_for(&pods, "limited", common::running_and_ready).await;
    // The container's pid 1, as the host sees it.
    let pid = common::container_pid(&cluster.state_dir, "limited").to_string();
    let read = |dir: PathBuf, file: &str| {
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    if container_cgroup(&pid, "memory").join("memory.max").exists() {
        let dir = container_cgroup(&pid, "memory");
        assert_eq!(read(dir.clone(), "memory.max"), (64u64 << 20).to_string());
        assert_eq!(read(dir.clone(), "cpu.max"), "50000 100000");
        assert_eq!(read(dir, "cpu.weight"), "10");
    } else {
        assert_eq!(
            read(container_cgroup(&pid, "memory"), "memory.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
        let cpu = container_cgroup(&pid, "cpu");
        assert_eq!(read(cpu.clone(), "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(cpu.clone(), "cpu.cfs_period_us"), "100000");
        assert_eq!(read(cpu, "cpu.shares"), "256");
    }
    delete_and_wait(&cluster, &pods, &pod).await;
    cluster.stop().await;
}
