//! Archives built in the test: a `docker save` archive with two layers (the second gzip'd,
//! with a whiteout, shared by a second tag through a symlink as skopeo writes it), an OCI
//! layout archive with a multi-platform index, and broken ones.

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;

use super::*;
use crate::registry::{host_architecture, sha256_digest, visible};

/// A tar archive built entry by entry.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, size: usize) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_size(size as u64);
        header
    }

    fn dir(mut self, path: &str) -> Tar {
        let mut header = Tar::header(tar::EntryType::Directory, 0);
        self.0.append_data(&mut header, path, &[][..]).unwrap();
        self
    }

    fn file(mut self, path: &str, content: &[u8]) -> Tar {
        let mut header = Tar::header(tar::EntryType::Regular, content.len());
        self.0.append_data(&mut header, path, content).unwrap();
        self
    }

    fn symlink(mut self, path: &str, target: &str) -> Tar {
        let mut header = Tar::header(tar::EntryType::Symlink, 0);
        self.0.append_link(&mut header, path, target).unwrap();
        self
    }

    /// A file whose name goes into the header as is, past the tar crate's own checks.
    fn raw_name(mut self, name: &str, content: &[u8]) -> Tar {
        let mut header = Tar::header(tar::EntryType::Regular, content.len());
        header.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        self.0.append(&header, content).unwrap();
        self
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

/// A fresh directory with a store in it; removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("archive-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn store(&self) -> PullStore {
        PullStore::open(&self.0.join("store")).unwrap()
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Nothing in the store: no blob, layer, image, reference, nor temporary file.
fn assert_empty(store: &PullStore) {
    for dir in [
        "blobs/sha256",
        "layers/sha256",
        "images/sha256",
        "references",
    ] {
        let entries: Vec<_> = fs::read_dir(store.root().join(dir)).unwrap().collect();
        assert!(entries.is_empty(), "{dir} has {entries:?}");
    }
    let tmp = store
        .root()
        .join("tmp")
        .join(std::process::id().to_string());
    if tmp.exists() {
        let entries: Vec<_> = fs::read_dir(&tmp).unwrap().collect();
        assert!(entries.is_empty(), "tmp has {entries:?}");
    }
}

/// The lower layer: a marker and a file the upper layer deletes.
fn lower_layer() -> Vec<u8> {
    Tar::new()
        .dir("etc")
        .file("etc/marker", b"loaded from an archive\n")
        .file("doomed", b"deleted by the upper layer\n")
        .bytes()
}

/// The upper layer: deletes `doomed`, adds `added`.
fn upper_layer() -> Vec<u8> {
    Tar::new()
        .file(".wh.doomed", b"")
        .file("added", b"upper\n")
        .bytes()
}

fn config(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": host_architecture(), "os": "linux",
        "config": {"Entrypoint": ["/bin/sh"], "Env": ["A=b"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// A `docker save` archive of one image tagged `test:1`, and as `example.com/other:2`
/// through a symlink to its lower layer (as skopeo links a layer it writes once).
fn docker_archive(lower: &[u8], upper: &[u8], diff_ids: &[String]) -> Vec<u8> {
    let config = config(diff_ids);
    let config_name = format!("{}.json", hex(&sha256_digest(&config)));
    let manifest = serde_json::json!([
        {"Config": config_name, "RepoTags": ["test:1"],
         "Layers": ["l1/layer.tar", "l2/layer.tar"]},
        {"Config": config_name, "RepoTags": ["example.com/other:2"],
         "Layers": ["l3/layer.tar", "l2/layer.tar"]},
    ]);
    Tar::new()
        .file("l1/layer.tar", lower)
        .file("l2/layer.tar", upper)
        .symlink("l3/layer.tar", "../l1/layer.tar")
        .file(&config_name, &config)
        .file("manifest.json", &serde_json::to_vec(&manifest).unwrap())
        .bytes()
}

#[test]
fn loads_a_docker_save_archive_with_a_whiteout_layer() {
    let scratch = Scratch::new("docker");
    let store = scratch.store();
    let (lower, upper) = (lower_layer(), upper_layer());
    let diff_ids = [sha256_digest(&lower), sha256_digest(&upper)];
    let upper_gzip = gzip(&upper);
    let file = scratch.write(
        "docker.tar",
        &docker_archive(&lower, &upper_gzip, &diff_ids),
    );

    let loaded = load_archive(&store, &file, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.len(), 1, "{loaded:?}");
    let image = &loaded[0];
    assert_eq!(
        image.references,
        ["docker.io/library/test:1", "example.com/other:2"]
    );
    // The image is named by the manifest made for it, stored as a blob: the uncompressed
    // layer by its diff id, the gzip'd one by its own digest.
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(store.blob_path(&image.digest).unwrap()).unwrap())
            .unwrap();
    assert_eq!(manifest["layers"][0]["digest"], diff_ids[0]);
    assert_eq!(manifest["layers"][1]["digest"], sha256_digest(&upper_gzip));
    assert_eq!(
        manifest["layers"][1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let record = store
        .reference("docker.io/library/test:1")
        .unwrap()
        .unwrap();
    assert_eq!(record.digest, image.digest);
    assert_eq!(record.source, "archive docker.tar");

    let stored = store.image(&image.digest).unwrap().unwrap();
    assert_eq!(stored.config.entrypoint, Some(vec!["/bin/sh".to_string()]));
    assert_eq!(stored.record.size, image.size);
    assert_eq!(
        fs::read_to_string(visible(&stored.layers, "etc/marker").unwrap()).unwrap(),
        "loaded from an archive\n"
    );
    assert!(visible(&stored.layers, "added").is_some());
    assert!(
        visible(&stored.layers, "doomed").is_none(),
        "the whiteout hides doomed"
    );
    // The upper layer unpacked alone marks the deletion as overlayfs does.
    let upper_dir = store.layer_dir(&sha256_digest(&upper_gzip)).unwrap();
    let mark = fs::symlink_metadata(upper_dir.join("doomed")).unwrap();
    assert!(mark.file_type().is_char_device());

    // Loading again changes nothing: the same image, the same blobs.
    let blobs = fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count();
    let again = load_archive(&store, &file, &LoadOptions::default()).unwrap();
    assert_eq!(again, loaded);
    let after = fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(after, blobs, "manifest, config and two layers");
    assert_eq!(blobs, 4);
    assert!(
        fs::read_dir(
            store
                .root()
                .join("tmp")
                .join(std::process::id().to_string())
        )
        .unwrap()
        .next()
        .is_none(),
        "nothing is left in tmp/"
    );
}

/// The parts of an OCI image layout: its blobs by digest, and the digest of the host's
/// manifest.
struct Layout {
    blobs: Vec<(String, Vec<u8>)>,
    manifest: String,
    index: String,
}

fn layout() -> Layout {
    let (lower, upper) = (gzip(&lower_layer()), upper_layer());
    let config = config(&[sha256_digest(&lower_layer()), sha256_digest(&upper)]);
    let descriptor = |media_type: &str, bytes: &[u8]| {
        serde_json::json!({"mediaType": media_type, "digest": sha256_digest(bytes),
                           "size": bytes.len()})
    };
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &lower),
                   descriptor("application/vnd.oci.image.layer.v1.tar", &upper)],
    }))
    .unwrap();
    let foreign = if host_architecture() == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    // The other platform's manifest is not in the archive: it is never read.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": sha256_digest(b"elsewhere"), "size": 9,
             "platform": {"architecture": foreign, "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": sha256_digest(&manifest), "size": manifest.len(),
             "platform": {"architecture": host_architecture(), "os": "linux"}},
        ],
    }))
    .unwrap();
    Layout {
        manifest: sha256_digest(&manifest),
        index: sha256_digest(&index),
        blobs: [lower, upper, config, manifest, index]
            .into_iter()
            .map(|bytes| (sha256_digest(&bytes), bytes))
            .collect(),
    }
}

/// An OCI layout archive of `blobs` as `tar -C layout -cf x.tar .` writes it.
fn oci_archive(blobs: &[(String, Vec<u8>)], index: &serde_json::Value) -> Vec<u8> {
    let mut tar = Tar::new()
        .dir("./")
        .file("./oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .dir("./blobs/")
        .dir("./blobs/sha256/");
    for (digest, bytes) in blobs {
        tar = tar.file(&format!("./blobs/sha256/{}", hex(digest)), bytes);
    }
    tar.file("./index.json", &serde_json::to_vec(index).unwrap())
        .bytes()
}

/// `index.json` naming the multi-platform index `name`, and the host's manifest by a bare
/// tag (for `--repository`).
fn top_index(layout: &Layout, name: &str) -> serde_json::Value {
    serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": layout.index,
         "size": 1, "annotations": {"org.opencontainers.image.ref.name": name}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": layout.manifest,
         "size": 1, "annotations": {"org.opencontainers.image.ref.name": "v1"}},
    ]})
}

#[test]
fn loads_an_oci_layout_archive_for_the_host_platform() {
    let scratch = Scratch::new("oci");
    let layout = layout();
    let archive = oci_archive(&layout.blobs, &top_index(&layout, "example.com/app:v2"));
    let file = scratch.write("app.tar", &archive);
    let options = LoadOptions {
        repository: Some("example.com/app".into()),
    };
    let store = scratch.store();
    let loaded = load_archive(&store, &file, &options).unwrap();
    assert_eq!(loaded.len(), 1, "both entries are one image: {loaded:?}");
    assert_eq!(loaded[0].digest, layout.manifest);
    assert_eq!(
        loaded[0].references,
        ["example.com/app:v2", "example.com/app:v1"]
    );
    let stored = store.image(&layout.manifest).unwrap().unwrap();
    assert!(visible(&stored.layers, "etc/marker").is_some());
    assert!(visible(&stored.layers, "doomed").is_none());
    assert_eq!(stored.config.env, ["A=b"]);
    let record = store.reference("example.com/app:v1").unwrap().unwrap();
    assert_eq!(record.source, "archive app.tar");
    assert!(store.has_blob(&layout.manifest).unwrap());

    // The same archive gzip'd as a whole, into another store: the same image.
    let other = PullStore::open(&scratch.0.join("other")).unwrap();
    let gzipped = scratch.write("app.tar.gz", &gzip(&archive));
    let again = load_archive(&other, &gzipped, &options).unwrap();
    assert_eq!(again[0].digest, layout.manifest);
}

#[test]
fn a_bare_tag_needs_a_repository_and_another_platform_is_refused() {
    let scratch = Scratch::new("tag");
    let store = scratch.store();
    let layout = layout();
    let file = scratch.write(
        "tag.tar",
        &oci_archive(&layout.blobs, &top_index(&layout, "example.com/app:v2")),
    );
    let error = load_archive(&store, &file, &LoadOptions::default()).unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("named only by the tag \"v1\"") && message.contains("--repository"),
        "{message}"
    );
    assert_empty(&store);

    let foreign = if host_architecture() == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": layout.manifest,
         "size": 1, "platform": {"architecture": foreign, "os": "linux"},
         "annotations": {"io.containerd.image.name": "example.com/app:v3"}}]});
    let file = scratch.write("foreign.tar", &oci_archive(&layout.blobs, &index));
    let error = load_archive(&store, &file, &LoadOptions::default()).unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains(&format!("only for linux/{foreign}")),
        "{message}"
    );
    assert_empty(&store);
}

#[test]
fn bad_archives_get_one_line_naming_the_file_and_leave_nothing() {
    let scratch = Scratch::new("bad");
    let store = scratch.store();
    let layout = layout();
    let index = top_index(&layout, "example.com/app:v2");
    let (lower, upper) = (lower_layer(), upper_layer());
    let diff_ids = [sha256_digest(&lower), sha256_digest(&upper)];
    let tampered_upper = Tar::new().file("added", b"tampered\n").bytes();
    let mut missing = layout.blobs.clone();
    missing.remove(1);
    // The manifest's blob, with content that is not what its name says.
    let mut corrupt = layout.blobs.clone();
    corrupt[3].1 = b"{}".to_vec();
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "text.tar",
            b"this is not an archive at all\n".repeat(40),
            "is not a tar archive".into(),
        ),
        (
            "empty-tar.tar",
            Tar::new().file("hello", b"hi").bytes(),
            "neither manifest.json (docker save) nor index.json".into(),
        ),
        (
            "diff-id.tar",
            docker_archive(&lower, &tampered_upper, &diff_ids),
            "l2/layer.tar: digest mismatch: the config's diff id is".into(),
        ),
        (
            "missing.tar",
            oci_archive(&missing, &index),
            format!("blob {} is missing from the archive", layout.blobs[1].0),
        ),
        (
            "corrupt.tar",
            oci_archive(&corrupt, &index),
            format!(
                "blobs/sha256/{}: digest mismatch: expected {}, the content has {}",
                hex(&layout.manifest),
                layout.manifest,
                sha256_digest(b"{}")
            ),
        ),
        (
            "truncated.tar",
            docker_archive(&lower, &upper, &diff_ids)[..1500].to_vec(),
            "the archive is truncated or corrupt after l1/layer.tar".into(),
        ),
        (
            "no-config.tar",
            Tar::new()
                .file("manifest.json", br#"[{"Config":"c.json","Layers":[]}]"#)
                .bytes(),
            "the archive has no file c.json".into(),
        ),
    ];
    for (name, bytes, expected) in cases {
        let file = scratch.write(name, &bytes);
        let error = load_archive(&store, &file, &LoadOptions::default()).unwrap_err();
        let message = format!("{error:#}");
        eprintln!("{message}");
        assert!(
            message.starts_with(&file.display().to_string()) && message.contains(&expected),
            "{name}: {message}"
        );
        assert!(!message.contains('\n'), "{name}: one line: {message}");
        assert_empty(&store);
    }
}

#[test]
fn an_image_that_fails_to_unpack_takes_back_what_it_added() {
    let scratch = Scratch::new("unpack");
    let store = scratch.store();
    // Its digests are right, but the layer tries to write outside the root.
    let lower = lower_layer();
    let escaping = Tar::new().raw_name("../escape", b"x").bytes();
    let diff_ids = [sha256_digest(&lower), sha256_digest(&escaping)];
    let file = scratch.write("escape.tar", &docker_archive(&lower, &escaping, &diff_ids));
    let error = load_archive(&store, &file, &LoadOptions::default()).unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("contains '..'"), "{message}");
    assert_empty(&store);
    assert!(!scratch.0.join("escape").exists());
}
