//! The name rules of apimachinery's `util/validation` (DNS-1123 subdomains and labels,
//! DNS-1035 labels, qualified names, label values, port names) with their exact messages,
//! and which rule names each resource (`ValidateXName` in kube-apiserver's validation).

use crate::registry::ResourceInfo;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// `validation.RegexError`: the message, the examples, the regex.
fn regex_error(message: &str, format: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{message} (regex used for validation is '{format}')");
    }
    let listed: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    // Upstream joins "'a', " pieces with " or ", hence the double spaces.
    format!(
        "{message} (e.g. {}regex used for validation is '{format}')",
        listed.join(" or ")
    )
}

/// `validation.MaxLenError`.
fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

fn is_alphanumeric_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Whether `value` matches `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn matches_label(value: &str) -> bool {
    value.starts_with(is_alphanumeric_lower)
        && value.ends_with(is_alphanumeric_lower)
        && value.chars().all(|c| is_alphanumeric_lower(c) || c == '-')
}

fn matches_subdomain(value: &str) -> bool {
    value.split('.').all(matches_label)
}

/// `validation.IsDNS1123Label`.
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(max_len_error(63));
    }
    if !matches_label(value) {
        if matches_subdomain(value) {
            errors.push("must not contain dots".to_string());
        } else {
            errors.push(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errors
}

/// `validation.IsDNS1123Subdomain`.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 253 {
        errors.push(max_len_error(253));
    }
    if !matches_subdomain(value) {
        errors.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errors
}

/// `validation.IsDNS1035Label`.
pub fn dns1035_label(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(max_len_error(63));
    }
    if !(matches_label(value) && value.starts_with(|c: char| c.is_ascii_lowercase())) {
        errors.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errors
}

/// Whether `value` matches `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn matches_qualified(value: &str) -> bool {
    value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `validation.IsQualifiedName`: label keys, annotation keys, finalizers.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                let problems = dns1123_subdomain(prefix);
                errors.extend(problems.into_iter().map(|p| format!("prefix part {p}")));
            }
            *name
        }
        _ => {
            errors.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errors;
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errors.push(format!("name part {}", max_len_error(63)));
    }
    if !matches_qualified(name) {
        errors.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errors
}

/// `validation.IsValidLabelValue`.
pub fn label_value(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(max_len_error(63));
    }
    if !(value.is_empty() || matches_qualified(value)) {
        errors.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

/// `validation.IsValidPortName` (IANA_SVC_NAME).
pub fn port_name(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 15 {
        errors.push(max_len_error(15));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        errors
            .push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !value.chars().any(|c| c.is_ascii_lowercase()) {
        errors.push("must contain at least one letter (a-z)".into());
    }
    if value.contains("--") {
        errors.push("must not contain consecutive hyphens".into());
    }
    if value.starts_with('-') || value.ends_with('-') {
        errors.push("must not begin or end with a hyphen".into());
    }
    errors
}

/// `validation.IsValidPortNum`.
pub fn port_number(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_string()]
    }
}

/// A `ValidateNameFunc`: the problems of a name, or of a generateName prefix when `prefix`.
pub type NameRule = fn(&str, bool) -> Vec<String>;

/// `maskTrailingDash`: a prefix may end in '-', as the random suffix follows it.
fn mask_trailing_dash(name: &str, prefix: bool) -> String {
    if prefix && name.len() > 1 && name.ends_with('-') {
        // Upstream drops the last two bytes and appends "a" (so "ab-" checks as "aa").
        let mut cut = name.len() - 2;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}a", &name[..cut])
    } else {
        name.to_string()
    }
}

fn name_is_subdomain(name: &str, prefix: bool) -> Vec<String> {
    dns1123_subdomain(&mask_trailing_dash(name, prefix))
}

fn name_is_label(name: &str, prefix: bool) -> Vec<String> {
    dns1123_label(&mask_trailing_dash(name, prefix))
}

fn name_is_dns1035(name: &str, prefix: bool) -> Vec<String> {
    dns1035_label(&mask_trailing_dash(name, prefix))
}

/// `path.ValidatePathSegmentName`: the only rule the generic registry applies to a name
/// (core Events' strategy adds none), so that it can be a URL path segment.
fn name_is_path_segment(name: &str, prefix: bool) -> Vec<String> {
    if !prefix && (name == "." || name == "..") {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|bad| name.contains(**bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

/// The name rule of `resource`: DNS-1123 labels for Namespaces and (since 1.27) StatefulSets,
/// whose names become pod hostnames; DNS-1035 labels for Services, whose names become
/// environment variables and DNS names; core Events only what a URL path segment needs;
/// DNS-1123 subdomains for every other kind served.
pub fn rule_for(resource: &ResourceInfo) -> NameRule {
    match (resource.group, resource.plural) {
        ("", "namespaces") | ("apps", "statefulsets") => name_is_label,
        ("", "services") => name_is_dns1035,
        ("", "events") => name_is_path_segment,
        _ => name_is_subdomain,
    }
}

/// The name `generateName` produces: the prefix cut to 58 bytes, then 5 random characters
/// (apiserver's `SimpleNameGenerator`, so that a generated name stays within 63).
pub fn generated_name(prefix: &str) -> String {
    let mut cut = prefix.len().min(58);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &prefix[..cut], random_suffix())
}

/// The random suffix of a generated name, from the alphabet of apimachinery's `rand.String`.
fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    #[test]
    fn subdomains_labels_and_dns1035_labels() {
        assert_eq!(dns1123_subdomain("a b"), [SUBDOMAIN_MSG]);
        assert!(dns1123_subdomain(&"a".repeat(253)).is_empty());
        assert_eq!(
            dns1123_subdomain(&"a".repeat(254)),
            ["must be no more than 253 characters"]
        );
        assert_eq!(dns1123_label("web.x"), ["must not contain dots"]);
        assert!(dns1123_label(&"a".repeat(63)).is_empty());
        assert_eq!(
            dns1123_label("Web"),
            [
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(
            dns1035_label("0web"),
            [
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
    }

    #[test]
    fn names_per_resource() {
        let rule = |group, plural| rule_for(find(group, "v1", plural).unwrap());
        // ConfigMaps and Pods are subdomains: 253 characters and dots are fine.
        assert!(rule("", "configmaps")(&"a".repeat(253), false).is_empty());
        assert!(rule("", "pods")(&"p".repeat(64), false).is_empty());
        assert!(rule("", "pods")("web-0.x", false).is_empty());
        assert!(!rule("", "pods")("Web", false).is_empty());
        // Namespaces and StatefulSets are labels, Services DNS-1035 labels.
        assert!(!rule("", "namespaces")(&"n".repeat(64), false).is_empty());
        assert_eq!(
            rule("apps", "statefulsets")("a.b", false),
            ["must not contain dots"]
        );
        assert!(!rule("", "services")("0web", false).is_empty());
        // A generateName prefix may end in '-'.
        assert!(rule("", "pods")("web-", true).is_empty());
        assert!(!rule("", "pods")("web-", false).is_empty());
    }

    #[test]
    fn qualified_names_and_label_values() {
        assert!(qualified_name("app.kubernetes.io/name").is_empty());
        assert_eq!(
            qualified_name("a b"),
            [
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ]
        );
        assert_eq!(qualified_name("/x"), ["prefix part must be non-empty"]);
        assert!(qualified_name("a/b/c")[0].starts_with("a qualified name must consist"));
        assert!(label_value("").is_empty());
        assert_eq!(
            label_value(&"v".repeat(64)),
            ["must be no more than 63 characters"]
        );
        assert_eq!(port_name("web"), Vec::<String>::new());
        assert_eq!(port_name("80"), ["must contain at least one letter (a-z)"]);
    }

    #[test]
    fn generated_names_stay_within_63() {
        let name = generated_name(&"x".repeat(70));
        assert_eq!(name.len(), 63);
        assert!(name.starts_with(&"x".repeat(58)));
        assert_eq!(generated_name("web-").len(), 9);
    }
}
