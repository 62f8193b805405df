//! The user an image says its containers run as (its config's `User`: `name`, `uid`,
//! `name:group` or `uid:gid`), resolved against the image's own `/etc/passwd` and
//! `/etc/group` as containerd resolves it; and the primary group a `runAsUser` without
//! `runAsGroup` gets from the same files. The files are read from the image's layers as the
//! container's overlay root would show them: the highest layer that has one wins, and a
//! whiteout hides the lower ones.

use std::collections::HashMap;
use std::path::PathBuf;

/// An image's user, with what is needed to give a `runAsUser` its primary group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageUser {
    pub uid: u32,
    pub gid: u32,
    /// The user as the image names it when that is not a number: the kubelet cannot tell
    /// whether such a user is root, so `runAsNonRoot` refuses it.
    pub name: Option<String>,
    /// uid → primary gid, from the image's `/etc/passwd`.
    primary_groups: HashMap<u32, u32>,
}

impl ImageUser {
    /// Root, as an image without `User` runs (the tests' user: the node itself resolves
    /// every image's user with [`ImageUser::resolve`]).
    #[cfg(test)]
    pub fn root() -> ImageUser {
        ImageUser::default()
    }

    /// Resolves `user` against the files of the image whose layers (lowest first) are
    /// `layers`; the error is containerd's.
    pub fn resolve(user: &str, layers: &[PathBuf]) -> Result<ImageUser, String> {
        let passwd = read_entries(layers, "etc/passwd");
        let groups = read_entries(layers, "etc/group");
        let primary_groups: HashMap<u32, u32> = passwd
            .iter()
            .filter_map(|fields| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
            .collect();
        let (user_part, group_part) = match user.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (user, None),
        };
        let (uid, name) = match user_part {
            "" => (0, None),
            numeric if numeric.parse::<u32>().is_ok() => (numeric.parse().unwrap_or(0), None),
            name => {
                let uid = lookup(&passwd, name).ok_or_else(|| {
                    format!("unable to find user {name}: no matching entries in passwd file")
                })?;
                (uid, Some(name.to_string()))
            }
        };
        let gid = match group_part {
            None | Some("") => primary_groups.get(&uid).copied().unwrap_or(0),
            Some(numeric) if numeric.parse::<u32>().is_ok() => numeric.parse().unwrap_or(0),
            Some(group) => lookup(&groups, group).ok_or_else(|| {
                format!("unable to find group {group}: no matching entries in group file")
            })?,
        };
        Ok(ImageUser {
            uid,
            gid,
            name,
            primary_groups,
        })
    }

    /// The primary group of `uid` in the image (0 when it has none), what a container with
    /// `runAsUser` but no `runAsGroup` runs as.
    pub fn primary_gid(&self, uid: u32) -> u32 {
        self.primary_groups.get(&uid).copied().unwrap_or(0)
    }
}

/// The colon-separated lines of the image's passwd or group file (`path` relative to its
/// root); none when it has none.
fn read_entries(layers: &[PathBuf], path: &str) -> Vec<Vec<String>> {
    crate::registry::visible(layers, path)
        .and_then(|file| std::fs::read_to_string(file).ok())
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| line.split(':').map(str::to_string).collect())
        .collect()
}

/// The id (third field) of the entry named `name`.
fn lookup(entries: &[Vec<String>], name: &str) -> Option<u32> {
    entries
        .iter()
        .find(|fields| fields.first().map(String::as_str) == Some(name))
        .and_then(|fields| fields.get(2)?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_numbers_against_the_images_files() {
        let root = std::env::temp_dir().join(format!("image-user-{}", std::process::id()));
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nnginx:x:101:102::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\nnginx:x:102:\nstaff:x:50:\n",
        )
        .unwrap();
        let layers = [root.clone()];
        let user = |spec: &str| ImageUser::resolve(spec, &layers).map(|u| (u.uid, u.gid, u.name));
        assert_eq!(user(""), Ok((0, 0, None)));
        assert_eq!(user("nginx"), Ok((101, 102, Some("nginx".into()))));
        assert_eq!(user("101"), Ok((101, 102, None)));
        assert_eq!(user("1000:1000"), Ok((1000, 1000, None)));
        assert_eq!(user("nginx:staff"), Ok((101, 50, Some("nginx".into()))));
        assert_eq!(
            user("nobody"),
            Err("unable to find user nobody: no matching entries in passwd file".into())
        );
        assert!(user("0:nogroup").is_err());
        let resolved = ImageUser::resolve("", &layers).unwrap();
        // A higher layer's file wins; a whiteout hides the lower one.
        let upper = root.join("upper");
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "nginx:x:7:7::/:/bin/false\n").unwrap();
        let two = [root.clone(), upper.clone()];
        assert_eq!(ImageUser::resolve("nginx", &two).map(|u| u.uid), Ok(7));
        std::fs::remove_file(upper.join("etc/passwd")).unwrap();
        nix::sys::stat::mknod(
            &upper.join("etc/passwd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        assert!(ImageUser::resolve("nginx", &two).is_err());
        assert_eq!(
            (resolved.primary_gid(101), resolved.primary_gid(7)),
            (102, 0)
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
