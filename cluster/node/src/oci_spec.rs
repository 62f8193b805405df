//! The OCI runtime spec (`config.json`) of a container, as containerd's CRI plugin would write
//! it for a pod container: its own pid/ipc/uts/mount namespaces, the pod's network namespace by
//! path, the container-runtime default capabilities, the usual pseudo-filesystems and the
//! pod's bind mounts. Built as oci-spec's typed [`Spec`], every section set explicitly: its
//! builders start from `Default` impls that describe a different container (a shell with an
//! rlimit, default masked paths, inheritable and ambient capabilities), and runc applies
//! whatever it finds.

use std::path::{Path, PathBuf};

use ::oci_spec::runtime::{
    Capabilities, Capability, Linux, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder,
    LinuxDeviceCgroupBuilder, LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespace,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, LinuxSeccomp,
    LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder, Mount, MountBuilder, Process,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use anyhow::{Context, Result};

use crate::security_context::{ProcessSecurity, Seccomp};
use crate::user_namespace::IdMapping;

/// The runtime spec version written, the one runc 1.1 implements.
const OCI_VERSION: &str = "1.0.2";

/// A bind mount into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// The file or directory on the node.
    pub source: PathBuf,
    /// Where it appears in the container.
    pub destination: String,
    /// Mounted `ro` rather than `rw`.
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
    /// The command and its arguments (`process.args`).
    pub args: Vec<String>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    /// `process.cwd`, inside the container.
    pub working_dir: String,
    /// The hostname in the container's own UTS namespace.
    pub hostname: String,
    /// The pod's network namespace, which the container joins.
    pub netns_path: PathBuf,
    /// Bind mounts after the pseudo-filesystems, in this order.
    pub mounts: Vec<BindMount>,
    /// `size=` of the container's `/tmp` tmpfs, in bytes.
    pub tmp_size_bytes: u64,
    /// Whether runc gives the process a pseudo-terminal (`tty: true`).
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

/// Kernel files a container must not read (containerd's defaults), unless privileged.
const MASKED_PATHS: &[&str] = &[
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
];

/// Kernel files a container may read but not write (containerd's defaults), unless privileged.
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The errno of a denied system call: EPERM, as Docker's and containerd's profiles return.
const SECCOMP_ERRNO: u32 = 1;

/// Builds the runtime spec for a bundle whose root filesystem is `rootfs`; the caller writes
/// it as the bundle's `config.json`.
pub fn runtime_spec(spec: &ContainerSpec, rootfs: &Path) -> Result<Spec> {
    let root = RootBuilder::default()
        .path(rootfs)
        .readonly(spec.security.read_only_root)
        .build()?;
    let mut config = SpecBuilder::default()
        .version(OCI_VERSION)
        .process(process(spec)?)
        .root(root)
        .hostname(spec.hostname.clone())
        .mounts(mounts(spec)?)
        .linux(linux(spec)?)
        .build()
        .context("building the OCI runtime spec")?;
    // The builder starts from `Spec::default()`, which adds empty annotations; clear every
    // section this container does not have, so a newer oci-spec's defaults cannot leak in.
    config
        .set_domainname(None)
        .set_hooks(None)
        .set_annotations(None)
        .set_solaris(None)
        .set_windows(None)
        .set_vm(None)
        .set_zos(None);
    Ok(config)
}

/// The `process` section: what runs, as whom, with which capabilities.
fn process(spec: &ContainerSpec) -> Result<Process> {
    let security = &spec.security;
    let user = UserBuilder::default()
        .uid(security.uid)
        .gid(security.gid)
        .additional_gids(security.additional_gids.clone())
        .build()?;
    let mut process = ProcessBuilder::default()
        .terminal(spec.terminal)
        .user(user)
        .args(spec.args.clone())
        .env(spec.env.clone())
        .cwd(&spec.working_dir)
        .capabilities(capabilities(&security.capabilities)?)
        .no_new_privileges(security.no_new_privileges)
        .build()?;
    // `Process::default()` is the builder's base: its RLIMIT_NOFILE of 1024 would lower the
    // limit the container inherits from the node, and AppArmor/SELinux labels or a scheduler
    // would be applied by runc; none of them is ours.
    process
        .set_console_size(None)
        .set_command_line(None)
        .set_rlimits(None)
        .set_apparmor_profile(None)
        .set_oom_score_adj(None)
        .set_selinux_label(None)
        .set_io_priority(None)
        .set_scheduler(None)
        .set_exec_cpu_affinity(None);
    Ok(process)
}

/// The bounding, effective and permitted sets, each `names`; no inheritable or ambient set.
fn capabilities(names: &[String]) -> Result<LinuxCapabilities> {
    let set: Capabilities = names.iter().filter_map(|name| capability(name)).collect();
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .build()?;
    // `LinuxCapabilities::default()` is the builder's base and grants AUDIT_WRITE, KILL and
    // NET_BIND_SERVICE as inheritable and ambient: ambient ones survive exec for a non-root
    // user, who must get none (as with containerd).
    capabilities.set_inheritable(None).set_ambient(None);
    Ok(capabilities)
}

/// The capability named `name` (`CAP_` prefixed), or `None` for a name oci-spec does not
/// know. Such a name (a typo in `capabilities.add`, or one newer than this node) is left out
/// with a warning: runc 1.1 ignores unknown capabilities with a warning too, so the container
/// is the one it would have been with the name written.
fn capability(name: &str) -> Option<Capability> {
    let bare = name.strip_prefix("CAP_").unwrap_or(name);
    match bare.parse() {
        Ok(capability) => Some(capability),
        Err(_) => {
            tracing::warn!(capability = name, "unknown capability: not granted");
            None
        }
    }
}

/// The pseudo-filesystems every container gets, then the pod's bind mounts, in that order.
fn mounts(spec: &ContainerSpec) -> Result<Vec<Mount>> {
    // A privileged container may write /sys (still in its own mount namespace).
    let sys_access = if spec.security.privileged { "rw" } else { "ro" };
    let tmp_size = format!("size={}", spec.tmp_size_bytes);
    let pseudo: [(&str, &str, &str, &[&str]); 8] = [
        ("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        (
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        (
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        (
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        (
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        (
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_access],
        ),
        ("/run", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=755"]),
        (
            "/tmp",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "mode=1777", &tmp_size],
        ),
    ];
    let mut mounts = Vec::with_capacity(pseudo.len() + spec.mounts.len());
    for (destination, typ, source, options) in pseudo {
        mounts.push(mount(destination, typ, source, options)?);
    }
    for bind in &spec.mounts {
        let access = if bind.read_only { "ro" } else { "rw" };
        let options = ["rbind", "rprivate", access];
        mounts.push(mount(&bind.destination, "bind", &bind.source, &options)?);
    }
    Ok(mounts)
}

/// One mount: `source` of type `typ` at `destination` with `options`.
fn mount(
    destination: impl Into<PathBuf>,
    typ: &str,
    source: impl Into<PathBuf>,
    options: &[&str],
) -> Result<Mount> {
    Ok(MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(strings(options))
        .build()?)
}

/// The `linux` section: namespaces, id maps, the cgroup, device rules, masked paths, seccomp.
fn linux(spec: &ContainerSpec) -> Result<Linux> {
    let security = &spec.security;
    // Deny every device; runc then allows its default ones (null, zero, tty, …).
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()?;
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![deny_all])
        .build()?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(spec)?)
        .resources(resources)
        .build()?;
    let id_map = match &spec.user_namespace {
        Some((_, mapping)) => Some(vec![id_mapping(mapping)?]),
        None => None,
    };
    let (masked, readonly) = if security.privileged {
        (None, None)
    } else {
        (Some(strings(MASKED_PATHS)), Some(strings(READONLY_PATHS)))
    };
    let seccomp = match security.seccomp {
        Seccomp::RuntimeDefault => Some(runtime_default_seccomp()?),
        Seccomp::Unconfined => None,
    };
    // Every other field is set too: `Linux::default()` is the builder's base and brings its
    // own masked and read-only paths, which a privileged container must not get.
    linux
        .set_uid_mappings(id_map.clone())
        .set_gid_mappings(id_map)
        .set_cgroups_path(spec.cgroups_path.as_ref().map(PathBuf::from))
        .set_masked_paths(masked)
        .set_readonly_paths(readonly)
        .set_seccomp(seccomp)
        .set_net_devices(None)
        .set_sysctl(None)
        .set_devices(None)
        .set_rootfs_propagation(None)
        .set_mount_label(None)
        .set_intel_rdt(None)
        .set_memory_policy(None)
        .set_personality(None)
        .set_time_offsets(None);
    Ok(linux)
}

/// The container's namespaces: new pid, ipc, uts and mount namespaces, the pod's network
/// namespace by path, and first the pod's user namespace by path when it has one.
fn namespaces(spec: &ContainerSpec) -> Result<Vec<LinuxNamespace>> {
    let mut namespaces = Vec::with_capacity(6);
    if let Some((path, _)) = &spec.user_namespace {
        // runc joins a user namespace first and the others from inside it (the pod's network
        // namespace is owned by it); it reads the maps to know who root is.
        namespaces.push(namespace(LinuxNamespaceType::User, Some(path))?);
    }
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ] {
        namespaces.push(namespace(typ, None)?);
    }
    namespaces.push(namespace(
        LinuxNamespaceType::Network,
        Some(&spec.netns_path),
    )?);
    Ok(namespaces)
}

/// A namespace of type `typ`: joined at `path`, or new without one.
fn namespace(typ: LinuxNamespaceType, path: Option<&Path>) -> Result<LinuxNamespace> {
    let builder = LinuxNamespaceBuilder::default().typ(typ);
    let builder = match path {
        Some(path) => builder.path(path),
        None => builder,
    };
    Ok(builder.build()?)
}

/// The uid (and gid) map of the pod's user namespace.
fn id_mapping(mapping: &IdMapping) -> Result<LinuxIdMapping> {
    Ok(LinuxIdMappingBuilder::default()
        .container_id(mapping.container_id)
        .host_id(mapping.host_id)
        .size(mapping.size)
        .build()?)
}

/// The `linux.seccomp` section of the runtime default profile.
fn runtime_default_seccomp() -> Result<LinuxSeccomp> {
    let denied = LinuxSyscallBuilder::default()
        .names(strings(SECCOMP_DENIED))
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(SECCOMP_ERRNO)
        .build()?;
    Ok(LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .syscalls(vec![denied])
        .build()?)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

#[cfg(test)]
mod tests;
