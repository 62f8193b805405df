//! The restricted checks, one function per upstream `policy/check_*.go` (Kubernetes 1.33, the
//! newest version of each), with upstream's reasons and details word for word. Those that
//! upstream skips for Windows pods since 1.25 (`spec.os.name: windows`) skip them too.

use std::collections::BTreeSet;

use serde_json::Value;

use super::baseline::{explicit_seccomp_violation, seccomp_findings};
use super::pod_fields::{
    containers, containers_phrase, flag, is_set, is_windows, join_quote, name, pluralize, setters,
    strings,
};
use super::violation::Violation;

/// `check_allowPrivilegeEscalation.go`: every container must set
/// `allowPrivilegeEscalation: false`.
pub fn allow_privilege_escalation(_metadata: &Value, spec: &Value) -> Option<Violation> {
    if is_windows(spec) {
        return None;
    }
    let bad: Vec<&str> = containers(spec)
        .filter(|c| flag(c, "/securityContext/allowPrivilegeEscalation") != Some(false))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

/// `check_capabilities_restricted.go`: every container drops `ALL` and adds at most
/// `NET_BIND_SERVICE`.
pub fn capabilities(_metadata: &Value, spec: &Value) -> Option<Violation> {
    if is_windows(spec) {
        return None;
    }
    let mut missing_drop_all = Vec::new();
    let mut adding_forbidden = Vec::new();
    let mut forbidden = BTreeSet::new();
    for c in containers(spec) {
        // Without a capabilities field upstream stops at "must drop ALL".
        if !is_set(c, "/securityContext/capabilities") {
            missing_drop_all.push(name(c));
            continue;
        }
        if !strings(c, "/securityContext/capabilities/drop").contains(&"ALL") {
            missing_drop_all.push(name(c));
        }
        let added = strings(c, "/securityContext/capabilities/add");
        let extra: Vec<&str> = added
            .into_iter()
            .filter(|cap| *cap != "NET_BIND_SERVICE")
            .collect();
        if !extra.is_empty() {
            adding_forbidden.push(name(c));
            forbidden.extend(extra);
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop_all)
        ));
    }
    if !adding_forbidden.is_empty() {
        let forbidden: Vec<&str> = forbidden.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding_forbidden),
            join_quote(&forbidden)
        ));
    }
    if details.is_empty() {
        return None;
    }
    Violation::new("unrestricted capabilities", details.join("; "))
}

/// The volume sources restricted allows.
const ALLOWED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The volume sources restricted forbids, in the order upstream tests them (the first one a
/// volume sets names its type).
const RESTRICTED_VOLUMES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

/// `check_restrictedVolumes.go`: volumes other than the allowed inline sources (this check
/// replaces baseline's hostPath check at restricted).
pub fn volumes(_metadata: &Value, spec: &Value) -> Option<Violation> {
    let mut bad_volumes = Vec::new();
    let mut bad_types = BTreeSet::new();
    let listed = spec.get("volumes").and_then(Value::as_array);
    for volume in listed.into_iter().flatten() {
        if ALLOWED_VOLUMES
            .iter()
            .any(|key| is_set(volume, &format!("/{key}")))
        {
            continue;
        }
        bad_volumes.push(name(volume));
        let kind = RESTRICTED_VOLUMES
            .iter()
            .find(|key| is_set(volume, &format!("/{key}")))
            .copied()
            .unwrap_or("unknown");
        bad_types.insert(kind);
    }
    if bad_volumes.is_empty() {
        return None;
    }
    let bad_types: Vec<&str> = bad_types.into_iter().collect();
    Violation::new(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad_volumes.len()),
            join_quote(&bad_volumes),
            pluralize("uses", "use", bad_volumes.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                bad_types.len()
            ),
            join_quote(&bad_types)
        ),
    )
}

/// `check_runAsNonRoot.go`: `runAsNonRoot: true` on the pod or on every container, and
/// `false` nowhere. (Upstream's relaxation for user-namespaced pods is behind an alpha gate,
/// off by default.)
pub fn run_as_non_root(_metadata: &Value, spec: &Value) -> Option<Violation> {
    let pod = flag(spec, "/securityContext/runAsNonRoot");
    let pod_non_root = pod == Some(true);
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in containers(spec) {
        match flag(c, "/securityContext/runAsNonRoot") {
            Some(false) => explicitly_bad.push(name(c)),
            Some(true) => {}
            None if !pod_non_root => implicitly_bad.push(name(c)),
            None => {}
        }
    }
    let bad_setters = setters(pod == Some(false), &explicitly_bad);
    if !bad_setters.is_empty() {
        return Violation::new(
            "runAsNonRoot != true",
            format!("{bad_setters} must not set securityContext.runAsNonRoot=false"),
        );
    }
    if implicitly_bad.is_empty() {
        return None;
    }
    Violation::new(
        "runAsNonRoot != true",
        format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_phrase(&implicitly_bad)
        ),
    )
}

/// `check_runAsUser.go`: `runAsUser: 0` on the pod or a container.
pub fn run_as_user(_metadata: &Value, spec: &Value) -> Option<Violation> {
    let is_root = |value: &Value| {
        value
            .pointer("/securityContext/runAsUser")
            .and_then(Value::as_i64)
            == Some(0)
    };
    let bad_containers: Vec<&str> = containers(spec).filter(|c| is_root(c)).map(name).collect();
    let bad_setters = setters(is_root(spec), &bad_containers);
    if bad_setters.is_empty() {
        return None;
    }
    Violation::new(
        "runAsUser=0",
        format!("{bad_setters} must not set runAsUser=0"),
    )
}

/// `check_seccompProfile_restricted.go`: `RuntimeDefault` or `Localhost` on the pod or on
/// every container (this check replaces baseline's seccomp check at restricted).
pub fn seccomp_profile(_metadata: &Value, spec: &Value) -> Option<Violation> {
    if is_windows(spec) {
        return None;
    }
    let findings = seccomp_findings(spec);
    if let Some(violation) = explicit_seccomp_violation(&findings) {
        return Some(violation);
    }
    if findings.pod_allowed || findings.unset_containers.is_empty() {
        return None;
    }
    Violation::new(
        "seccompProfile",
        format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_phrase(&findings.unset_containers)
        ),
    )
}

#[cfg(test)]
#[path = "restricted_tests.rs"]
mod tests;
