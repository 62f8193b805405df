//! The policy a namespace's `pod-security.kubernetes.io/*` labels ask for, parsed as
//! pod-security-admission's `api.PolicyToEvaluate` does (`api/helpers.go`): levels
//! `privileged` < `baseline` < `restricted`, versions `latest` or `v1.N`, and the same
//! field errors for values it cannot parse.

use std::fmt;

use serde_json::{Map, Value};

use crate::validation::field::quote as go_quote;

const ENFORCE_LEVEL: &str = "pod-security.kubernetes.io/enforce";
const ENFORCE_VERSION: &str = "pod-security.kubernetes.io/enforce-version";
const AUDIT_LEVEL: &str = "pod-security.kubernetes.io/audit";
const AUDIT_VERSION: &str = "pod-security.kubernetes.io/audit-version";
const WARN_LEVEL: &str = "pod-security.kubernetes.io/warn";
const WARN_VERSION: &str = "pod-security.kubernetes.io/warn-version";

/// A Pod Security Standards level, from least to most strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    /// Upstream's `ParseLevel`: an unknown value is an error, and the level to use anyway is
    /// `restricted` (enforce fails closed; audit and warn replace it with privileged).
    fn parse(text: &str) -> Result<Level, &'static str> {
        match text {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err("must be one of privileged, baseline, restricted"),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// A policy version: `latest` or `v1.N`. Every version is evaluated with the checks of this
/// server's release (see the module documentation); the version is kept to be echoed in
/// messages and to compare policies as upstream does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    Latest,
    /// `v1.N`.
    Minor(u64),
}

impl Version {
    /// Upstream's `ParseVersion`: `latest` or `v1.N` (no leading zero); anything else is an
    /// error, with `latest` to use anyway.
    fn parse(text: &str) -> Result<Version, &'static str> {
        const PROBLEM: &str = "must be \"latest\" or \"v1.x\"";
        if text == "latest" {
            return Ok(Version::Latest);
        }
        let digits = text.strip_prefix("v1.").ok_or(PROBLEM)?;
        let well_formed = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !well_formed {
            return Err(PROBLEM);
        }
        digits.parse().map(Version::Minor).map_err(|_| PROBLEM)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::Minor(minor) => write!(f, "v1.{minor}"),
        }
    }
}

/// A level at a version, shown as upstream shows it: `restricted:latest`, `baseline:v1.33`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    pub level: Level,
    pub version: Version,
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

/// The three modes of a namespace's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Violating pods are refused.
    pub enforce: LevelVersion,
    /// Violations would be recorded in the audit log (this server keeps none).
    pub audit: LevelVersion,
    /// Violations are returned as warnings.
    pub warn: LevelVersion,
}

/// kube-apiserver's default `PodSecurityConfiguration`: every mode `privileged:latest`.
const DEFAULT: LevelVersion = LevelVersion {
    level: Level::Privileged,
    version: Version::Latest,
};

impl Policy {
    /// Whether no mode checks anything (upstream's `FullyPrivileged`).
    pub fn fully_privileged(&self) -> bool {
        [self.enforce, self.audit, self.warn]
            .iter()
            .all(|mode| mode.level == Level::Privileged)
    }
}

/// One label that could not be parsed: `(field, message)` as a 422's cause, e.g.
/// `("metadata.labels[pod-security.kubernetes.io/enforce]", "Invalid value: \"foo\": must be
/// one of privileged, baseline, restricted")`.
pub type LabelError = (String, String);

/// The policy of a namespace with these labels (`metadata.labels`, possibly absent), and the
/// errors for labels that do not parse. A usable policy comes back even with errors, as
/// upstream's `PolicyToEvaluate`: an unparsable enforce level enforces `restricted`, an
/// unparsable audit or warn level turns that mode off, an unparsable version is `latest`.
pub fn policy_from_labels(labels: Option<&Value>) -> (Policy, Vec<LabelError>) {
    let mut policy = Policy {
        enforce: DEFAULT,
        audit: DEFAULT,
        warn: DEFAULT,
    };
    let mut errors = Vec::new();
    let Some(labels) = labels.and_then(Value::as_object) else {
        return (policy, errors);
    };
    let enforce_level = parse_level(labels, ENFORCE_LEVEL, Level::Restricted, &mut errors);
    if let Some(level) = enforce_level {
        policy.enforce.level = level;
    }
    // Only a valid enforce level raises warn below (upstream: "Don't default warn in case
    // of error"); the enforce level is parsed first, so any error so far is its own.
    let has_enforce_level = enforce_level.is_some() && errors.is_empty();
    if let Some(version) = parse_version(labels, ENFORCE_VERSION, &mut errors) {
        policy.enforce.version = version;
    }
    if let Some(level) = parse_level(labels, AUDIT_LEVEL, Level::Privileged, &mut errors) {
        policy.audit.level = level;
    }
    if let Some(version) = parse_version(labels, AUDIT_VERSION, &mut errors) {
        policy.audit.version = version;
    }
    let warn_level = parse_level(labels, WARN_LEVEL, Level::Privileged, &mut errors);
    if let Some(level) = warn_level {
        policy.warn.level = level;
    }
    let warn_version = parse_version(labels, WARN_VERSION, &mut errors);
    if let Some(version) = warn_version {
        policy.warn.version = version;
    }
    // Warn defaults to the enforce level when enforce is explicitly stricter, so that a
    // workload whose pods would be refused says so when it is created.
    if warn_level.is_none() && has_enforce_level && policy.enforce.level > policy.warn.level {
        policy.warn.level = policy.enforce.level;
        if warn_version.is_none() {
            policy.warn.version = policy.enforce.version;
        }
    }
    (policy, errors)
}

/// The level set by `label`, if the label is there; `fallback` when its value is not a level
/// (and an error is recorded).
fn parse_level(
    labels: &Map<String, Value>,
    label: &str,
    fallback: Level,
    errors: &mut Vec<LabelError>,
) -> Option<Level> {
    let value = label_value(labels, label)?;
    Some(Level::parse(value).unwrap_or_else(|problem| {
        errors.push(label_error(label, value, problem));
        fallback
    }))
}

/// The version set by `label`, if the label is there; `latest` when its value is not a
/// version (and an error is recorded).
fn parse_version(
    labels: &Map<String, Value>,
    label: &str,
    errors: &mut Vec<LabelError>,
) -> Option<Version> {
    let value = label_value(labels, label)?;
    Some(Version::parse(value).unwrap_or_else(|problem| {
        errors.push(label_error(label, value, problem));
        Version::Latest
    }))
}

fn label_value<'a>(labels: &'a Map<String, Value>, label: &str) -> Option<&'a str> {
    // A label value that is not a string cannot be stored by kube-apiserver; here it reads
    // as the empty value, which is not a valid level or version either.
    labels.get(label).map(|v| v.as_str().unwrap_or_default())
}

/// `field.Invalid(metadata.labels[<label>], value, problem)` as upstream words it.
fn label_error(label: &str, value: &str, problem: &str) -> LabelError {
    (
        format!("metadata.labels[{label}]"),
        format!("Invalid value: {}: {problem}", go_quote(value)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lv(level: Level, version: Version) -> LevelVersion {
        LevelVersion { level, version }
    }

    #[test]
    fn no_labels_is_privileged_everywhere() {
        let (policy, errors) = policy_from_labels(None);
        assert!(policy.fully_privileged() && errors.is_empty());
        let (policy, _) = policy_from_labels(Some(&json!({"app": "x"})));
        assert!(policy.fully_privileged());
    }

    #[test]
    fn warn_follows_a_stricter_enforce() {
        let labels = json!({ENFORCE_LEVEL: "restricted", ENFORCE_VERSION: "v1.33"});
        let (policy, errors) = policy_from_labels(Some(&labels));
        assert!(errors.is_empty());
        let restricted = lv(Level::Restricted, Version::Minor(33));
        assert_eq!((policy.enforce, policy.warn), (restricted, restricted));
        assert_eq!(policy.audit, DEFAULT);
        assert_eq!(restricted.to_string(), "restricted:v1.33");

        let labels = json!({ENFORCE_LEVEL: "baseline", WARN_LEVEL: "privileged"});
        let (policy, _) = policy_from_labels(Some(&labels));
        assert_eq!(policy.warn.level, Level::Privileged, "warn set explicitly");

        let labels = json!({ENFORCE_LEVEL: "baseline", WARN_VERSION: "v1.30"});
        let (policy, _) = policy_from_labels(Some(&labels));
        assert_eq!(policy.warn, lv(Level::Baseline, Version::Minor(30)));
        assert_eq!(policy.warn.to_string(), "baseline:v1.30");
    }

    #[test]
    fn bad_values_are_field_errors_and_fail_as_upstream() {
        let labels = json!({ENFORCE_LEVEL: "foo", WARN_LEVEL: "bar", AUDIT_VERSION: "v1.05"});
        let (policy, errors) = policy_from_labels(Some(&labels));
        assert_eq!(
            policy.enforce.level,
            Level::Restricted,
            "enforce fails closed"
        );
        assert_eq!(policy.warn.level, Level::Privileged, "warn fails open");
        assert_eq!(
            errors,
            [
                (
                    "metadata.labels[pod-security.kubernetes.io/enforce]".to_string(),
                    "Invalid value: \"foo\": must be one of privileged, baseline, restricted"
                        .to_string()
                ),
                (
                    "metadata.labels[pod-security.kubernetes.io/audit-version]".to_string(),
                    "Invalid value: \"v1.05\": must be \"latest\" or \"v1.x\"".to_string()
                ),
                (
                    "metadata.labels[pod-security.kubernetes.io/warn]".to_string(),
                    "Invalid value: \"bar\": must be one of privileged, baseline, restricted"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn versions_parse_as_upstream() {
        for (text, version) in [
            ("latest", Some(Version::Latest)),
            ("v1.0", Some(Version::Minor(0))),
            ("v1.33", Some(Version::Minor(33))),
            ("v1.033", None),
            ("v2.1", None),
            ("v1.", None),
            ("1.33", None),
            ("v1.-1", None),
        ] {
            assert_eq!(Version::parse(text).ok(), version, "{text}");
        }
    }
}
