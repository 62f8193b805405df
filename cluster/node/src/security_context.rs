//! A container's `securityContext` (and its pod's) turned into what the OCI runtime spec
//! enforces, as the kubelet and containerd's CRI plugin turn it: the user and groups the
//! process runs as, its capabilities, `no_new_privs`, a read-only root, a seccomp profile. What
//! this node cannot honour is a configuration error with the reason, never silently ignored.

use k8s_openapi::api::core::v1::{Container, Pod, PodSecurityContext, SeccompProfile};

use crate::image_user::ImageUser;

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

/// Every capability a privileged container gets (Linux 5.x, as containerd lists them).
const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The seccomp filter a container runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seccomp {
    /// No filter (`Unconfined`, and the kubelet's default without `--seccomp-default`).
    Unconfined,
    /// The runtime's default profile (`RuntimeDefault`); see [`crate::oci_spec`].
    RuntimeDefault,
}

/// What the OCI spec's `process` and `root` get from the security context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSecurity {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    pub read_only_root: bool,
    /// All capabilities, and no masked or read-only kernel paths (still in the sandbox).
    pub privileged: bool,
    pub seccomp: Seccomp,
}

impl Default for ProcessSecurity {
    /// A container without a security context: root of the image, the runtime's default
    /// capabilities, unconfined.
    fn default() -> Self {
        ProcessSecurity {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            capabilities: DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            no_new_privileges: false,
            read_only_root: false,
            privileged: false,
            seccomp: Seccomp::Unconfined,
        }
    }
}

/// The security of `container` of `pod` (the container's settings win over the pod's, and
/// both over the image's `User`), or the kubelet's `CreateContainerConfigError` message when
/// it cannot be run as asked.
pub fn process_security(
    pod: &Pod,
    container: &Container,
    image_user: &ImageUser,
) -> Result<ProcessSecurity, String> {
    let pod_context = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.security_context.as_ref());
    refuse_host_namespaces(pod)?;
    let own = container.security_context.as_ref();
    let run_as_user = own
        .and_then(|c| c.run_as_user)
        .or(pod_context.and_then(|p| p.run_as_user));
    let run_as_group = own
        .and_then(|c| c.run_as_group)
        .or(pod_context.and_then(|p| p.run_as_group));
    let run_as_non_root = own
        .and_then(|c| c.run_as_non_root)
        .or(pod_context.and_then(|p| p.run_as_non_root))
        .unwrap_or(false);
    if run_as_non_root {
        verify_non_root(pod, container, run_as_user, image_user)?;
    }
    let (uid, gid, additional_gids) = ids(pod_context, run_as_user, run_as_group, image_user)?;
    let privileged = own.and_then(|c| c.privileged).unwrap_or(false);
    let capabilities = if privileged {
        ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    } else {
        capabilities(own.and_then(|c| c.capabilities.as_ref()))
    };
    let seccomp = match own
        .and_then(|c| c.seccomp_profile.as_ref())
        .or(pod_context.and_then(|p| p.seccomp_profile.as_ref()))
    {
        _ if privileged => Seccomp::Unconfined,
        None => Seccomp::Unconfined,
        Some(profile) => seccomp(profile)?,
    };
    Ok(ProcessSecurity {
        uid,
        gid,
        additional_gids,
        capabilities,
        // containerd: `no_new_privs` unless privilege escalation is allowed (the default).
        no_new_privileges: own.and_then(|c| c.allow_privilege_escalation) == Some(false)
            && !privileged,
        read_only_root: own
            .and_then(|c| c.read_only_root_filesystem)
            .unwrap_or(false),
        privileged,
        seccomp,
    })
}

/// hostPID and hostIPC: this node's pods share no process or IPC namespace with it.
fn refuse_host_namespaces(pod: &Pod) -> Result<(), String> {
    let spec = pod.spec.as_ref();
    if spec.and_then(|spec| spec.host_pid) == Some(true) {
        return Err(
            "hostPID is not supported by this node: pods share no process namespace \
                    with it"
                .to_string(),
        );
    }
    if spec.and_then(|spec| spec.host_ipc) == Some(true) {
        return Err(
            "hostIPC is not supported by this node: pods share no IPC namespace with it"
                .to_string(),
        );
    }
    Ok(())
}

/// The user, group and additional groups of the process: containerd's rules (a runAsUser
/// without runAsGroup runs with that user's primary group in the image; neither set, the
/// image's user and group), then the pod's supplemental groups and fsGroup.
fn ids(
    pod_context: Option<&PodSecurityContext>,
    run_as_user: Option<i64>,
    run_as_group: Option<i64>,
    image_user: &ImageUser,
) -> Result<(u32, u32, Vec<u32>), String> {
    let (uid, gid) = match run_as_user {
        Some(uid) => {
            let uid = id(uid, "runAsUser")?;
            (uid, image_user.primary_gid(uid))
        }
        None => (image_user.uid, image_user.gid),
    };
    let gid = match run_as_group {
        Some(gid) => id(gid, "runAsGroup")?,
        None => gid,
    };
    let mut additional_gids = Vec::new();
    for group in pod_context
        .and_then(|p| p.supplemental_groups.clone())
        .unwrap_or_default()
        .into_iter()
        .chain(pod_context.and_then(|p| p.fs_group))
    {
        let group = id(group, "supplementalGroups/fsGroup")?;
        if !additional_gids.contains(&group) {
            additional_gids.push(group);
        }
    }
    Ok((uid, gid, additional_gids))
}

/// The kubelet's `verifyRunAsNonRoot`: the user the container would run as must be known and
/// not root.
fn verify_non_root(
    pod: &Pod,
    container: &Container,
    run_as_user: Option<i64>,
    image_user: &ImageUser,
) -> Result<(), String> {
    let message = match (run_as_user, &image_user.name) {
        (Some(0), _) => "container's runAsUser breaks non-root policy".to_string(),
        (Some(_), _) => return Ok(()),
        (None, Some(name)) => format!(
            "container has runAsNonRoot and image has non-numeric user ({name}), cannot verify \
             user is non-root"
        ),
        (None, None) if image_user.uid == 0 => {
            "container has runAsNonRoot and image will run as root".to_string()
        }
        (None, None) => return Ok(()),
    };
    let metadata = &pod.metadata;
    Err(format!(
        "{message} (pod: \"{}_{}({})\", container: {})",
        metadata.name.as_deref().unwrap_or_default(),
        metadata.namespace.as_deref().unwrap_or_default(),
        metadata.uid.as_deref().unwrap_or_default(),
        container.name
    ))
}

fn id(value: i64, field: &str) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| format!("{field} {value} is not a valid id"))
}

/// The runtime's default set, less `drop`, plus `add` (`ALL` in drop empties the set first, as
/// in containerd; names with or without the `CAP_` prefix).
fn capabilities(requested: Option<&k8s_openapi::api::core::v1::Capabilities>) -> Vec<String> {
    let normalize = |name: &String| {
        let upper = name.to_uppercase();
        if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        }
    };
    let drop: Vec<String> = requested
        .and_then(|c| c.drop.as_ref())
        .map(|names| names.iter().map(normalize).collect())
        .unwrap_or_default();
    let add: Vec<String> = requested
        .and_then(|c| c.add.as_ref())
        .map(|names| names.iter().map(normalize).collect())
        .unwrap_or_default();
    let mut set: Vec<String> = if drop.iter().any(|name| name == "CAP_ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    let everything = add.iter().any(|name| name == "CAP_ALL");
    let added = if everything {
        ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    } else {
        add
    };
    for name in added {
        if !set.contains(&name) {
            set.push(name);
        }
    }
    set
}

fn seccomp(profile: &SeccompProfile) -> Result<Seccomp, String> {
    match profile.type_.as_str() {
        "RuntimeDefault" => Ok(Seccomp::RuntimeDefault),
        "Unconfined" => Ok(Seccomp::Unconfined),
        "Localhost" => Err(format!(
            "seccomp profile type Localhost ({}) is not supported by this node: use \
             RuntimeDefault or Unconfined",
            profile.localhost_profile.as_deref().unwrap_or_default()
        )),
        other => Err(format!("unknown seccomp profile type {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_of(spec: serde_json::Value) -> (Pod, Container) {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u-1"},
            "spec": spec,
        }))
        .unwrap();
        let container = pod.spec.as_ref().unwrap().containers[0].clone();
        (pod, container)
    }

    #[test]
    fn no_security_context_is_root_with_the_runtime_defaults() {
        let (pod, container) = pod_of(serde_json::json!({"containers": [{"name": "c"}]}));
        assert_eq!(
            process_security(&pod, &container, &ImageUser::root()).unwrap(),
            ProcessSecurity::default()
        );
    }

    #[test]
    fn the_containers_settings_win_over_the_pods() {
        let (pod, container) = pod_of(serde_json::json!({
            "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
                                "supplementalGroups": [4000, 2000]},
            "containers": [{"name": "c", "securityContext": {"runAsUser": 1001,
                "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["net_bind_service"]},
                "seccompProfile": {"type": "RuntimeDefault"}}}],
        }));
        let security = process_security(&pod, &container, &ImageUser::root()).unwrap();
        assert_eq!((security.uid, security.gid), (1001, 3000));
        assert_eq!(security.additional_gids, [4000, 2000]);
        assert_eq!(security.capabilities, ["CAP_NET_BIND_SERVICE"]);
        assert!(security.no_new_privileges && security.read_only_root);
        assert_eq!(security.seccomp, Seccomp::RuntimeDefault);
    }

    #[test]
    fn run_as_non_root_on_a_root_image_is_refused_with_the_kubelets_message() {
        let (pod, container) = pod_of(serde_json::json!({
            "securityContext": {"runAsNonRoot": true}, "containers": [{"name": "c"}],
        }));
        assert_eq!(
            process_security(&pod, &container, &ImageUser::root()).unwrap_err(),
            "container has runAsNonRoot and image will run as root (pod: \"p_ns(u-1)\", container: c)"
        );
        let (pod, container) = pod_of(serde_json::json!({
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000},
            "containers": [{"name": "c"}],
        }));
        assert_eq!(
            process_security(&pod, &container, &ImageUser::root())
                .unwrap()
                .uid,
            1000
        );
    }

    #[test]
    fn privileged_gets_every_capability_and_host_namespaces_are_refused() {
        let (pod, container) = pod_of(serde_json::json!({
            "containers": [{"name": "c", "securityContext": {"privileged": true}}],
        }));
        let security = process_security(&pod, &container, &ImageUser::root()).unwrap();
        assert!(security.privileged);
        assert!(security.capabilities.contains(&"CAP_SYS_ADMIN".to_string()));
        let (pod, container) = pod_of(serde_json::json!({
            "hostPID": true, "containers": [{"name": "c"}],
        }));
        assert!(
            process_security(&pod, &container, &ImageUser::root())
                .unwrap_err()
                .starts_with("hostPID")
        );
    }
}
