//! The baseline checks, one function per upstream `policy/check_*.go` (Kubernetes 1.33, the
//! newest version of each), with upstream's reasons and details word for word. Sets of values
//! are sorted as Go's `sets.String.List()` sorts them (byte-wise, as a `BTreeSet<String>`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::pod_fields::{
    containers, containers_phrase, flag, is_set, join_quote, name, pluralize, setters, strings,
    text,
};
use super::violation::Violation;
use crate::validation::field::quote as go_quote;

/// `check_appArmorProfile.go`: an AppArmor profile type other than `RuntimeDefault` or
/// `Localhost` (pod or container), or a beta annotation naming another profile.
pub fn app_armor_profile(metadata: &Value, spec: &Value) -> Option<Violation> {
    const ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
    let allowed_type = |t: &str| matches!(t, "RuntimeDefault" | "Localhost");
    let mut bad_values = BTreeSet::new();
    let pod_type = is_set(spec, "/securityContext/appArmorProfile")
        .then(|| text(spec, "/securityContext/appArmorProfile/type").unwrap_or_default());
    let bad_pod = pod_type.is_some_and(|t| !allowed_type(t));
    if let Some(t) = pod_type.filter(|_| bad_pod) {
        bad_values.insert(t.to_string());
    }
    let mut bad_containers = Vec::new();
    for c in containers(spec) {
        if !is_set(c, "/securityContext/appArmorProfile") {
            continue;
        }
        let t = text(c, "/securityContext/appArmorProfile/type").unwrap_or_default();
        if !allowed_type(t) {
            bad_containers.push(name(c));
            bad_values.insert(t.to_string());
        }
    }
    let mut bad_setters = setters(bad_pod, &bad_containers);
    let mut bad_value_list: Vec<String> = bad_values.into_iter().collect();
    let annotations = metadata.get("annotations").and_then(Value::as_object);
    let mut forbidden: Vec<String> = annotations
        .into_iter()
        .flatten()
        .filter(|(key, _)| key.starts_with(ANNOTATION_PREFIX))
        .filter_map(|(key, value)| {
            let value = value.as_str().unwrap_or_default();
            let allowed =
                value.is_empty() || value == "runtime/default" || value.starts_with("localhost/");
            (!allowed).then(|| format!("{key}={}", go_quote(value)))
        })
        .collect();
    if !forbidden.is_empty() {
        forbidden.sort();
        let phrase = pluralize("annotation", "annotations", forbidden.len());
        bad_value_list.extend(forbidden);
        bad_setters = [bad_setters, phrase.to_string()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" and ");
    }
    if bad_setters.is_empty() {
        return None;
    }
    Violation::new(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            bad_value_list.len(),
        ),
        format!(
            "{bad_setters} must not set AppArmor profile type to {}",
            join_quote(&bad_value_list)
        ),
    )
}

/// The capabilities a baseline container may add: containerd's and Docker's default set.
const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// `check_capabilities_baseline.go`: capabilities added beyond the default set.
pub fn capabilities(_metadata: &Value, spec: &Value) -> Option<Violation> {
    let mut bad_containers = Vec::new();
    let mut non_default = BTreeSet::new();
    for c in containers(spec) {
        let added = strings(c, "/securityContext/capabilities/add");
        let extra: Vec<&str> = added
            .into_iter()
            .filter(|cap| !DEFAULT_CAPABILITIES.contains(cap))
            .collect();
        if !extra.is_empty() {
            bad_containers.push(name(c));
            non_default.extend(extra);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let non_default: Vec<&str> = non_default.into_iter().collect();
    Violation::new(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad_containers),
            join_quote(&non_default)
        ),
    )
}

/// `check_hostNamespaces.go`: `hostNetwork`, `hostPID` or `hostIPC`.
pub fn host_namespaces(_metadata: &Value, spec: &Value) -> Option<Violation> {
    let shared: Vec<&str> = [
        ("hostNetwork", "hostNetwork=true"),
        ("hostPID", "hostPID=true"),
        ("hostIPC", "hostIPC=true"),
    ]
    .into_iter()
    .filter(|(field, _)| flag(spec, &format!("/{field}")) == Some(true))
    .map(|(_, shown)| shown)
    .collect();
    if shared.is_empty() {
        return None;
    }
    Violation::new("host namespaces", shared.join(", "))
}

/// `check_hostPathVolumes.go`: `hostPath` volumes.
pub fn host_path_volumes(_metadata: &Value, spec: &Value) -> Option<Violation> {
    let volumes = spec.get("volumes").and_then(Value::as_array);
    let host: Vec<&str> = volumes
        .into_iter()
        .flatten()
        .filter(|v| is_set(v, "/hostPath"))
        .map(name)
        .collect();
    if host.is_empty() {
        return None;
    }
    Violation::new(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", host.len()),
            join_quote(&host)
        ),
    )
}

/// `check_hostPorts.go`: container ports with a `hostPort`.
pub fn host_ports(_metadata: &Value, spec: &Value) -> Option<Violation> {
    let mut bad_containers = Vec::new();
    let mut ports = BTreeSet::new();
    for c in containers(spec) {
        let listed = c.get("ports").and_then(Value::as_array);
        let host: Vec<String> = listed
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("hostPort").and_then(Value::as_i64))
            .filter(|port| *port != 0)
            .map(|port| port.to_string())
            .collect();
        if !host.is_empty() {
            bad_containers.push(name(c));
            ports.extend(host);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    Violation::new(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

/// `check_privileged.go`: `securityContext.privileged: true`.
pub fn privileged(_metadata: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = containers(spec)
        .filter(|c| flag(c, "/securityContext/privileged") == Some(true))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

/// `check_procMount.go`: a `procMount` other than `Default`. (Upstream relaxes this for
/// `hostUsers: false` pods only behind the alpha UserNamespacesPodSecurityStandards gate,
/// off by default, so it is not relaxed here.)
pub fn proc_mount(_metadata: &Value, spec: &Value) -> Option<Violation> {
    let mut bad_containers = Vec::new();
    let mut types = BTreeSet::new();
    for c in containers(spec) {
        let Some(proc_mount) = text(c, "/securityContext/procMount") else {
            continue;
        };
        if proc_mount != "Default" {
            bad_containers.push(name(c));
            types.insert(proc_mount);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let types: Vec<&str> = types.into_iter().collect();
    Violation::new(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad_containers),
            join_quote(&types)
        ),
    )
}

/// What `seLinuxOptions` set that baseline forbids.
#[derive(Default)]
struct SeLinuxFindings {
    bad_types: BTreeSet<String>,
    set_user: bool,
    set_role: bool,
}

impl SeLinuxFindings {
    /// Upstream's `validSELinuxOptions` (1.31 types); records what is wrong.
    fn valid(&mut self, options: &Value) -> bool {
        const ALLOWED: &[&str] = &[
            "",
            "container_t",
            "container_init_t",
            "container_kvm_t",
            "container_engine_t",
        ];
        let selinux_type = text(options, "/type").unwrap_or_default();
        let mut valid = true;
        if !ALLOWED.contains(&selinux_type) {
            valid = false;
            self.bad_types.insert(selinux_type.to_string());
        }
        if text(options, "/user").is_some_and(|u| !u.is_empty()) {
            valid = false;
            self.set_user = true;
        }
        if text(options, "/role").is_some_and(|r| !r.is_empty()) {
            valid = false;
            self.set_role = true;
        }
        valid
    }
}

/// `check_seLinuxOptions.go`: an SELinux type outside the container types, or a user or role.
pub fn se_linux_options(_metadata: &Value, spec: &Value) -> Option<Violation> {
    let mut findings = SeLinuxFindings::default();
    let bad_pod = spec
        .pointer("/securityContext/seLinuxOptions")
        .filter(|o| !o.is_null())
        .is_some_and(|options| !findings.valid(options));
    let mut bad_containers = Vec::new();
    for c in containers(spec) {
        let options = c
            .pointer("/securityContext/seLinuxOptions")
            .filter(|o| !o.is_null());
        if options.is_some_and(|options| !findings.valid(options)) {
            bad_containers.push(name(c));
        }
    }
    let bad_setters = setters(bad_pod, &bad_containers);
    if bad_setters.is_empty() {
        return None;
    }
    let mut bad_data = Vec::new();
    if !findings.bad_types.is_empty() {
        let types: Vec<&String> = findings.bad_types.iter().collect();
        bad_data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if findings.set_user {
        bad_data.push("user may not be set".to_string());
    }
    if findings.set_role {
        bad_data.push("role may not be set".to_string());
    }
    Violation::new(
        "seLinuxOptions",
        format!(
            "{bad_setters} set forbidden securityContext.seLinuxOptions: {}",
            bad_data.join("; ")
        ),
    )
}

/// Whether a seccomp profile type is one baseline and restricted allow.
pub(super) fn valid_seccomp(profile_type: &str) -> bool {
    matches!(profile_type, "RuntimeDefault" | "Localhost")
}

/// The seccomp profile types set explicitly (pod and containers) that are not allowed:
/// whether the pod set one, the containers that did, the bad values; and the containers that
/// set none. Shared by the baseline and restricted seccomp checks.
pub(super) struct SeccompFindings<'a> {
    pub bad_pod: bool,
    /// The pod set an allowed type, which containers inherit.
    pub pod_allowed: bool,
    pub bad_containers: Vec<&'a str>,
    pub bad_values: BTreeSet<String>,
    pub unset_containers: Vec<&'a str>,
}

pub(super) fn seccomp_findings(spec: &Value) -> SeccompFindings<'_> {
    let mut findings = SeccompFindings {
        bad_pod: false,
        pod_allowed: false,
        bad_containers: Vec::new(),
        bad_values: BTreeSet::new(),
        unset_containers: Vec::new(),
    };
    if is_set(spec, "/securityContext/seccompProfile") {
        let t = text(spec, "/securityContext/seccompProfile/type").unwrap_or_default();
        if valid_seccomp(t) {
            findings.pod_allowed = true;
        } else {
            findings.bad_pod = true;
            findings.bad_values.insert(t.to_string());
        }
    }
    for c in containers(spec) {
        if !is_set(c, "/securityContext/seccompProfile") {
            findings.unset_containers.push(name(c));
            continue;
        }
        let t = text(c, "/securityContext/seccompProfile/type").unwrap_or_default();
        if !valid_seccomp(t) {
            findings.bad_containers.push(name(c));
            findings.bad_values.insert(t.to_string());
        }
    }
    findings
}

/// The violation for explicitly set bad seccomp types (`Unconfined`), worded as both seccomp
/// checks word it.
pub(super) fn explicit_seccomp_violation(findings: &SeccompFindings) -> Option<Violation> {
    let bad_setters = setters(findings.bad_pod, &findings.bad_containers);
    if bad_setters.is_empty() {
        return None;
    }
    let values: Vec<&String> = findings.bad_values.iter().collect();
    Violation::new(
        "seccompProfile",
        format!(
            "{bad_setters} must not set securityContext.seccompProfile.type to {}",
            join_quote(&values)
        ),
    )
}

/// `check_seccompProfile_baseline.go` (1.19+): a seccomp profile type other than
/// `RuntimeDefault` or `Localhost`, where one is set.
pub fn seccomp_profile(_metadata: &Value, spec: &Value) -> Option<Violation> {
    explicit_seccomp_violation(&seccomp_findings(spec))
}

/// The sysctls a pod may set (1.32's list): namespaced and isolated from other pods.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// `check_sysctls.go`: sysctls outside the safe set, in the order the pod lists them.
pub fn sysctls(_metadata: &Value, spec: &Value) -> Option<Violation> {
    let listed = spec
        .pointer("/securityContext/sysctls")
        .and_then(Value::as_array);
    let forbidden: Vec<&str> = listed
        .into_iter()
        .flatten()
        .map(|s| text(s, "/name").unwrap_or_default())
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    Violation::new("forbidden sysctls", forbidden.join(", "))
}

/// `check_windowsHostProcess.go`: `windowsOptions.hostProcess: true`.
pub fn windows_host_process(_metadata: &Value, spec: &Value) -> Option<Violation> {
    const FIELD: &str = "/securityContext/windowsOptions/hostProcess";
    let bad_containers: Vec<&str> = containers(spec)
        .filter(|c| flag(c, FIELD) == Some(true))
        .map(name)
        .collect();
    let bad_setters = setters(flag(spec, FIELD) == Some(true), &bad_containers);
    if bad_setters.is_empty() {
        return None;
    }
    Violation::new(
        "hostProcess",
        format!("{bad_setters} must not set securityContext.windowsOptions.hostProcess=true"),
    )
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;
