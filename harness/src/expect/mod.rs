//! Claims: what a step expected next to what it got, with a unified diff for text, plus the
//! pure helpers that make real outputs comparable.
//!
//! A failed claim is an error value ([`Mismatch`]) rather than a panic or a bool, so the runner
//! can print it, retry on it, and keep it in the report. Kinds of claims:
//! * text: exact ([`expect_text`]), contains ([`expect_contains`]), regex ([`expect_regex`]);
//! * golden files with placeholders and `--bless` ([`golden`]);
//! * partial objects with keyed lists ([`object`]);
//! * named relations between observations, e.g. DNS answers and pod IPs ([`relations`]).

use std::fmt;

use regex::Regex;
use similar::TextDiff;

pub mod golden;
mod nslookup;
pub mod object;
mod redact;
pub mod relations;

pub use golden::{GoldenOutcome, expect_golden, matches_pattern};
pub use nslookup::{NslookupAnswer, nslookup_addresses, nslookup_error, parse_nslookup};
pub use object::expect_object;
pub use redact::{Redactions, redact, redact_ages, redact_hashes, redact_ips, redact_uids};

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

/// Claims that `text` matches the regular expression `pattern` (for outputs whose shape is
/// known but whose values are not, like `kubectl version`). An invalid pattern is a mismatch
/// too, naming the pattern's error, so a typo in a lab cannot pass.
pub fn expect_regex(claim: &str, pattern: &str, text: &str) -> Result<(), Mismatch> {
    match Regex::new(pattern) {
        Ok(regex) if regex.is_match(text) => Ok(()),
        Ok(_) => Err(Mismatch::new(
            claim,
            format!("(text matching) {pattern}"),
            text,
        )),
        Err(error) => Err(Mismatch::new(
            claim,
            format!("(text matching) {pattern}"),
            format!("(invalid pattern: {error})"),
        )),
    }
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

    #[test]
    fn regex_claims_match_or_show_the_pattern() {
        assert!(
            expect_regex(
                "version",
                r"Server Version: v1\.\d+",
                "Server Version: v1.33.0"
            )
            .is_ok()
        );
        let mismatch = expect_regex("version", r"^v2", "v1.33.0").unwrap_err();
        assert!(mismatch.expected.contains("^v2"));
        let invalid = expect_regex("version", "(", "x").unwrap_err();
        assert!(
            invalid.actual.contains("invalid pattern"),
            "{}",
            invalid.actual
        );
    }
}
