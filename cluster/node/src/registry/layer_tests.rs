//! Layers built by hand: whiteouts, opaque directories, modes and owners, compression, and
//! entries that try to leave the root.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

enum Item {
    Dir(&'static str),
    File(&'static str, &'static str, u32, u64),
    Symlink(&'static str, &'static str),
    /// A file whose name is written into the header as is, bypassing tar's own checks.
    RawName(&'static str),
}

fn tar(items: &[Item]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        match item {
            Item::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, &[][..]).unwrap();
            }
            Item::File(path, content, mode, owner) => {
                header.set_mode(*mode);
                header.set_uid(*owner);
                header.set_gid(*owner);
                header.set_size(content.len() as u64);
                builder
                    .append_data(&mut header, path, content.as_bytes())
                    .unwrap();
            }
            Item::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, path, target).unwrap();
            }
            Item::RawName(name) => {
                header.set_mode(0o644);
                header.set_size(1);
                header.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
                header.set_cksum();
                builder.append(&header, &b"x"[..]).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A fresh directory for one test, with a root to apply layers onto.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("layer-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root")).unwrap();
        Scratch(dir)
    }
    fn root(&self) -> PathBuf {
        self.0.join("root")
    }
    fn apply(&self, blob: &[u8]) -> Result<()> {
        let path = self.0.join("blob");
        fs::write(&path, blob).unwrap();
        apply_layer(&path, &self.root(), Whiteouts::Apply)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn whiteouts_and_opaque_directories_hide_lower_layers() {
    let scratch = Scratch::new("whiteouts");
    let lower = tar(&[
        Item::Dir("a"),
        Item::File("a/keep", "k", 0o750, 1234),
        Item::File("a/gone", "g", 0o644, 0),
        Item::Dir("b"),
        Item::File("b/old", "o", 0o644, 0),
        Item::Symlink("link", "a/keep"),
    ]);
    scratch.apply(&lower).unwrap();
    let upper = tar(&[
        Item::File("a/.wh.gone", "", 0o644, 0),
        Item::Dir("b"),
        Item::File("b/new", "n", 0o644, 0),
        Item::File("b/.wh..wh..opq", "", 0o644, 0),
        Item::File("a/keep", "replaced", 0o640, 1234),
    ]);
    scratch.apply(&gzip(&upper)).unwrap();
    let root = scratch.root();
    assert!(!root.join("a/gone").exists());
    assert!(
        !root.join("b/old").exists(),
        "the opaque marker hides b/old"
    );
    assert_eq!(fs::read_to_string(root.join("b/new")).unwrap(), "n");
    assert_eq!(fs::read_to_string(root.join("a/keep")).unwrap(), "replaced");
    let keep = fs::metadata(root.join("a/keep")).unwrap();
    assert_eq!(keep.permissions().mode() & 0o7777, 0o640);
    assert_eq!((keep.uid(), keep.gid()), (1234, 1234));
    assert_eq!(
        fs::read_link(root.join("link")).unwrap(),
        Path::new("a/keep")
    );
}

#[test]
fn reads_zstd_and_uncompressed_layers() {
    let scratch = Scratch::new("zstd");
    let layer = tar(&[Item::File("z", "zstd", 0o644, 0)]);
    let zstd =
        ruzstd::encoding::compress_to_vec(&layer[..], ruzstd::encoding::CompressionLevel::Fastest);
    scratch.apply(&zstd).unwrap();
    scratch
        .apply(&tar(&[Item::File("t", "tar", 0o644, 0)]))
        .unwrap();
    assert_eq!(
        fs::read_to_string(scratch.root().join("z")).unwrap(),
        "zstd"
    );
    assert_eq!(fs::read_to_string(scratch.root().join("t")).unwrap(), "tar");
}

#[test]
fn refuses_entries_that_leave_the_root() {
    let scratch = Scratch::new("escape");
    let error = scratch
        .apply(&tar(&[Item::RawName("../escaped")]))
        .unwrap_err();
    assert!(error.to_string().contains("'..'"), "{error:#}");
    let error = scratch
        .apply(&tar(&[Item::RawName("/escaped")]))
        .unwrap_err();
    assert!(error.to_string().contains("absolute path"), "{error:#}");
    // A lower layer's symlink to a directory outside; an upper layer writes through it.
    let outside = scratch.0.join("outside");
    fs::create_dir(&outside).unwrap();
    let target: &'static str = Box::leak(outside.display().to_string().into_boxed_str());
    scratch
        .apply(&tar(&[Item::Symlink("evil", target)]))
        .unwrap();
    let through = tar(&[Item::File("evil/file", "x", 0o644, 0)]);
    assert!(scratch.apply(&through).is_err());
    let whiteout = tar(&[Item::File("evil/.wh.kept", "", 0o644, 0)]);
    fs::write(outside.join("kept"), "k").unwrap();
    assert!(scratch.apply(&whiteout).is_err());
    assert!(!outside.join("file").exists());
    assert!(outside.join("kept").exists());
}

#[test]
fn a_layer_in_its_own_directory_keeps_whiteouts_as_overlayfs_marks() {
    use std::os::unix::fs::FileTypeExt;
    let scratch = Scratch::new("overlay");
    let layer = tar(&[
        Item::Dir("a"),
        Item::File("a/.wh.gone", "", 0o644, 0),
        Item::Dir("b"),
        Item::File("b/.wh..wh..opq", "", 0o644, 0),
        Item::File("b/new", "n", 0o644, 0),
        Item::File("c/.wh.also", "", 0o644, 0),
    ]);
    let path = scratch.0.join("blob");
    fs::write(&path, &layer).unwrap();
    apply_layer(&path, &scratch.root(), Whiteouts::Overlay).unwrap();
    let root = scratch.root();
    for deleted in ["a/gone", "c/also"] {
        let metadata = fs::symlink_metadata(root.join(deleted)).unwrap();
        assert!(metadata.file_type().is_char_device(), "{deleted}");
        assert_eq!(metadata.rdev(), 0, "{deleted}");
    }
    let b = CString::new(root.join("b").as_os_str().as_encoded_bytes()).unwrap();
    let mut value = [0u8; 8];
    // SAFETY: NUL-terminated strings and a buffer of the length given.
    let length = unsafe {
        libc::lgetxattr(
            b.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    assert_eq!(&value[..length.max(0) as usize], b"y");
    assert_eq!(fs::read_to_string(root.join("b/new")).unwrap(), "n");
    assert!(!root.join("a/.wh.gone").exists() && !root.join("b/.wh..wh..opq").exists());
}
