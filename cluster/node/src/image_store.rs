//! The node's image store: the root filesystem of each catalog image, built from the host's
//! Debian packages (see [`crate::rootfs`]) with the image's own files and applet links baked
//! in, once per content, in a directory that outlives any one cluster, so a later start
//! reuses it. Every container of an image gets that directory as the read-only lower layer of
//! its overlay root.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::catalog::{ImageEntry, data_file};
use crate::debian_packages::PackageDatabase;
use crate::rootfs::{RootfsRecipe, ensure_rootfs};

/// Where image root filesystems are kept when the configuration names no directory: outside
/// the clusters' instance directories, so that later starts reuse them.
pub const DEFAULT_IMAGE_DIR: &str = "/var/lib/k8s-labs/images";

/// Where pulled images are kept when the configuration names no directory (on the same
/// filesystem as [`DEFAULT_IMAGE_DIR`], which the node checks for idmapped mounts).
pub const DEFAULT_PULLED_IMAGE_DIR: &str = "/var/lib/k8s-labs/pulled";

/// The images of one node, built on first use; cheap to clone.
#[derive(Debug, Clone)]
pub struct ImageStore(Arc<StoreInner>);

#[derive(Debug)]
struct StoreInner {
    dir: PathBuf,
    /// Root filesystems ready in this process, by image name. The lock is held during a build,
    /// so that pods of one image wait for one build.
    ready: Mutex<HashMap<String, PathBuf>>,
    /// The host's package database, read at the first image this process needs (images are
    /// keyed by package versions, so it is read once per start, not once per image).
    database: OnceLock<PackageDatabase>,
}

impl ImageStore {
    /// A store keeping its root filesystems under `dir` (e.g. [`DEFAULT_IMAGE_DIR`]).
    pub fn new(dir: PathBuf) -> ImageStore {
        ImageStore(Arc::new(StoreInner {
            dir,
            ready: Mutex::new(HashMap::new()),
            database: OnceLock::new(),
        }))
    }

    /// The root filesystem of `entry`, built first if needed (seconds, once; blocking).
    pub fn rootfs(&self, entry: &ImageEntry) -> Result<PathBuf> {
        let mut ready = self
            .0
            .ready
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(dir) = ready.get(&entry.name) {
            return Ok(dir.clone());
        }
        let started = Instant::now();
        let database = match self.0.database.get() {
            Some(database) => database,
            None => {
                let database = PackageDatabase::read()?;
                self.0.database.get_or_init(|| database)
            }
        };
        let files = image_files(entry)?;
        let links = applet_links(entry)?;
        let recipe = RootfsRecipe {
            image: &entry.name,
            packages: &entry.packages,
            essential: entry.essential,
            users: &entry.users,
            files: &files,
            links: &links,
        };
        let (dir, built) = ensure_rootfs(&self.0.dir, database, &recipe)?;
        if built {
            tracing::info!(
                "built the root filesystem of image {} in {:.1} s: {}",
                entry.name,
                started.elapsed().as_secs_f64(),
                dir.display()
            );
        }
        ready.insert(entry.name.clone(), dir.clone());
        Ok(dir)
    }

    /// [`ImageStore::rootfs`] off the async runtime's threads.
    pub async fn rootfs_async(&self, entry: Arc<ImageEntry>) -> Result<PathBuf> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.rootfs(&entry))
            .await
            .context("the image build task failed")?
    }
}

/// The image's files of this repository's `cluster/node/data`: (path in the image, content).
fn image_files(entry: &ImageEntry) -> Result<Vec<(String, String)>> {
    entry
        .files
        .iter()
        .map(|file| {
            let content = data_file(&file.source)
                .with_context(|| format!("data file {} is not embedded", file.source))?;
            Ok((file.target.clone(), content.to_string()))
        })
        .collect()
}

/// The applet links of a multi-call binary: (path in the image, link target).
fn applet_links(entry: &ImageEntry) -> Result<Vec<(String, String)>> {
    let Some(applets) = &entry.applets else {
        return Ok(Vec::new());
    };
    let mut names = applet_names(&applets.program)?;
    names.extend(applets.overrides.keys().cloned());
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .map(|name| {
            let target = applets
                .overrides
                .get(&name)
                .map_or(applets.program.as_str(), String::as_str)
                .to_string();
            (format!("{}/{name}", applets.directory), target)
        })
        .collect())
}

/// The applets of a multi-call binary (`busybox --list`).
fn applet_names(program: &str) -> Result<Vec<String>> {
    let output = std::process::Command::new(program)
        .arg("--list")
        .output()
        .with_context(|| format!("running {program} --list"))?;
    if !output.status.success() {
        bail!("{program} --list failed");
    }
    let names = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .map(str::to_string)
        .collect();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use std::path::Path;

    #[test]
    fn the_busybox_1_28_image_links_nslookup_to_bind9_and_has_nothing_of_the_host() {
        let store = ImageStore::new(PathBuf::from(DEFAULT_IMAGE_DIR));
        let catalog = Catalog::embedded().unwrap();
        let entry = catalog.resolve("busybox:1.28").unwrap().entry;
        let rootfs = store.rootfs(&entry).unwrap();
        let applets = rootfs.join(".k8s-labs/bin");
        assert_eq!(
            std::fs::read_link(applets.join("nslookup")).unwrap(),
            Path::new("/usr/bin/nslookup")
        );
        assert_eq!(
            std::fs::read_link(applets.join("sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert!(rootfs.join("bin/busybox").is_file());
        assert!(rootfs.join("usr/bin/nslookup").is_file());
        // Nothing the image does not need: no nginx, no kubectl, no shadow file.
        assert!(!rootfs.join("usr/sbin/nginx").exists());
        assert!(!rootfs.join("usr/bin/kubectl").exists());
        assert!(!rootfs.join("etc/shadow").exists());
        let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
        assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
        // The second call finds the same directory.
        assert_eq!(store.rootfs(&entry).unwrap(), rootfs);
    }
}
