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
    realign_tables(&redact_ages(&redact_hashes(&redact_ips(&redact_uids(
        text,
    )))))
}

/// Lines out kubectl-style tables again after their cells were redacted: a placeholder is
/// rarely as wide as what it replaced (`example-app-x7k2m` → `example-app-[HASH]`), which
/// would leave the columns ragged. A table is a header of upper-case cells (`NAME`,
/// `CLUSTER-IP`, `PORT(S)`) and the lines under it with as many cells, separated by two or
/// more spaces; its columns get kubectl's padding of three spaces. Other lines are left as
/// they are.
pub fn realign_tables(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut index = 0;
    while index < lines.len() {
        let header = cells(lines[index]);
        if !is_table_header(&header) {
            out.push(lines[index].to_string());
            index += 1;
            continue;
        }
        // The table goes on while lines have as many cells as its header; a blank line, a line
        // of another shape or the next table's header ends it.
        let end = (index + 1..lines.len())
            .find(|&next| {
                let row = cells(lines[next]);
                row.len() != header.len() || is_table_header(&row)
            })
            .unwrap_or(lines.len());
        let rows: Vec<Vec<&str>> = lines[index..end].iter().map(|line| cells(line)).collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|column| {
                rows.iter()
                    .map(|row| row[column].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &rows {
            let mut line = String::new();
            for (column, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if column + 1 < row.len() {
                    line.push_str(&" ".repeat(widths[column] + 3 - cell.chars().count()));
                }
            }
            out.push(line);
        }
        index = end;
    }
    out.join("\n")
}

/// The cells of a table line: separated by two or more spaces (a cell such as
/// `NOMINATED NODE` has one space inside).
fn cells(line: &str) -> Vec<&str> {
    line.trim_end()
        .split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .collect()
}

fn is_table_header(cells: &[&str]) -> bool {
    cells.len() >= 2
        && cells.iter().all(|cell| {
            cell.starts_with(|c: char| c.is_ascii_uppercase())
                && cell
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "()/- ".contains(c))
        })
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
    fn tables_are_lined_up_again_after_redaction() {
        let table = "NAME                READY   STATUS\nexample-app-x7k2m   1/1     Running\nexample-app-b9zq4   0/1     ErrImagePull\n\nafter   the  table";
        assert_eq!(
            redact(table),
            "NAME                 READY   STATUS\nexample-app-[HASH]   1/1     Running\nexample-app-[HASH]   0/1     ErrImagePull\n\nafter   the  table"
        );
        let wide = "NAME    READY   STATUS    IP           NOMINATED NODE\nweb-0   1/1     Running   10.244.0.2   <none>";
        assert_eq!(
            redact(wide),
            "NAME    READY   STATUS    IP     NOMINATED NODE\nweb-0   1/1     Running   [IP]   <none>"
        );
    }

    #[test]
    fn a_table_ends_at_a_line_of_another_shape_or_the_next_header() {
        let text = "scaled\nNAME    STATUS\nweb-x7k2m   Running\nweb-0 mounts www-0\nNAME   AGE   X\nweb-0   1/1   Running";
        assert_eq!(
            realign_tables(&redact_hashes(text)),
            "scaled\nNAME         STATUS\nweb-[HASH]   Running\nweb-0 mounts www-0\nNAME    AGE   X\nweb-0   1/1   Running"
        );
        let not_a_header = "Name:   web-0\nStatus:   Running";
        assert_eq!(realign_tables(not_a_header), not_a_header);
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
