//! The OCI runtime spec (`config.json`) of a container, as containerd's CRI plugin would write
//! it for a pod container: its own pid/ipc/uts/mount namespaces, the pod's network namespace by
//! path, the container-runtime default capabilities, the usual pseudo-filesystems and the
//! pod's bind mounts.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The default capability set of containerd and Docker. runc's own default is smaller, and
/// with it nginx dies at once (`chown("/var/lib/nginx/body") … Operation not permitted`).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_SETFCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_MKNOD",
    "CAP_AUDIT_WRITE",
];

/// A bind mount into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

/// Everything that goes into one container's `config.json`.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub args: Vec<String>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    pub working_dir: String,
    pub hostname: String,
    pub netns_path: PathBuf,
    pub mounts: Vec<BindMount>,
    pub terminal: bool,
}

/// Builds `config.json` for a bundle whose root filesystem is `rootfs`.
pub fn config_json(spec: &ContainerSpec, rootfs: &Path) -> Value {
    let capabilities: Vec<&str> = DEFAULT_CAPABILITIES.to_vec();
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=755"]}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=1777"]}),
    ];
    for mount in &spec.mounts {
        let access = if mount.read_only { "ro" } else { "rw" };
        mounts.push(json!({
            "destination": mount.destination,
            "type": "bind",
            "source": mount.source,
            "options": ["rbind", "rprivate", access],
        }));
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": spec.terminal,
            "user": {"uid": 0, "gid": 0},
            "args": spec.args,
            "env": spec.env,
            "cwd": spec.working_dir,
            "capabilities": {
                "bounding": capabilities,
                "effective": capabilities,
                "permitted": capabilities,
            },
            "noNewPrivileges": false,
        },
        "root": {"path": rootfs, "readonly": false},
        "hostname": spec.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
                {"type": "network", "path": spec.netns_path},
            ],
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
            ],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_the_pod_network_and_grants_the_runtime_default_capabilities() {
        let spec = ContainerSpec {
            args: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
            env: vec!["PATH=/usr/bin".into()],
            working_dir: "/".into(),
            hostname: "web-0".into(),
            netns_path: PathBuf::from("/run/netns/k8s-labs-x-pod-1"),
            mounts: vec![BindMount {
                source: PathBuf::from("/run/k8s-labs/x/hosts"),
                destination: "/etc/hosts".into(),
                read_only: false,
            }],
            terminal: false,
        };
        let config = config_json(&spec, Path::new("/b/rootfs"));
        assert_eq!(config["hostname"], "web-0");
        assert_eq!(
            config["linux"]["namespaces"][4],
            json!({"type": "network", "path": "/run/netns/k8s-labs-x-pod-1"})
        );
        let effective = config["process"]["capabilities"]["effective"]
            .as_array()
            .unwrap();
        assert!(effective.contains(&json!("CAP_CHOWN")));
        assert_eq!(effective.len(), 14);
        let last_mount = config["mounts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last_mount["destination"], "/etc/hosts");
        assert_eq!(last_mount["type"], "bind");
    }
}
