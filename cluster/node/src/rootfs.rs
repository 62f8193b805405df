//! Image root filesystems built from Debian packages, the way distroless images are built
//! from `.deb` packages: the files the host's package database lists for the image's packages
//! and everything they depend on, under the same top-level layout as the host (`/bin` →
//! `usr/bin` on a merged-/usr system), with a minimal `/etc` of the image's own (`passwd` and
//! `group` with the image's users, `nsswitch.conf`). Documentation, manual pages and
//! translations are left out, as in Debian's slim images.
//!
//! A root filesystem is built once per content key (the builder's format, the image's name,
//! the packages with their versions, its users) into the image store, then shared read-only by
//! every container of the image as the lower layer of its overlay, and reused by later
//! cluster starts. A build goes to a directory of its own and is renamed into place when
//! complete, so clusters starting at the same time never see half an image.

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::debian_packages::PackageDatabase;

/// Changes whenever what a build produces changes, so that old builds are not reused.
const FORMAT: &str = "k8s-labs rootfs 1";

/// Paths left out of every image (as Debian's slim images leave them out).
const EXCLUDED: &[&str] = &[
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/info/",
    "/usr/share/locale/",
    "/usr/share/lintian/",
    "/usr/share/bug/",
];

/// The top-level directories that a merged-/usr host links into `/usr`.
const MERGED_USR_LINKS: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// A user of an image (a line of its `/etc/passwd`; its group has the user's name and gid).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// What an image's root filesystem is made of.
#[derive(Debug, Clone)]
pub struct RootfsRecipe<'a> {
    /// The image's name (part of the directory's name, for people looking at the store).
    pub image: &'a str,
    /// The packages named by the image; their dependencies come along.
    pub packages: &'a [String],
    /// Whether Debian's Essential packages come along too (a Debian-based image).
    pub essential: bool,
    pub users: &'a [ImageUser],
    /// Files of the image's own: (absolute path in the image, content).
    pub files: &'a [(String, String)],
    /// Symlinks of the image's own: (absolute path in the image, target).
    pub links: &'a [(String, String)],
}

/// Where the root filesystem of `recipe` lives under `store`, building it first if no
/// complete build exists. Returns the directory and whether this call built it.
pub fn ensure_rootfs(
    store: &Path,
    database: &PackageDatabase,
    recipe: &RootfsRecipe<'_>,
) -> Result<(PathBuf, bool)> {
    let mut roots = recipe.packages.to_vec();
    if recipe.essential {
        roots.extend(database.essential());
    }
    let packages = database
        .closure(&roots)
        .with_context(|| format!("image {}", recipe.image))?;
    let dir = store.join(format!(
        "{}-{}",
        recipe.image,
        content_key(&packages, recipe)
    ));
    if dir.is_dir() {
        return Ok((dir, false));
    }
    std::fs::create_dir_all(store).with_context(|| format!("creating {}", store.display()))?;
    let building = store.join(format!(
        ".building-{}-{}-{}",
        recipe.image,
        std::process::id(),
        rand::random::<u32>()
    ));
    let built = build(&building, database, &packages, recipe);
    if let Err(error) = built {
        let _ = std::fs::remove_dir_all(&building);
        return Err(error.context(format!("building the root filesystem of {}", recipe.image)));
    }
    match std::fs::rename(&building, &dir) {
        Ok(()) => Ok((dir, true)),
        // Another cluster finished the same build first: use that one.
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&building);
            Ok((dir, false))
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&building);
            Err(error).with_context(|| format!("moving the built image to {}", dir.display()))
        }
    }
}

/// The first 16 hex digits of the SHA-256 of everything the build depends on.
fn content_key(packages: &BTreeMap<String, String>, recipe: &RootfsRecipe<'_>) -> String {
    let mut text = format!("{FORMAT}\n{}\n", recipe.image);
    for (name, version) in packages {
        text.push_str(&format!("{name}={version}\n"));
    }
    for user in recipe.users {
        text.push_str(&format!("{user:?}\n"));
    }
    for (path, content) in recipe.files {
        text.push_str(&format!("file {path} {content:?}\n"));
    }
    for (path, target) in recipe.links {
        text.push_str(&format!("link {path} {target}\n"));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn build(
    dir: &Path,
    database: &PackageDatabase,
    packages: &BTreeMap<String, String>,
    recipe: &RootfsRecipe<'_>,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    for name in MERGED_USR_LINKS {
        if let Ok(target) = std::fs::read_link(Path::new("/").join(name)) {
            if target.is_relative() {
                // The link's target must exist for files to be copied through it.
                std::fs::create_dir_all(dir.join(&target))?;
            }
            symlink(&target, dir.join(name))?;
        }
    }
    let names: Vec<&str> = packages.keys().map(String::as_str).collect();
    let root = dir.canonicalize()?;
    for path in database.files(&names)? {
        if EXCLUDED.iter().any(|prefix| path.starts_with(prefix)) {
            continue;
        }
        copy_entry(Path::new(&path), &root)
            .with_context(|| format!("copying {path} into the image"))?;
    }
    for empty in ["proc", "sys", "dev", "tmp", "run", "root", "etc", "var/tmp"] {
        std::fs::create_dir_all(root.join(empty))?;
    }
    for sticky in ["tmp", "var/tmp"] {
        std::fs::set_permissions(root.join(sticky), std::fs::Permissions::from_mode(0o1777))?;
    }
    std::fs::set_permissions(root.join("root"), std::fs::Permissions::from_mode(0o700))?;
    write_etc(&root, recipe.users)?;
    for (path, content) in recipe.files {
        let target = inside(&root, path)?;
        std::fs::write(&target, content)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))?;
    }
    for (path, link) in recipe.links {
        symlink(link, inside(&root, path)?)?;
    }
    Ok(())
}

/// `path` (absolute, in the image) under `root`, its parent directories created; an error if
/// the parent resolves outside `root`.
fn inside(root: &Path, path: &str) -> Result<PathBuf> {
    let target = root.join(path.trim_start_matches('/'));
    let parent = target
        .parent()
        .with_context(|| format!("{path} has no parent directory"))?;
    std::fs::create_dir_all(parent)?;
    if !parent.canonicalize()?.starts_with(root) {
        bail!("{path} would be written outside the image");
    }
    Ok(target)
}

/// Copies one path the package database lists (a directory, symlink or file) from the host to
/// the same place under `root`, keeping its mode and owner. A path the host does not have
/// (left out by the host's own dpkg excludes) is skipped; so is one whose parent would lie
/// outside `root` (through a symlink to an absolute path), so a build never writes to the host.
fn copy_entry(host: &Path, root: &Path) -> Result<()> {
    let Ok(metadata) = std::fs::symlink_metadata(host) else {
        return Ok(());
    };
    let relative = host.strip_prefix("/").unwrap_or(host);
    let target = root.join(relative);
    if std::fs::symlink_metadata(&target).is_ok() {
        return Ok(());
    }
    let Some(parent) = target.parent() else {
        return Ok(());
    };
    std::fs::create_dir_all(parent)?;
    if !parent.canonicalize()?.starts_with(root) {
        tracing::debug!(
            "{} leaves the image through a symlink; skipped",
            host.display()
        );
        return Ok(());
    }
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        symlink(std::fs::read_link(host)?, &target)?;
    } else if file_type.is_dir() {
        std::fs::create_dir(&target)?;
    } else if file_type.is_file() {
        std::fs::copy(host, &target)?;
    } else {
        // Device nodes, sockets, fifos: not part of an image's files.
        return Ok(());
    }
    use std::os::unix::fs::MetadataExt;
    lchown(&target, Some(metadata.uid()), Some(metadata.gid()))?;
    if !file_type.is_symlink() {
        // After the owner: changing the owner clears setuid and setgid bits.
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(metadata.mode()))?;
    }
    Ok(())
}

/// The image's own `/etc/passwd`, `/etc/group` and `/etc/nsswitch.conf`.
fn write_etc(root: &Path, users: &[ImageUser]) -> Result<()> {
    if !users.iter().any(|user| user.uid == 0) {
        bail!("an image needs a root user (uid 0)");
    }
    let etc = root.join("etc");
    let passwd: String = users
        .iter()
        .map(|user| {
            format!(
                "{}:x:{}:{}:{}:{}:{}\n",
                user.name, user.uid, user.gid, user.name, user.home, user.shell
            )
        })
        .collect();
    let mut groups: BTreeMap<u32, String> = BTreeMap::new();
    for user in users {
        let name = if user.gid == 65534 {
            "nogroup".to_string()
        } else {
            user.name.clone()
        };
        groups.entry(user.gid).or_insert(name);
    }
    let group: String = groups
        .iter()
        .map(|(gid, name)| format!("{name}:x:{gid}:\n"))
        .collect();
    std::fs::write(etc.join("passwd"), passwd)?;
    std::fs::write(etc.join("group"), group)?;
    std::fs::write(
        etc.join("nsswitch.conf"),
        "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n\
         protocols: files\nservices: files\nethers: files\nrpc: files\n",
    )?;
    for file in ["passwd", "group", "nsswitch.conf"] {
        std::fs::set_permissions(etc.join(file), std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Vec<ImageUser> {
        vec![
            ImageUser {
                name: "root".into(),
                uid: 0,
                gid: 0,
                home: "/root".into(),
                shell: "/bin/sh".into(),
            },
            ImageUser {
                name: "nobody".into(),
                uid: 65534,
                gid: 65534,
                home: "/nonexistent".into(),
                shell: "/usr/sbin/nologin".into(),
            },
        ]
    }

    #[test]
    fn etc_has_the_images_users_and_their_groups() {
        let dir = std::env::temp_dir().join(format!("rootfs-etc-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        write_etc(&dir, &users()).unwrap();
        let passwd = std::fs::read_to_string(dir.join("etc/passwd")).unwrap();
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        );
        let group = std::fs::read_to_string(dir.join("etc/group")).unwrap();
        assert_eq!(group, "root:x:0:\nnogroup:x:65534:\n");
        assert!(write_etc(&dir, &users()[1..]).is_err(), "no root user");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_key_changes_with_a_package_version() {
        let users = users();
        let recipe = RootfsRecipe {
            image: "busybox",
            packages: &[],
            essential: false,
            users: &users,
            files: &[],
            links: &[],
        };
        let mut packages = BTreeMap::from([("busybox".to_string(), "1:1.35.0-4".to_string())]);
        let before = content_key(&packages, &recipe);
        assert_eq!(before.len(), 16);
        assert_eq!(before, content_key(&packages, &recipe));
        packages.insert("busybox".into(), "1:1.35.0-5".into());
        assert_ne!(before, content_key(&packages, &recipe));
    }
}
