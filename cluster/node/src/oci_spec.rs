//! The OCI runtime spec (`config.json`) of a container, as containerd's CRI plugin would write
//! it for a pod container: its own pid/ipc/uts/mount namespaces, the pod's network namespace by
//! path, the container-runtime default capabilities, the usual pseudo-filesystems and the
//! pod's bind mounts.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::security_context::{ProcessSecurity, Seccomp};
use crate::user_namespace::IdMapping;

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
    /// `linux.cgroupsPath` (see [`crate::cgroups::ContainerCgroup::runc_path`]); runc's default
    /// when `None`.
    pub cgroups_path: Option<String>,
    /// The pod's user namespace (pinned at the path) and its id map; the machine's when
    /// `None`.
    pub user_namespace: Option<(PathBuf, IdMapping)>,
    pub args: Vec<String>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    pub working_dir: String,
    pub hostname: String,
    pub netns_path: PathBuf,
    pub mounts: Vec<BindMount>,
    /// `size=` of the container's `/tmp` tmpfs, in bytes.
    pub tmp_size_bytes: u64,
    pub terminal: bool,
    /// User, groups, capabilities and the rest of the security context.
    pub security: ProcessSecurity,
}

/// System calls the runtime default seccomp profile refuses (with EPERM): those Docker's and
/// containerd's default profiles leave out, written here as a deny list over an allow-all
/// default. Calls unknown on this architecture are skipped by runc.
const SECCOMP_DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
];

/// The `linux.seccomp` section of the runtime default profile.
fn runtime_default_seccomp() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": SECCOMP_DENIED, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    })
}

/// Builds `config.json` for a bundle whose root filesystem is `rootfs`.
pub fn config_json(spec: &ContainerSpec, rootfs: &Path) -> Value {
    let security = &spec.security;
    let capabilities = &security.capabilities;
    // A privileged container may write /sys (still in its own mount namespace).
    let sys_access = if security.privileged { "rw" } else { "ro" };
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
               "options": ["nosuid", "noexec", "nodev", sys_access]}),
        json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=755"]}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=1777", format!("size={}", spec.tmp_size_bytes)]}),
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
    let mut config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": spec.terminal,
            "user": {
                "uid": security.uid,
                "gid": security.gid,
                "additionalGids": security.additional_gids,
            },
            "args": spec.args,
            "env": spec.env,
            "cwd": spec.working_dir,
            "capabilities": {
                "bounding": capabilities,
                "effective": capabilities,
                "permitted": capabilities,
            },
            "noNewPrivileges": security.no_new_privileges,
        },
        "root": {"path": rootfs, "readonly": security.read_only_root},
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
        },
    });
    if !security.privileged {
        config["linux"]["maskedPaths"] = json!([
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
        ]);
        config["linux"]["readonlyPaths"] = json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ]);
    }
    if let Some(path) = &spec.cgroups_path {
        config["linux"]["cgroupsPath"] = json!(path);
    }
    if let Some((path, mapping)) = &spec.user_namespace {
        // runc joins a user namespace first and the others from inside it (the pod's network
        // namespace is owned by it); it reads the maps to know who root is.
        if let Some(namespaces) = config["linux"]["namespaces"].as_array_mut() {
            namespaces.insert(0, json!({"type": "user", "path": path}));
        }
        let map = json!([{"containerID": mapping.container_id, "hostID": mapping.host_id,
                          "size": mapping.size}]);
        config["linux"]["uidMappings"] = map.clone();
        config["linux"]["gidMappings"] = map;
    }
    if security.seccomp == Seccomp::RuntimeDefault {
        config["linux"]["seccomp"] = runtime_default_seccomp();
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_the_pod_network_and_grants_the_runtime_default_capabilities() {
        let spec = ContainerSpec {
            cgroups_path: None,
            user_namespace: None,
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
            tmp_size_bytes: 64 << 20,
            terminal: false,
            security: ProcessSecurity::default(),
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
        let tmp = config["mounts"][7].clone();
        assert_eq!(tmp["destination"], "/tmp");
        assert_eq!(tmp["options"][3], "size=67108864");
        assert_eq!(config["process"]["user"]["uid"], 0);
        assert!(config["linux"].get("seccomp").is_none());
        assert_eq!(config["linux"]["maskedPaths"][0], "/proc/acpi");
    }
}
