//! The host's Debian package database, read through `dpkg-query`: which packages are
//! installed (with their versions), what each depends on, and which files each installed.
//! Image root filesystems are made of these files (see [`crate::rootfs`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    /// `binary:Package` (`libc6:amd64` for a multi-arch package): what `dpkg-query -L` takes.
    pub binary_name: String,
    pub version: String,
    pub essential: bool,
    /// `Pre-Depends` and `Depends`: each clause a list of alternatives (package names).
    pub depends: Vec<Vec<String>>,
}

/// The installed packages, by name, with the virtual packages they provide.
#[derive(Debug, Default)]
pub struct PackageDatabase {
    packages: HashMap<String, InstalledPackage>,
    /// Virtual package name → installed packages that provide it.
    provided_by: HashMap<String, Vec<String>>,
}

/// The fields read per package, tab-separated, one package a line.
const QUERY_FORMAT: &str = "${Package}\t${binary:Package}\t${Version}\t${db:Status-Abbrev}\t${Essential}\t${Provides}\t${Pre-Depends}\t${Depends}\n";

impl PackageDatabase {
    /// Reads the host's database.
    pub fn read() -> Result<PackageDatabase> {
        let output = Command::new("dpkg-query")
            .args(["-W", "-f", QUERY_FORMAT])
            .output()
            .context("running dpkg-query (is this a Debian system?)")?;
        if !output.status.success() {
            bail!(
                "dpkg-query -W failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(PackageDatabase::parse(&String::from_utf8_lossy(
            &output.stdout,
        )))
    }

    /// Parses `dpkg-query -W -f QUERY_FORMAT` output; packages not fully installed are left out.
    pub fn parse(text: &str) -> PackageDatabase {
        let mut database = PackageDatabase::default();
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let [
                name,
                binary_name,
                version,
                status,
                essential,
                provides,
                pre,
                depends,
            ] = fields[..]
            else {
                continue;
            };
            // `ii `: selected for install, installed, no error.
            if !status.starts_with("ii") {
                continue;
            }
            for virtual_name in clause_names(provides) {
                database
                    .provided_by
                    .entry(virtual_name)
                    .or_default()
                    .push(name.to_string());
            }
            let depends = [pre, depends]
                .iter()
                .flat_map(|field| field.split(','))
                .map(|clause| clause.split('|').filter_map(package_name).collect())
                .filter(|alternatives: &Vec<String>| !alternatives.is_empty())
                .collect();
            database.packages.insert(
                name.to_string(),
                InstalledPackage {
                    binary_name: binary_name.to_string(),
                    version: version.to_string(),
                    essential: essential == "yes",
                    depends,
                },
            );
        }
        database
    }

    pub fn get(&self, name: &str) -> Option<&InstalledPackage> {
        self.packages.get(name)
    }

    /// The names of the installed packages marked `Essential: yes` (what every Debian system,
    /// and so every Debian-based image such as the official nginx one, has).
    pub fn essential(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .packages
            .iter()
            .filter(|(_, package)| package.essential)
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// An installed package that satisfies `name`: itself, or one providing it.
    fn satisfying(&self, name: &str) -> Option<&str> {
        if let Some((name, _)) = self.packages.get_key_value(name) {
            return Some(name);
        }
        self.provided_by
            .get(name)
            .and_then(|providers| providers.first())
            .map(String::as_str)
    }

    /// `roots` and everything they depend on, transitively (for each clause the first
    /// installed alternative), by name with their versions. A root that is not installed is
    /// an error naming it; an unsatisfied dependency cannot be (dpkg keeps them satisfied), and
    /// is skipped.
    pub fn closure(&self, roots: &[String]) -> Result<BTreeMap<String, String>> {
        let missing: Vec<&str> = roots
            .iter()
            .map(String::as_str)
            .filter(|name| self.satisfying(name).is_none())
            .collect();
        if !missing.is_empty() {
            bail!(
                "Debian packages not installed: {}; run: apt-get install -y {}",
                missing.join(", "),
                missing.join(" ")
            );
        }
        let mut found = BTreeMap::new();
        let mut pending: Vec<String> = roots.to_vec();
        let mut seen = BTreeSet::new();
        while let Some(wanted) = pending.pop() {
            let Some(name) = self.satisfying(&wanted) else {
                continue;
            };
            if !seen.insert(name.to_string()) {
                continue;
            }
            let package = &self.packages[name];
            found.insert(name.to_string(), package.version.clone());
            for clause in &package.depends {
                if let Some(choice) = clause.iter().find(|alt| self.satisfying(alt).is_some()) {
                    pending.push(choice.clone());
                }
            }
        }
        Ok(found)
    }

    /// The paths the packages installed (`dpkg-query -L`), sorted, each once.
    pub fn files(&self, names: &[&str]) -> Result<Vec<String>> {
        let binary_names: Vec<&str> = names
            .iter()
            .filter_map(|name| self.packages.get(*name))
            .map(|package| package.binary_name.as_str())
            .collect();
        let output = Command::new("dpkg-query")
            .arg("-L")
            .args(&binary_names)
            .output()
            .context("running dpkg-query -L")?;
        if !output.status.success() {
            bail!(
                "dpkg-query -L failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let paths: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            // Diversion notes ("diverted by …", "package diverts others to: …") are not paths.
            .filter(|line| line.starts_with('/') && *line != "/.")
            .map(str::to_string)
            .collect();
        Ok(paths.into_iter().collect())
    }
}

/// The package name of one alternative: `libc6 (>= 2.34)` → `libc6`, `python3:any` → `python3`.
fn package_name(alternative: &str) -> Option<String> {
    let name = alternative.split_whitespace().next()?;
    let name = name.split(':').next().unwrap_or(name);
    let name = name.split('(').next().unwrap_or(name);
    (!name.is_empty()).then(|| name.to_string())
}

/// The names of a comma-separated field such as `Provides`.
fn clause_names(field: &str) -> Vec<String> {
    field.split(',').filter_map(package_name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATABASE: &str = "\
nginx\tnginx\t1.22.1-9\tii \tno\thttpd, nginx-abi-1.22.1-7\t\tlibc6 (>= 2.34), libssl3 (>= 3.0.0), nginx-common (>= 1.22.1-9)\n\
nginx-common\tnginx-common\t1.22.1-9\tii \tno\t\t\tlsb-base, debconf (>= 0.5) | debconf-2.0\n\
libc6\tlibc6:amd64\t2.36-9\tii \tno\t\t\tlibgcc-s1\n\
libgcc-s1\tlibgcc-s1:amd64\t12.2.0-14\tii \tno\t\tgcc-12-base (= 12.2.0-14)\tlibc6 (>= 2.35)\n\
gcc-12-base\tgcc-12-base:amd64\t12.2.0-14\tii \tno\t\t\t\n\
libssl3\tlibssl3:amd64\t3.0.17-1\tii \tno\t\t\tlibc6 (>= 2.34)\n\
debconf\tdebconf\t1.5.82\tii \tno\tdebconf-2.0\tperl-base (>= 5.20.1-3~)\t\n\
perl-base\tperl-base\t5.36.0-7\tii \tyes\tperlapi-5.36.0\t\tlibc6 (>= 2.35)\n\
removed\tremoved\t1.0\trc \tno\t\t\t\n";

    #[test]
    fn the_closure_follows_depends_and_pre_depends_and_skips_uninstalled_alternatives() {
        let database = PackageDatabase::parse(DATABASE);
        let closure = database.closure(&["nginx".to_string()]).unwrap();
        let names: Vec<&str> = closure.keys().map(String::as_str).collect();
        // lsb-base is not installed (dpkg would not allow it; skipped), debconf is the first
        // installed alternative, gcc-12-base comes through Pre-Depends.
        assert_eq!(
            names,
            [
                "debconf",
                "gcc-12-base",
                "libc6",
                "libgcc-s1",
                "libssl3",
                "nginx",
                "nginx-common",
                "perl-base"
            ]
        );
        assert_eq!(closure["libc6"], "2.36-9");
        assert_eq!(database.get("libc6").unwrap().binary_name, "libc6:amd64");
        assert_eq!(database.essential(), ["perl-base"]);
    }

    #[test]
    fn a_root_that_is_not_installed_is_named_with_the_install_command() {
        let database = PackageDatabase::parse(DATABASE);
        let error = database
            .closure(&[
                "nginx".to_string(),
                "removed".to_string(),
                "curl".to_string(),
            ])
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Debian packages not installed: removed, curl; run: apt-get install -y removed curl"
        );
        // A virtual package is satisfied by its provider.
        assert!(database.closure(&["httpd".to_string()]).is_ok());
    }

    #[test]
    fn this_machine_lists_the_files_of_libc() {
        let database = PackageDatabase::read().unwrap();
        let files = database.files(&["libc6"]).unwrap();
        assert!(
            files.iter().any(|path| path.contains("libc.so.6")),
            "{files:?}"
        );
        assert!(files.iter().all(|path| path.starts_with('/')));
    }
}
