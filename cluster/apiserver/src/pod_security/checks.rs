//! The Pod Security Standards checks, as pod-security-admission's `policy` package runs them
//! (`policy/registry.go`, `policy/checks.go`): each check looks at a pod's metadata and spec
//! and says why it is forbidden; a level runs its checks in upstream's order (baseline checks
//! then restricted ones, each group sorted by check ID, restricted dropping the baseline
//! checks it overrides), and the violations are joined as upstream joins them.
//!
//! The checks themselves are in `baseline.rs` and `restricted.rs`, one function per upstream
//! `check_*.go`, with its reason and detail strings. Pods are JSON here, not typed: a field
//! that is absent or `null` is Go's nil, and a field of the wrong type counts as absent.

use serde_json::Value;

use super::level::Level;
use super::{baseline, restricted};

/// Why one check forbids a pod: upstream's `ForbiddenReason` and `ForbiddenDetail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Short, always shown: `hostPath volumes`.
    pub reason: String,
    /// The specifics, shown for a single pod: `volume "h"` (may be empty).
    pub detail: String,
}

impl Violation {
    pub(super) fn new(reason: impl Into<String>, detail: impl Into<String>) -> Option<Violation> {
        Some(Violation {
            reason: reason.into(),
            detail: detail.into(),
        })
    }
}

/// A check: the pod template's metadata and spec in, a violation (if any) out.
type CheckFn = fn(&Value, &Value) -> Option<Violation>;

struct Check {
    /// Upstream's check ID; the order of evaluation is the order of the IDs.
    id: &'static str,
    level: Level,
    /// Baseline checks that this restricted check replaces at the restricted level.
    overrides: &'static [&'static str],
    run: CheckFn,
}

const fn check(id: &'static str, level: Level, run: CheckFn) -> Check {
    Check {
        id,
        level,
        overrides: &[],
        run,
    }
}

/// Every check, in upstream's evaluation order: the baseline IDs sorted, then the restricted
/// IDs sorted (a test keeps both groups sorted). The versions are those of Kubernetes 1.33's
/// `policy` package at `latest`.
static CHECKS: &[Check] = &[
    check(
        "appArmorProfile",
        Level::Baseline,
        baseline::app_armor_profile,
    ),
    check(
        "capabilities_baseline",
        Level::Baseline,
        baseline::capabilities,
    ),
    check("hostNamespaces", Level::Baseline, baseline::host_namespaces),
    check(
        "hostPathVolumes",
        Level::Baseline,
        baseline::host_path_volumes,
    ),
    check("hostPorts", Level::Baseline, baseline::host_ports),
    check("privileged", Level::Baseline, baseline::privileged),
    check("procMount", Level::Baseline, baseline::proc_mount),
    check(
        "seLinuxOptions",
        Level::Baseline,
        baseline::se_linux_options,
    ),
    check(
        "seccompProfile_baseline",
        Level::Baseline,
        baseline::seccomp_profile,
    ),
    check("sysctls", Level::Baseline, baseline::sysctls),
    check(
        "windowsHostProcess",
        Level::Baseline,
        baseline::windows_host_process,
    ),
    check(
        "allowPrivilegeEscalation",
        Level::Restricted,
        restricted::allow_privilege_escalation,
    ),
    Check {
        overrides: &["capabilities_baseline"],
        ..check(
            "capabilities_restricted",
            Level::Restricted,
            restricted::capabilities,
        )
    },
    Check {
        overrides: &["hostPathVolumes"],
        ..check("restrictedVolumes", Level::Restricted, restricted::volumes)
    },
    check(
        "runAsNonRoot",
        Level::Restricted,
        restricted::run_as_non_root,
    ),
    check("runAsUser", Level::Restricted, restricted::run_as_user),
    Check {
        overrides: &["seccompProfile_baseline"],
        ..check(
            "seccompProfile_restricted",
            Level::Restricted,
            restricted::seccomp_profile,
        )
    },
];

/// The violations of a pod (its metadata and spec, or a template's) at `level`, in upstream's
/// order; empty when the pod is allowed. `privileged` allows everything.
pub fn evaluate(level: Level, metadata: &Value, spec: &Value) -> Vec<Violation> {
    let overridden: Vec<&str> = CHECKS
        .iter()
        .filter(|c| c.level <= level)
        .flat_map(|c| c.overrides.iter().copied())
        .collect();
    CHECKS
        .iter()
        .filter(|c| level != Level::Privileged && c.level <= level)
        .filter(|c| !overridden.contains(&c.id))
        .filter_map(|c| (c.run)(metadata, spec))
        .collect()
}

/// The reasons with their details, as upstream's `AggregateCheckResult.ForbiddenDetail`:
/// `hostPath volumes (volume "h"), privileged (container "c" must not set …)`.
pub fn forbidden_detail(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            if v.detail.is_empty() {
                v.reason.clone()
            } else {
                format!("{} ({})", v.reason, v.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The reasons alone, as upstream's `ForbiddenReason` (used for a namespace's existing pods).
pub fn forbidden_reason(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| v.reason.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

// Helpers shared by the checks, named after upstream's where they mirror them.

/// The init containers, containers and ephemeral containers of a spec, in upstream's
/// `visitContainers` order.
pub(super) fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .filter_map(|list| spec.get(list).and_then(Value::as_array))
        .flatten()
}

/// A container's name ("" when missing).
pub(super) fn name(container: &Value) -> &str {
    text(container, "/name").unwrap_or_default()
}

/// A boolean field; `None` when absent, null or not a boolean (Go's nil pointer).
pub(super) fn flag(value: &Value, pointer: &str) -> Option<bool> {
    value.pointer(pointer).and_then(Value::as_bool)
}

/// A string field; `None` when absent, null or not a string.
pub(super) fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Whether a field is set (present and not null): Go's `!= nil` on a pointer field.
pub(super) fn is_set(value: &Value, pointer: &str) -> bool {
    value.pointer(pointer).is_some_and(|v| !v.is_null())
}

/// The strings of an array field (other items skipped).
pub(super) fn strings<'a>(value: &'a Value, pointer: &str) -> Vec<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Upstream's `joinQuote`: `"a", "b"`.
pub(super) fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let joined: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", joined.join("\", \""))
}

/// Upstream's `pluralize`.
pub(super) fn pluralize(
    singular: &'static str,
    plural: &'static str,
    count: usize,
) -> &'static str {
    if count == 1 { singular } else { plural }
}

/// `container "a"` or `containers "a", "b"`.
pub(super) fn containers_phrase<S: AsRef<str>>(names: &[S]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// Who set a forbidden value, as upstream words it: `pod`, `container "a"`,
/// `pod and containers "a", "b"`; empty when nobody did.
pub(super) fn setters<S: AsRef<str>>(pod: bool, containers: &[S]) -> String {
    let mut setters = Vec::new();
    if pod {
        setters.push("pod".to_string());
    }
    if !containers.is_empty() {
        setters.push(containers_phrase(containers));
    }
    setters.join(" and ")
}

/// Whether the pod declares it runs on Windows (`spec.os.name`), which some restricted checks
/// leave alone since 1.25.
pub(super) fn is_windows(spec: &Value) -> bool {
    text(spec, "/os/name") == Some("windows")
}

/// A string quoted as Go's `%q` quotes it, for values that appear in messages (label values,
/// annotations): printable characters as they are, `"` and `\` escaped, control characters
/// as `\n`, `\t`, `\xNN` or `\uNNNN`.
pub fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\u{b}' => quoted.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                quoted.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_run_in_upstreams_order() {
        let ids = |level: Level| -> Vec<&str> {
            CHECKS
                .iter()
                .filter(|c| c.level == level)
                .map(|c| c.id)
                .collect()
        };
        // Go sorts the IDs byte-wise, as Rust's str ordering does.
        for level in [Level::Baseline, Level::Restricted] {
            let mut sorted = ids(level);
            sorted.sort_unstable();
            assert_eq!(ids(level), sorted);
        }
        let baseline_first = CHECKS
            .iter()
            .position(|c| c.level == Level::Restricted)
            .unwrap();
        assert!(
            CHECKS[baseline_first..]
                .iter()
                .all(|c| c.level == Level::Restricted)
        );
    }

    #[test]
    fn restricted_reports_baseline_violations_first_and_overrides_replace() {
        let spec = json!({
            "hostNetwork": true,
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
            "containers": [{"name": "c", "image": "nginx"}],
        });
        let meta = json!({});
        assert_eq!(
            forbidden_detail(&evaluate(Level::Baseline, &meta, &spec)),
            "host namespaces (hostNetwork=true), hostPath volumes (volume \"h\")"
        );
        assert_eq!(
            forbidden_reason(&evaluate(Level::Restricted, &meta, &spec)),
            "host namespaces, allowPrivilegeEscalation != false, unrestricted capabilities, \
             restricted volume types, runAsNonRoot != true, seccompProfile"
        );
        assert!(evaluate(Level::Privileged, &meta, &spec).is_empty());
    }

    #[test]
    fn the_restricted_example_of_kubernetes_docs() {
        let spec = json!({"containers": [{"name": "c", "image": "nginx"}]});
        assert_eq!(
            forbidden_detail(&evaluate(Level::Restricted, &json!({}), &spec)),
            "allowPrivilegeEscalation != false (container \"c\" must set \
             securityContext.allowPrivilegeEscalation=false), unrestricted capabilities \
             (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"c\" must set \
             securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must \
             set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        let compliant = json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "image": "nginx", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
        });
        assert!(evaluate(Level::Restricted, &json!({}), &compliant).is_empty());
    }

    #[test]
    fn go_quote_matches_go() {
        assert_eq!(go_quote("foo"), "\"foo\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote("a\nb\u{1b}"), "\"a\\nb\\x1b\"");
        assert_eq!(go_quote("été"), "\"été\"");
    }
}
