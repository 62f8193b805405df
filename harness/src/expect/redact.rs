//! Redactions: what varies between runs and clusters (IPs, ages, UIDs, generated hashes)
//! replaced by placeholders, so outputs compare and golden files stay stable.

use std::sync::LazyLock;

use regex::Regex;

static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\b",
    )
    .unwrap_or_else(|error| unreachable!("constant regex: {error}"))
});
static UID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
        .unwrap_or_else(|error| unreachable!("constant regex: {error}"))
});
/// The random suffix Kubernetes appends to generated names (`nginx-x7k2m`) and the hash in
/// `controller-revision-hash` / `pod-template-hash` values: 5 to 10 characters from
/// apimachinery's `rand.String` alphabet (no vowels, no 0/1/3), after a name and a dash.
static HASH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([a-z0-9][a-z0-9.-]*)-[bcdfghjklmnpqrstvwxz2456789]{5,10}\b")
        .unwrap_or_else(|error| unreachable!("constant regex: {error}"))
});
/// kubectl's AGE column: `81s`, `8m37s`, `2d22h`, `71m`, `<invalid>`.
static AGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:\d+[dhms])+\b|<invalid>")
        .unwrap_or_else(|error| unreachable!("constant regex: {error}"))
});

/// Replaces IPv4 addresses with `[IP]`, because pod and service IPs differ between runs and
/// clusters while the rest of an output does not.
pub fn redact_ips(text: &str) -> String {
    IPV4.replace_all(text, "[IP]").into_owned()
}

/// Replaces UUIDs with `[UID]`, and the UUID of a provisioned volume's name with
/// `pvc-[UUID]`, the placeholder golden files use for PV names.
pub fn redact_uids(text: &str) -> String {
    let text = UID.replace_all(text, "[UID]");
    text.replace("pvc-[UID]", "pvc-[UUID]")
}

/// Replaces generated name suffixes and template hashes with `[HASH]`:
/// `nginx-x7k2m` → `nginx-[HASH]`, `web-6d5f7c8b9` → `web-[HASH]`.
pub fn redact_hashes(text: &str) -> String {
    HASH.replace_all(text, "$1-[HASH]").into_owned()
}

/// Replaces kubectl-style ages (`81s`, `2d22h`) with `[AGE]`.
pub fn redact_ages(text: &str) -> String {
    AGE.replace_all(text, "[AGE]").into_owned()
}

/// All generic redactions at once, in an order where they cannot overlap (UIDs before ages,
/// since a UID may contain digit runs followed by `d`; IPs before hashes).
pub fn redact(text: &str) -> String {
    redact_ages(&redact_hashes(&redact_ips(&redact_uids(text))))
}

/// The redactions of one run: the generic ones plus values known only at run time, such as
/// the lab's namespace (`lab-statefulset-dns-x7k2m` → `[NS]`), which go first so that a
/// generic rule cannot cut them in half.
#[derive(Debug, Clone, Default)]
pub struct Redactions {
    values: Vec<(String, String)>,
}

impl Redactions {
    /// Only the generic redactions.
    pub fn new() -> Redactions {
        Redactions::default()
    }

    /// Adds a run-time value and its placeholder (e.g. the namespace and `[NS]`). Empty
    /// values are ignored: replacing "" would insert the placeholder everywhere.
    pub fn with_value(mut self, value: impl Into<String>, placeholder: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.values.push((value, placeholder.into()));
            // Longest first, so a value that contains another is replaced whole.
            self.values
                .sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        }
        self
    }

    /// `text` with the run-time values, then the generic patterns, replaced.
    pub fn apply(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (value, placeholder) in &self.values {
            text = text.replace(value.as_str(), placeholder);
        }
        redact(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_ips_in_the_tutorial_endpoints_line() {
        let line = "nginx            10.244.185.197:80,10.244.249.4:80,10.244.249.5:80   8m37s";
        assert_eq!(
            redact_ips(line),
            "nginx            [IP]:80,[IP]:80,[IP]:80   8m37s"
        );
        assert_eq!(
            redact(line),
            "nginx            [IP]:80,[IP]:80,[IP]:80   [AGE]"
        );
    }

    #[test]
    fn redacts_ages_of_kubectl_get_pod() {
        let table = "NAME    READY   STATUS    RESTARTS   AGE\nweb-0   1/1     Running   0          81s\nkubernetes   2d22h";
        assert_eq!(
            redact_ages(table),
            "NAME    READY   STATUS    RESTARTS   AGE\nweb-0   1/1     Running   0          [AGE]\nkubernetes   [AGE]"
        );
    }

    #[test]
    fn redaction_leaves_names_and_versions_alone() {
        let text = "web-0 image busybox:1.28 v1.33.0 port 80";
        assert_eq!(redact(text), text);
    }

    #[test]
    fn redacts_uids() {
        let text =
            "uid: 6f1c1a52-0c1e-4b8e-9d2a-3f4b5c6d7e8f pvc-6f1c1a52-0c1e-4b8e-9d2a-3f4b5c6d7e8f";
        assert_eq!(redact(text), "uid: [UID] pvc-[UUID]");
    }

    #[test]
    fn redacts_generated_suffixes_and_revision_hashes() {
        let text =
            "nginx-x7k2m   1/1   Running\ncontroller-revision-hash: web-6d5f7c8b9\nweb-0 web-12";
        assert_eq!(
            redact(text),
            "nginx-[HASH]   1/1   Running\ncontroller-revision-hash: web-[HASH]\nweb-0 web-12"
        );
        assert_eq!(
            redact("kube-system nginx-slim kube-dns"),
            "kube-system nginx-slim kube-dns"
        );
    }

    #[test]
    fn run_time_values_are_replaced_before_generic_rules() {
        let redactions = Redactions::new()
            .with_value("lab-statefulset-dns-x7k2m", "[NS]")
            .with_value("", "[EMPTY]");
        assert_eq!(
            redactions
                .apply("web-1.nginx.lab-statefulset-dns-x7k2m.svc.cluster.local 10.244.0.5 5s"),
            "web-1.nginx.[NS].svc.cluster.local [IP] [AGE]"
        );
    }
}
