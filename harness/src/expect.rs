//! Claims: what a step expected next to what it got, with a unified diff for text, plus the
//! pure helpers that make real outputs comparable (redaction, nslookup parsing).
//!
//! A failed claim is an error value ([`Mismatch`]) rather than a panic or a bool, so the runner
//! can print it, retry on it, and keep it in the report.

use std::fmt;
use std::net::IpAddr;
use std::sync::LazyLock;

use regex::Regex;
use similar::TextDiff;

/// A claim that did not hold: the expected and the actual text, kept verbatim so the report
/// can show both and a diff between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What was claimed, in words (e.g. "pods of StatefulSet web are Running and Ready").
    pub claim: String,
    /// The expected text.
    pub expected: String,
    /// The text that was observed.
    pub actual: String,
    /// Raw material that helps to understand the mismatch (e.g. the full command output).
    pub detail: Option<String>,
}

impl Mismatch {
    /// A mismatch of `claim` between `expected` and `actual`.
    pub fn new(
        claim: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Mismatch {
        Mismatch {
            claim: claim.into(),
            expected: expected.into(),
            actual: actual.into(),
            detail: None,
        }
    }

    /// Adds raw material (e.g. a command's full output) to show under the diff.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Mismatch {
        self.detail = Some(detail.into());
        self
    }

    /// The unified diff from expected to actual (only the differing hunks, with context).
    pub fn diff(&self) -> String {
        unified_diff(&self.expected, &self.actual)
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "claim failed: {}", self.claim)?;
        write!(f, "{}", self.diff())?;
        if let Some(detail) = &self.detail {
            writeln!(f, "output:")?;
            for line in detail.lines() {
                writeln!(f, "  | {line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Mismatch {}

/// A unified diff of two texts, headed `--- expected` / `+++ actual`, showing only the hunks
/// that differ with three lines of context. Texts are compared line by line; a missing final
/// newline is not a difference worth showing.
pub fn unified_diff(expected: &str, actual: &str) -> String {
    let expected = with_final_newline(expected);
    let actual = with_final_newline(actual);
    let diff = TextDiff::from_lines(expected.as_str(), actual.as_str());
    diff.unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

fn with_final_newline(text: &str) -> String {
    if text.is_empty() || text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}

/// Claims that `actual` equals `expected`, line by line (trailing whitespace on lines and a
/// final newline are ignored, because command outputs differ in them without meaning).
pub fn expect_text(claim: &str, expected: &str, actual: &str) -> Result<(), Mismatch> {
    if normalize_lines(expected) == normalize_lines(actual) {
        Ok(())
    } else {
        Err(Mismatch::new(claim, expected, actual))
    }
}

fn normalize_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|line| line.is_empty()) {
        lines.pop();
    }
    lines
}

/// Claims that `haystack` contains the line fragment `needle`. On failure the expected side of
/// the diff is the needle and the actual side the whole output, so the reader sees what came.
pub fn expect_contains(claim: &str, needle: &str, haystack: &str) -> Result<(), Mismatch> {
    if haystack.contains(needle) {
        Ok(())
    } else {
        Err(Mismatch::new(
            claim,
            format!("(a line containing) {needle}"),
            haystack,
        ))
    }
}

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

/// Replaces UUIDs (object uids, PV names) with `[UID]`.
pub fn redact_uids(text: &str) -> String {
    UID.replace_all(text, "[UID]").into_owned()
}

/// Replaces kubectl-style ages (`81s`, `2d22h`) with `[AGE]`.
pub fn redact_ages(text: &str) -> String {
    AGE.replace_all(text, "[AGE]").into_owned()
}

/// All redactions at once, in an order where they cannot overlap (UIDs before ages, since a
/// UID may contain digit runs followed by `d`).
pub fn redact(text: &str) -> String {
    redact_ages(&redact_ips(&redact_uids(text)))
}

/// One answer of an nslookup run: the name that was resolved and the addresses given for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NslookupAnswer {
    /// The name as printed after `Name:` (busybox 1.28 prints the query, bind9 the FQDN).
    pub name: String,
    /// The addresses listed for that name, in output order.
    pub addresses: Vec<IpAddr>,
}

impl NslookupAnswer {
    /// Whether this answer is for `query`: the name is the query itself or the query extended
    /// by search domains (`web-0.nginx` matches `web-0.nginx.default.svc.cluster.local`).
    pub fn answers(&self, query: &str) -> bool {
        let name = self.name.trim_end_matches('.');
        let query = query.trim_end_matches('.');
        name == query
            || name
                .strip_prefix(query)
                .is_some_and(|rest| rest.starts_with('.'))
    }
}

/// Parses the answers out of nslookup output, in both formats a lab meets:
///
/// * busybox 1.28: `Name:      web-0.nginx` then `Address 1: 10.244.1.6 [host name]`;
/// * bind9: `Name:\tweb-1.nginx.default.svc.cluster.local` then `Address: 10.244.249.4`.
///
/// The `Server:` block that both print first (bind9's `Address: 10.96.0.10#53`, busybox's
/// `Address 1: 10.0.0.10 kube-dns...`) names the DNS server and is not an answer; it is
/// skipped. Several runs concatenated (one shell running two nslookups) give all their
/// answers in order.
pub fn parse_nslookup(output: &str) -> Vec<NslookupAnswer> {
    let mut answers: Vec<NslookupAnswer> = Vec::new();
    let mut in_answer = false;
    for line in output.lines() {
        let line = line.trim();
        if line.starts_with("Server:") {
            in_answer = false;
        } else if let Some(name) = line.strip_prefix("Name:") {
            in_answer = true;
            let name = name.trim().to_string();
            // bind9 prints one Name/Address pair per address of the same name.
            if answers.last().is_none_or(|last| last.name != name) {
                answers.push(NslookupAnswer {
                    name,
                    addresses: Vec::new(),
                });
            }
        } else if in_answer && let Some(rest) = line.strip_prefix("Address") {
            // `Address: 10.244.249.4` (bind9) or `Address 1: 10.244.1.6 name` (busybox).
            let Some((_, value)) = rest.split_once(':') else {
                continue;
            };
            let Some(token) = value.split_whitespace().next() else {
                continue;
            };
            if let (Ok(address), Some(answer)) = (token.parse::<IpAddr>(), answers.last_mut()) {
                answer.addresses.push(address);
            }
        }
    }
    answers
}

/// The addresses nslookup output gives for `query` (empty when it gave none).
pub fn nslookup_addresses(output: &str, query: &str) -> Vec<IpAddr> {
    parse_nslookup(output)
        .into_iter()
        .filter(|answer| answer.answers(query))
        .flat_map(|answer| answer.addresses)
        .collect()
}

/// The `<title>` line of an HTML page: what a step shows of a page it fetched, so
/// the report stays short while the check itself runs on the whole page.
pub fn html_title(page: &str) -> String {
    page.lines()
        .find(|line| line.contains("<title>"))
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tutorial's busybox:1.28 output, verbatim.
    const BUSYBOX_WEB_0: &str = "Server:    10.0.0.10
Address 1: 10.0.0.10 kube-dns.kube-system.svc.cluster.local

Name:      web-0.nginx
Address 1: 10.244.1.6
";
    const BUSYBOX_WEB_1: &str = "nslookup web-1.nginx
Server:    10.0.0.10
Address 1: 10.0.0.10 kube-dns.kube-system.svc.cluster.local

Name:      web-1.nginx
Address 1: 10.244.2.6
";
    /// The tutorial's bind9 output (its first line glued to the prompt, as in the tutorial).
    const BIND9_WEB_1: &str = "[root@k8smaster Stateful]# nslookup web-1.nginx.default.svc.cluster.local 10.96.0.10Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

Name:\tweb-1.nginx.default.svc.cluster.local
Address: 10.244.249.4
";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_busybox_1_28_answers_and_skips_the_server_block() {
        let answers = parse_nslookup(BUSYBOX_WEB_0);
        assert_eq!(
            answers,
            vec![NslookupAnswer {
                name: "web-0.nginx".into(),
                addresses: vec![ip("10.244.1.6")]
            }]
        );
    }

    #[test]
    fn parses_busybox_address_lines_with_a_trailing_host_name() {
        let output = "Server:    10.96.0.10\nAddress 1: 10.96.0.10 kube-dns.kube-system.svc.cluster.local\n\nName:      web-0.nginx\nAddress 1: 10.244.0.2 web-0.nginx.default.svc.cluster.local\n";
        assert_eq!(
            nslookup_addresses(output, "web-0.nginx"),
            vec![ip("10.244.0.2")]
        );
    }

    #[test]
    fn parses_bind9_answer_and_ignores_server_address_with_port() {
        let answers = parse_nslookup(BIND9_WEB_1);
        assert_eq!(
            answers,
            vec![NslookupAnswer {
                name: "web-1.nginx.default.svc.cluster.local".into(),
                addresses: vec![ip("10.244.249.4")]
            }]
        );
    }

    #[test]
    fn matches_a_short_query_against_the_fqdn_bind9_prints() {
        let output = "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\nName:\tweb-0.nginx.default.svc.cluster.local\nAddress: 10.244.0.2\n";
        assert_eq!(
            nslookup_addresses(output, "web-0.nginx"),
            vec![ip("10.244.0.2")]
        );
        assert!(nslookup_addresses(output, "web-0.ngin").is_empty());
        assert!(nslookup_addresses(output, "web-1.nginx").is_empty());
    }

    #[test]
    fn keeps_the_answers_of_two_runs_apart() {
        let output = format!("{BUSYBOX_WEB_0}{BUSYBOX_WEB_1}");
        assert_eq!(
            nslookup_addresses(&output, "web-0.nginx"),
            vec![ip("10.244.1.6")]
        );
        assert_eq!(
            nslookup_addresses(&output, "web-1.nginx"),
            vec![ip("10.244.2.6")]
        );
    }

    #[test]
    fn nxdomain_gives_no_answer() {
        let output = "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n** server can't find web-0.nginx: NXDOMAIN\n";
        assert!(parse_nslookup(output).is_empty());
    }

    #[test]
    fn bind9_multiple_addresses_of_one_name_are_one_answer() {
        let output = "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\nName:\tnginx.default.svc.cluster.local\nAddress: 10.244.0.2\nName:\tnginx.default.svc.cluster.local\nAddress: 10.244.0.3\n";
        let answers = parse_nslookup(output);
        assert_eq!(answers.len(), 1);
        assert_eq!(
            answers[0].addresses,
            vec![ip("10.244.0.2"), ip("10.244.0.3")]
        );
    }

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
        assert_eq!(redact(text), "uid: [UID] pvc-[UID]");
    }

    #[test]
    fn text_claims_ignore_trailing_whitespace_and_show_a_diff() {
        assert!(expect_text("same", "a\nb\n", "a  \nb").is_ok());
        let mismatch = expect_text(
            "pods",
            "web-0\nweb-1\nweb-2\nweb-3\n",
            "web-0\nweb-1\nweb-2\n",
        )
        .unwrap_err();
        let diff = mismatch.diff();
        assert!(diff.contains("--- expected"), "{diff}");
        assert!(diff.contains("+++ actual"), "{diff}");
        assert!(diff.contains("-web-3"), "{diff}");
        assert!(!diff.contains("+web"), "{diff}");
    }

    #[test]
    fn diff_shows_only_the_differing_hunks() {
        let expected: String = (0..40).map(|i| format!("line {i}\n")).collect();
        let actual = expected.replace("line 20\n", "line twenty\n");
        let diff = unified_diff(&expected, &actual);
        assert!(diff.contains("-line 20"), "{diff}");
        assert!(diff.contains("+line twenty"), "{diff}");
        assert!(!diff.contains("line 5\n"), "{diff}");
        assert!(!diff.contains("line 35\n"), "{diff}");
    }

    #[test]
    fn contains_claim_reports_the_whole_output() {
        assert!(expect_contains("page", "<title>Welcome", "<html><title>Welcome to").is_ok());
        let mismatch = expect_contains("page", "<title>Welcome", "502 Bad Gateway").unwrap_err();
        assert!(mismatch.diff().contains("+502 Bad Gateway"));
    }

    #[test]
    fn html_title_is_the_title_line_or_nothing() {
        let page = "<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n";
        assert_eq!(html_title(page), "<title>Welcome to nginx!</title>");
        assert_eq!(html_title("403 Forbidden"), "");
    }
}
