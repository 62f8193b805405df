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
pub use super::violation::Violation;
use super::{baseline, restricted};

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
}
