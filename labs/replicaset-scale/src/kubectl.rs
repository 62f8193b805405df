//! What the lab reads in kubectl's output beyond the harness's tables.

/// Whether `name` is what a ReplicaSet `owner` gives its pods through generateName:
/// `<owner>-` and a 5-character random suffix of lowercase letters and digits. An ordinal
/// (`<owner>-0`, as a StatefulSet names its pods) is not.
pub fn is_generated_name(name: &str, owner: &str) -> bool {
    let Some(suffix) = name
        .strip_prefix(owner)
        .and_then(|rest| rest.strip_prefix('-'))
    else {
        return false;
    };
    suffix.len() == 5
        && suffix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !suffix.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_have_a_random_suffix_not_an_ordinal() {
        assert!(is_generated_name("example-app-x7k2p", "example-app"));
        assert!(!is_generated_name("example-app-0", "example-app"));
        assert!(!is_generated_name("example-app-12345", "example-app"));
        assert!(!is_generated_name("other-x7k2p", "example-app"));
        assert!(!is_generated_name("example-app-X7K2P", "example-app"));
    }
}
