//! What the node needs from the machine, checked before a cluster starts so that a missing
//! piece gives one clear message with the command that fixes it, instead of a pod failing in
//! some odd way later.

use std::collections::BTreeSet;
use std::path::Path;

use crate::catalog::Catalog;
use crate::debian_packages::PackageDatabase;

/// Host programs the node itself runs, with their Debian packages.
const NODE_REQUIREMENTS: &[(&str, &str)] =
    &[("/usr/sbin/runc", "runc"), ("/usr/sbin/ip", "iproute2")];

/// Checks root, the node's programs and the Debian packages every image of the catalog is
/// built from. The error names each missing thing on its own line and ends with the
/// `apt-get install` line for all of them.
pub fn preflight() -> Result<(), String> {
    let mut missing: Vec<(String, String)> = NODE_REQUIREMENTS
        .iter()
        .filter(|(path, _)| !present(path))
        .map(|(path, package)| (format!("{path} is missing"), package.to_string()))
        .collect();
    let mut problems = Vec::new();
    match (Catalog::embedded(), PackageDatabase::read()) {
        (Ok(catalog), Ok(database)) => {
            for entry in catalog.entries() {
                for package in &entry.packages {
                    if database.get(package).is_none() {
                        missing.push((
                            format!("image {} is built from it", entry.name),
                            package.clone(),
                        ));
                    }
                }
            }
        }
        (Err(error), _) => problems.push(format!("the image catalog does not load: {error:#}")),
        (_, Err(error)) => problems.push(format!(
            "the Debian package database cannot be read: {error:#}"
        )),
    }
    report(nix::unistd::geteuid().is_root(), &missing, problems)
}

/// The preflight verdict from what was found.
fn report(
    is_root: bool,
    missing: &[(String, String)],
    mut problems: Vec<String>,
) -> Result<(), String> {
    if !is_root {
        problems.insert(
            0,
            "not running as root: the embedded cluster creates network namespaces, mounts and \
             runc containers (run it with sudo, or as root)"
                .to_string(),
        );
    }
    let mut packages = BTreeSet::new();
    for (what, package) in missing {
        problems.push(format!("{what} (Debian package {package})"));
        packages.insert(package.clone());
    }
    if !packages.is_empty() {
        let list: Vec<String> = packages.into_iter().collect();
        problems.push(format!("run: apt-get install -y {}", list.join(" ")));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// A required path is there when it exists, or, for a program (a path in a `bin` or `sbin`
/// directory), when it is on PATH elsewhere (`/usr/bin/runc` instead of `/usr/sbin/runc`).
fn present(path: &str) -> bool {
    let path = Path::new(path);
    if path.exists() {
        return true;
    }
    let is_program = path
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|dir| dir == "bin" || dir == "sbin");
    let Some(name) = path.file_name().filter(|_| is_program) else {
        return false;
    };
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs).any(|dir| dir.join(name).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_everything() {
        // The CI machine installs the packages first; a failure prints exactly what is missing.
        assert_eq!(preflight(), Ok(()));
    }

    #[test]
    fn names_every_missing_thing_and_the_install_command() {
        let missing = vec![
            ("/usr/sbin/runc is missing".to_string(), "runc".to_string()),
            (
                "image nginx is built from it".to_string(),
                "nginx".to_string(),
            ),
            (
                "image nginx is built from it".to_string(),
                "curl".to_string(),
            ),
        ];
        let message = report(false, &missing, Vec::new()).unwrap_err();
        let lines: Vec<&str> = message.lines().collect();
        assert!(lines[0].starts_with("not running as root"));
        assert_eq!(lines[1], "/usr/sbin/runc is missing (Debian package runc)");
        assert_eq!(
            lines[2],
            "image nginx is built from it (Debian package nginx)"
        );
        assert_eq!(
            lines.last(),
            Some(&"run: apt-get install -y curl nginx runc")
        );
        assert_eq!(report(true, &[], Vec::new()), Ok(()));
    }
}
