//! Golden files: the expected output of a step kept in `labs/<lab>/expected/`, compared after
//! redaction, with the snapbox/trycmd conventions for what varies:
//!
//! * placeholders that redaction writes into the actual text: `[IP]`, `[AGE]`, `[UID]`,
//!   `pvc-[UUID]`, `[HASH]`, `[NS]` (the run's namespace);
//! * `[..]` inside a line matches any text on that line;
//! * a line that is only `...` matches any number of lines (none included).
//!
//! `--bless` rewrites a golden file from the current run when it no longer matches, keeping its
//! wildcards where they still match, and says what changed, so accepting a new output is one
//! command and a reviewable diff.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Mismatch, unified_diff};

/// Inside a line: any text.
const ANY_TEXT: &str = "[..]";
/// A whole line: any number of lines.
const ANY_LINES: &str = "...";

/// What a golden comparison did, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoldenOutcome {
    /// The output matched the golden file.
    Matched,
    /// `--bless` wrote the file; `diff` is from the old content (empty when new) to the new.
    Blessed {
        /// The file written.
        path: PathBuf,
        /// What changed, as a unified diff.
        diff: String,
    },
}

/// Whether one line matches one pattern line (`[..]` matches any text; trailing whitespace is
/// not significant).
fn line_matches(pattern: &str, line: &str) -> bool {
    let pattern = pattern.trim_end();
    let line = line.trim_end();
    let mut parts = pattern.split(ANY_TEXT);
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn lines_match(pattern: &[&str], actual: &[&str]) -> bool {
    match pattern.split_first() {
        None => actual.is_empty(),
        Some((&ANY_LINES, rest)) => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((line, rest)) => actual
            .split_first()
            .is_some_and(|(first, others)| line_matches(line, first) && lines_match(rest, others)),
    }
}

fn significant_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|line| line.is_empty()) {
        lines.pop();
    }
    lines
}

/// Whether `actual` (already redacted) matches the golden `pattern`.
pub fn matches_pattern(pattern: &str, actual: &str) -> bool {
    lines_match(&significant_lines(pattern), &significant_lines(actual))
}

/// `actual` rewritten to look like `pattern` wherever it matches it: lines matched by a
/// pattern line become that pattern line and lines skipped by `...` become `...`. A diff
/// from the pattern to this text then shows only what really differs, not the wildcards.
pub fn align_to_pattern(pattern: &str, actual: &str) -> String {
    let pattern = significant_lines(pattern);
    let actual = significant_lines(actual);
    let mut aligned: Vec<&str> = Vec::with_capacity(actual.len());
    let (mut p, mut a) = (0, 0);
    while p < pattern.len() && a < actual.len() {
        if pattern[p] == ANY_LINES {
            aligned.push(ANY_LINES);
            p += 1;
            match pattern.get(p) {
                // A trailing `...` takes everything left.
                None => a = actual.len(),
                Some(_) => {
                    // Resynchronize on the first later pattern line found in the rest, and
                    // let `...` take what comes before the lines leading up to it.
                    let found = (p..pattern.len())
                        .filter(|&q| pattern[q] != ANY_LINES)
                        .find_map(|q| {
                            let k =
                                (a..actual.len()).find(|&k| line_matches(pattern[q], actual[k]))?;
                            Some(k.saturating_sub(q - p).max(a))
                        });
                    if let Some(found) = found {
                        a = found;
                    }
                }
            }
        } else if line_matches(pattern[p], actual[a]) {
            aligned.push(pattern[p]);
            p += 1;
            a += 1;
        } else if let Some(found) = (a..actual.len()).find(|&k| line_matches(pattern[p], actual[k]))
        {
            // Lines the pattern does not have: show them as they are, then resynchronize.
            aligned.extend_from_slice(&actual[a..found]);
            a = found;
        } else {
            // A pattern line with no match left: the diff shows it as missing.
            p += 1;
        }
    }
    if p < pattern.len() && pattern[p..].iter().all(|line| *line == ANY_LINES) {
        aligned.push(ANY_LINES);
    }
    aligned.extend_from_slice(&actual[a..]);
    let mut text = aligned.join("\n");
    text.push('\n');
    text
}

/// Claims that `actual` (already redacted) matches the golden file at `path`. With `bless`,
/// a missing or outdated file is (re)written from `actual` and the outcome says what changed;
/// without it, a missing file is a failed claim that says how to create it.
pub fn expect_golden(claim: &str, path: &Path, actual: &str, bless: bool) -> Result<GoldenOutcome> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(error)
                .with_context(|| format!("cannot read golden file {}", path.display()));
        }
    };
    if let Some(pattern) = &existing
        && matches_pattern(pattern, actual)
    {
        return Ok(GoldenOutcome::Matched);
    }
    if bless {
        // Like snapbox: the wildcards (`[..]`, `...`) of the old file stay wherever they still
        // match; only the lines that no longer match are rewritten from the run.
        let text = existing
            .as_deref()
            .map(|pattern| align_to_pattern(pattern, actual))
            .filter(|aligned| matches_pattern(aligned, actual))
            .unwrap_or_else(|| {
                let mut text = significant_lines(actual).join("\n");
                text.push('\n');
                text
            });
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(path, &text)
            .with_context(|| format!("cannot write golden file {}", path.display()))?;
        let diff = unified_diff(existing.as_deref().unwrap_or_default(), &text);
        return Ok(GoldenOutcome::Blessed {
            path: path.to_path_buf(),
            diff,
        });
    }
    let mismatch = match existing {
        Some(pattern) => Mismatch::new(claim, pattern.clone(), align_to_pattern(&pattern, actual))
            .with_detail(format!(
                "golden file {}; if the new output is right, rerun with --bless",
                crate::apply::display_path(path)
            )),
        None => Mismatch::new(claim, "", actual).with_detail(format!(
            "no golden file {} yet; rerun with --bless to create it from this output",
            crate::apply::display_path(path)
        )),
    };
    Err(mismatch.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET_PODS: &str = "NAME    READY   STATUS    RESTARTS   AGE
web-0   1/1     Running   0          [AGE]
web-1   1/1     Running   0          [AGE]
";

    #[test]
    fn exact_lines_match_and_trailing_whitespace_does_not_count() {
        assert!(matches_pattern(
            GET_PODS,
            &GET_PODS.replace("[AGE]", "[AGE]   ")
        ));
        assert!(!matches_pattern(
            GET_PODS,
            &GET_PODS.replace("Running", "Pending")
        ));
        assert!(!matches_pattern(
            GET_PODS,
            "NAME    READY   STATUS    RESTARTS   AGE\n"
        ));
    }

    #[test]
    fn any_text_matches_within_one_line_only() {
        assert!(line_matches(
            "web-0 [..] Running [..]",
            "web-0   1/1   Running   0   [AGE]"
        ));
        assert!(line_matches("[..]", ""));
        assert!(line_matches("a[..]b[..]c", "a-b-c"));
        assert!(!line_matches("a[..]b[..]c", "a-c-b"));
        assert!(!line_matches("web-0 [..]", "web-1   1/1"));
        // The suffix must not overlap the prefix.
        assert!(!line_matches("ab[..]ba", "aba"));
    }

    #[test]
    fn any_lines_skips_zero_or_more_lines() {
        let pattern = "NAME[..]\n...\nweb-1[..]\n";
        assert!(matches_pattern(pattern, GET_PODS));
        assert!(matches_pattern("...\n", GET_PODS));
        assert!(matches_pattern("...\nweb-0[..]\n...\n", GET_PODS));
        assert!(!matches_pattern("...\nweb-2[..]\n", GET_PODS));
        assert!(matches_pattern("a\n...\nb\n", "a\nb\n"));
    }

    #[test]
    fn alignment_hides_wildcards_and_shows_real_differences() {
        let pattern = "header [..]\n...\nweb-2 Running\nfooter\n";
        let actual = "header 123\nnoise 1\nnoise 2\nweb-2 Pending\nfooter\n";
        let aligned = align_to_pattern(pattern, actual);
        let diff = unified_diff(pattern, &aligned);
        assert!(diff.contains("-web-2 Running"), "{diff}");
        assert!(diff.contains("+web-2 Pending"), "{diff}");
        assert!(!diff.contains("header 123"), "{diff}");
        assert!(!diff.contains("noise"), "{diff}");
    }

    #[test]
    fn a_mismatch_names_the_file_and_bless_rewrites_it() {
        let dir = std::env::temp_dir().join(format!("golden-{}", std::process::id()));
        let path = dir.join("get-pods.txt");
        let _ = std::fs::remove_dir_all(&dir);

        let missing = expect_golden("pods", &path, GET_PODS, false).unwrap_err();
        let mismatch = missing.downcast_ref::<Mismatch>().unwrap();
        assert!(mismatch.detail.as_deref().unwrap().contains("--bless"));

        let created = expect_golden("pods", &path, GET_PODS, true).unwrap();
        assert!(matches!(created, GoldenOutcome::Blessed { .. }));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), GET_PODS);
        assert_eq!(
            expect_golden("pods", &path, GET_PODS, false).unwrap(),
            GoldenOutcome::Matched
        );

        let changed = GET_PODS.replace("web-1", "web-9");
        let failed = expect_golden("pods", &path, &changed, false).unwrap_err();
        let diff = failed.downcast_ref::<Mismatch>().unwrap().diff();
        assert!(diff.contains("-web-1") && diff.contains("+web-9"), "{diff}");

        match expect_golden("pods", &path, &changed, true).unwrap() {
            GoldenOutcome::Blessed { diff, .. } => assert!(diff.contains("+web-9"), "{diff}"),
            other => panic!("expected a bless, got {other:?}"),
        }
        // A matching file is left alone, wildcards and all.
        std::fs::write(&path, "NAME[..]\n...\n").unwrap();
        assert_eq!(
            expect_golden("pods", &path, &changed, true).unwrap(),
            GoldenOutcome::Matched
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "NAME[..]\n...\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bless_rewrites_only_the_lines_that_no_longer_match() {
        let dir = std::env::temp_dir().join(format!("golden-keep-{}", std::process::id()));
        let path = dir.join("get-pods.txt");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            &path,
            "NAME    READY   STATUS\nweb-0   0/1     [..]ImagePull[..]\n...\nend 1\n",
        )
        .unwrap();
        let actual = "NAME     READY   STATUS\nweb-0   0/1     ImagePullBackOff\nnoise\nend 2\n";
        match expect_golden("pods", &path, actual, true).unwrap() {
            GoldenOutcome::Blessed { diff, .. } => {
                assert!(
                    diff.contains("+NAME     READY") && diff.contains("+end 2"),
                    "{diff}"
                );
                assert!(
                    !diff.contains("-web-0") && !diff.contains("+web-0"),
                    "{diff}"
                );
            }
            other => panic!("expected a bless, got {other:?}"),
        }
        // `...` could not find where it ends (`end 1` is gone), so it keeps matching nothing
        // and the new lines are written out after it.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "NAME     READY   STATUS\nweb-0   0/1     [..]ImagePull[..]\n...\nnoise\nend 2\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
