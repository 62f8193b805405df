//! Pruning stores made in the test: images whose layers a mount table names are kept (an
//! overlay's lower directories, idmapped bind mounts' roots, also on a filesystem mounted
//! below `/`), the
//! rest go with their references, blobs and layers; and the same against real mounts.

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::*;
use crate::registry::{ReferenceRecord, sha256_digest};

/// A fresh directory (with a space in its name, as mountinfo escapes it); removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("prune {name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn commit(store: &PullStore, bytes: &[u8]) -> String {
    let digest = sha256_digest(bytes);
    let temp = store.temp_path("blob");
    fs::write(&temp, bytes).unwrap();
    store.commit_blob(&temp, &digest).unwrap();
    digest
}

fn layer(file: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header.set_size(file.len() as u64);
    builder
        .append_data(&mut header, file, file.as_bytes())
        .unwrap();
    builder.into_inner().unwrap()
}

/// Stores an image of the shared layer and one of its own, named `example.com/<name>:1`;
/// returns its digest and its own layer's.
fn image(store: &PullStore, name: &str) -> (String, String) {
    let shared = commit(store, &layer("shared"));
    let own = commit(store, &layer(name));
    let config = commit(
        store,
        format!(r#"{{"config":{{"Cmd":["{name}"]}}}}"#).as_bytes(),
    );
    let digest = commit(store, format!(r#"{{"manifest":"{name}"}}"#).as_bytes());
    let layers = vec![shared, own.clone()];
    for layer in &layers {
        store.unpack_layer(layer).unwrap();
    }
    store.build_image(&digest, &config, &layers).unwrap();
    store
        .record_reference(&ReferenceRecord {
            reference: format!("example.com/{name}:1"),
            digest: digest.clone(),
            repo_digest: None,
            source: "test".into(),
        })
        .unwrap();
    (digest, own)
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

/// The path as mountinfo writes it (space as `\040`).
fn escaped(path: &Path) -> String {
    path.display().to_string().replace(' ', "\\040")
}

fn count(store: &PullStore, dir: &str) -> usize {
    fs::read_dir(store.root().join(dir)).unwrap().count()
}

/// A mount table where an overlay has `overlaid`'s root filesystem as its lower directory,
/// an idmapped bind mount shows `idmapped`'s as its root (relative to its filesystem, here as
/// if the store's parent directory were a filesystem of its own), and a mount's root only
/// ends like `unused`'s (another store's), which does not count.
fn table_naming(store: &PullStore, overlaid: &str, idmapped: &str, unused: &str) -> String {
    let root = store.root().canonicalize().unwrap();
    let layers_of = |digest: &str| store.image(digest).unwrap().unwrap().record.layers;
    // overlayfs lists lower directories top-most first.
    let lowerdir: Vec<String> = layers_of(overlaid)
        .iter()
        .rev()
        .map(|layer| escaped(&root.join("layers/sha256").join(hex(layer))))
        .collect();
    let mut table = format!(
        "30 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
         90 30 0:61 / /run/k8s-labs/a/rootfs rw,relatime - overlay overlay \
         rw,lowerdir={},upperdir=/run/k8s-labs/a/upper,workdir=/run/k8s-labs/a/work\n",
        lowerdir.join(":")
    );
    for (index, layer) in layers_of(idmapped).iter().enumerate() {
        let bind_root = Path::new("/")
            .join(root.file_name().unwrap())
            .join("layers/sha256")
            .join(hex(layer));
        table.push_str(&format!(
            "{} 30 253:0 {} /run/k8s-labs/b/lower/{index} rw,relatime,idmapped shared:1 - ext4 \
             /dev/vda rw\n",
            91 + index,
            escaped(&bind_root)
        ));
    }
    for layer in layers_of(unused) {
        let elsewhere = Path::new("/elsewhere/layers/sha256").join(hex(&layer));
        table.push_str(&format!(
            "99 30 253:0 {} /mnt/elsewhere rw - ext4 /dev/vda rw\n",
            escaped(&elsewhere)
        ));
    }
    table
}

#[test]
fn images_named_by_the_mount_table_are_kept_and_the_rest_removed() {
    let scratch = Scratch::new("table");
    let store = PullStore::open(&scratch.0.join("store")).unwrap();
    let (overlaid, _) = image(&store, "overlaid");
    let (idmapped, _) = image(&store, "idmapped");
    let (unused, unused_layer) = image(&store, "unused");
    store
        .record_reference(&ReferenceRecord {
            reference: "example.com/gone:1".into(),
            digest: sha256_digest(b"no such image"),
            repo_digest: None,
            source: "test".into(),
        })
        .unwrap();
    let mountinfo = table_naming(&store, &overlaid, &idmapped, &unused);
    assert_eq!(count(&store, "blobs/sha256"), 10);

    let report = prune_with(&store, &mountinfo).unwrap();
    let in_use: Vec<&str> = report
        .in_use
        .iter()
        .map(|image| image.digest.as_str())
        .collect();
    let mut expected = vec![overlaid.as_str(), idmapped.as_str()];
    expected.sort();
    assert_eq!(in_use, expected);
    assert_eq!(
        report.removed,
        [NamedImage {
            digest: unused.clone(),
            references: vec!["example.com/unused:1".into()],
        }]
    );
    assert_eq!(report.dangling, ["example.com/gone:1"]);
    // Its manifest, config and own layer; the shared layer stays.
    assert_eq!((report.blobs, report.layers), (3, 1));
    assert!(report.freed > 0);
    assert!(store.image(&unused).unwrap().is_none());
    assert!(store.reference("example.com/unused:1").unwrap().is_none());
    assert!(!store.has_blob(&unused_layer).unwrap() && !store.has_blob(&unused).unwrap());
    assert!(!store.layer_dir(&unused_layer).unwrap().exists());
    assert_eq!(store.references().unwrap().len(), 2);
    assert_eq!(
        (
            count(&store, "blobs/sha256"),
            count(&store, "layers/sha256")
        ),
        (7, 3)
    );
    for kept in [&overlaid, &idmapped] {
        let layers = store.image(kept).unwrap().unwrap().layers;
        assert!(crate::registry::visible(&layers, "shared").is_some());
    }

    // Nothing mounted: everything goes.
    let report = prune_with(&store, "").unwrap();
    assert_eq!(
        (report.removed.len(), report.blobs, report.layers),
        (2, 7, 3)
    );
    assert_eq!(
        count(&store, "images/sha256") + count(&store, "references"),
        0
    );
}

#[test]
fn reads_the_paths_of_a_mountinfo_line() {
    // As Linux 6.18 shows an overlay mounted with "lowerdir=/a/lo\,w\:er x:/b".
    let line = concat!(
        r"78 27 0:40 / /tmp/m rw,relatime - overlay overlay ",
        r"rw,lowerdir=/a/lo\134\054w\134:er\040x:/b,upperdir=/tmp/up,workdir=/tmp/wk,uuid=on"
    );
    assert_eq!(
        mount_paths(line),
        ["/", "/tmp/m", "/a/lo,w:er x", "/b"].map(String::from)
    );
    let bind = r"91 30 253:0 /var/lib/x\040y /run/lower rw,idmapped shared:1 - ext4 /dev/vda rw";
    assert_eq!(
        mount_paths(bind),
        ["/var/lib/x y", "/run/lower"].map(String::from)
    );
    let root: Vec<&OsStr> = ["var", "lib", "k8s-labs", "pulled"].map(OsStr::new).into();
    let hex = "ab".repeat(32);
    let found = |path: &str| store_item(Path::new(path), &root);
    let image = Some(("images", hex.clone()));
    let layer = Some(("layers", hex.clone()));
    // The store's own path, or the end of it on a filesystem mounted below `/`.
    let pulled = format!("/var/lib/k8s-labs/pulled/images/sha256/{hex}/rootfs");
    assert_eq!(found(&pulled), image);
    assert_eq!(found(&format!("/pulled/layers/sha256/{hex}")), layer);
    assert_eq!(found(&format!("/images/sha256/{hex}/rootfs/etc")), image);
    assert_eq!(
        found(&format!("/other/pulled/images/sha256/{hex}/rootfs")),
        None
    );
    assert_eq!(
        found("/var/lib/k8s-labs/pulled/images/sha256/abc/rootfs"),
        None
    );
}

/// Unmounts what a test mounted, even when it fails.
struct Mounts(Vec<PathBuf>);

impl Drop for Mounts {
    fn drop(&mut self) {
        for target in self.0.iter().rev() {
            let _ = umount2(target, MntFlags::MNT_DETACH);
        }
    }
}

#[test]
fn images_under_real_mounts_are_kept() {
    let scratch = Scratch::new("mounts");
    let store = PullStore::open(&scratch.0.join("store")).unwrap();
    let (overlaid, _) = image(&store, "overlaid");
    let (bound, _) = image(&store, "bound");
    let (unused, _) = image(&store, "unused");
    let layers = |digest: &str| store.image(digest).unwrap().unwrap().layers;
    let mut mounts = Mounts(Vec::new());
    // As the node mounts a container's root without a user namespace ...
    let [upper, work, merged, bind] =
        ["upper", "work", "merged", "bind"].map(|name| scratch.0.join(name));
    for dir in [&upper, &work, &merged, &bind] {
        fs::create_dir_all(dir).unwrap();
    }
    crate::mounts::mount_overlay(&layers(&overlaid), &upper, &work, &merged).unwrap();
    mounts.0.push(merged.clone());
    // ... and the bind mounts idmapped ones are (their roots are the image's layers).
    for (index, layer) in layers(&bound).iter().enumerate() {
        let target = bind.join(index.to_string());
        fs::create_dir_all(&target).unwrap();
        mount(
            Some(layer),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        mounts.0.push(target);
    }
    assert!(merged.join("overlaid").is_file() && bind.join("1/bound").is_file());

    let report = prune_images(&store).unwrap();
    let removed: Vec<&str> = report
        .removed
        .iter()
        .map(|image| image.digest.as_str())
        .collect();
    assert_eq!(removed, [unused.as_str()]);
    assert_eq!(report.in_use.len(), 2);
    assert!(store.image(&overlaid).unwrap().is_some() && store.image(&bound).unwrap().is_some());
    drop(mounts);
}
