//! The v2 layout, on a directory standing in for the unified hierarchy (our machines run v1,
//! where the node's tests exercise the real thing): which files get which values, and the
//! path runc is given.

use std::path::{Path, PathBuf};

use super::*;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("k8s-labs-cgroups-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sys/system.slice")).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    dir
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn v2_limits_go_where_the_kernel_and_runc_read_them() {
    let root = scratch("v2");
    let hierarchies = Hierarchies::V2 {
        mount: root.join("sys"),
        dir: root.join("sys/system.slice"),
    };
    let node = NodeCgroups::create_in(hierarchies, &root.join("state"), "abc123").unwrap();
    let base = root.join("sys/system.slice/k8s-labs-abc123");
    assert_eq!(
        read(&root.join("state").join(RECORD_FILE)),
        format!("{}\n", base.display())
    );
    // Controllers enabled all the way down, so that the leaf runc makes can be limited.
    for dir in [root.join("sys/system.slice"), base.clone()] {
        assert_eq!(
            read(&dir.join("cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
    }
    let pod = node.create_pod("u1").unwrap();
    assert_eq!(
        read(&base.join("podu1/pids.max")),
        POD_PIDS_LIMIT.to_string()
    );
    let limits = ContainerLimits {
        memory_bytes: Some(64 << 20),
        cpu_limit_millis: Some(500),
        cpu_request_millis: Some(250),
    };
    let container = pod.create_container("web-0-c-0", &limits).unwrap();
    let holder = base.join("podu1/web-0-c-0");
    assert_eq!(read(&holder.join("memory.max")), (64u64 << 20).to_string());
    assert_eq!(read(&holder.join("memory.swap.max")), "0");
    assert_eq!(read(&holder.join("cpu.max")), "50000 100000");
    assert_eq!(read(&holder.join("cpu.weight")), "10");
    assert_eq!(
        read(&holder.join("cgroup.subtree_control")),
        "+memory +cpu +pids"
    );
    assert_eq!(
        container.runc_path(),
        "/system.slice/k8s-labs-abc123/podu1/web-0-c-0/runc"
    );
    // The kernel counts OOM kills of the subtree in the holder's memory.events.
    std::fs::write(holder.join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
    assert!(container.finish());
    let unlimited = pod
        .create_container("web-0-c-1", &ContainerLimits::default())
        .unwrap();
    let holder = base.join("podu1/web-0-c-1");
    assert!(!holder.join("memory.max").exists());
    assert!(!holder.join("cpu.max").exists());
    assert_eq!(read(&holder.join("cpu.weight")), "1");
    std::fs::write(holder.join("memory.events"), "oom 0\noom_kill 0\n").unwrap();
    assert!(!unlimited.finish());
    let _ = std::fs::remove_dir_all(&root);
}
