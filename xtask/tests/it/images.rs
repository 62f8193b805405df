//! `cargo xtask images load|list|prune` on a store of its own: a `docker save` archive made by
//! skopeo and an OCI layout archive made by umoci and tar are loaded (the layout's bare tag
//! only with `--repository`), listed, and pruned; bad archives are one error line, exit 2,
//! and change nothing. Needs umoci and skopeo (`scripts/install-deps`); no cluster.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn xtask(args: &[&str], store: &Path) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["images"])
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap();
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("running {program} (scripts/install-deps): {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An umoci layout with one image tagged `v1` (a file in one layer), saved as an OCI layout
/// archive and as a `docker save` archive tagged `example.com/saved/img:v1`.
fn archives(dir: &Path) -> (PathBuf, PathBuf) {
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    let (layout_s, bundle_s) = (layout.display().to_string(), bundle.display().to_string());
    let image = format!("{layout_s}:v1");
    run("umoci", &["init", "--layout", &layout_s]);
    run("umoci", &["new", "--image", &image]);
    run("umoci", &["unpack", "--image", &image, &bundle_s]);
    std::fs::write(bundle.join("rootfs/hello"), "hello\n").unwrap();
    run("umoci", &["repack", "--image", &image, &bundle_s]);
    let oci = dir.join("layout.tar");
    let (oci_s, layout_dir) = (oci.display().to_string(), layout_s.clone());
    run("tar", &["-C", &layout_dir, "-cf", &oci_s, "."]);
    let docker = dir.join("saved.tar");
    let destination = format!(
        "docker-archive:{}:example.com/saved/img:v1",
        docker.display()
    );
    run(
        "skopeo",
        &["copy", "--quiet", &format!("oci:{image}"), &destination],
    );
    (oci, docker)
}

/// Loads both archives (the OCI one's bare tag only with `--repository`).
fn load_both(store: &Path, oci: &Path, docker: &Path) {
    let bare = xtask(&["load", &oci.display().to_string()], store);
    assert_eq!(bare.code, Some(2), "{}", bare.stdout);
    assert!(
        bare.stderr
            .starts_with(&format!("error: {}: image sha256:", oci.display()))
            && bare.stderr.contains("named only by the tag \"v1\"")
            && bare.stderr.lines().count() == 1,
        "{}",
        bare.stderr
    );
    let oci = oci.display().to_string();
    let docker = docker.display().to_string();
    for (args, expected) in [
        (
            vec!["load", &oci, "--repository", "example.com/oci"],
            "Loaded image: example.com/oci:v1 (sha256:",
        ),
        (
            vec!["load", &docker],
            "Loaded image: example.com/saved/img:v1 (sha256:",
        ),
    ] {
        let loaded = xtask(&args, store);
        assert_eq!(loaded.code, Some(0), "{}", loaded.stderr);
        assert!(loaded.stdout.starts_with(expected), "{}", loaded.stdout);
    }
}

/// Checks the table of both images; returns it.
fn list_both(store: &Path) -> String {
    let listed = xtask(&["list"], store);
    let lines: Vec<Vec<&str>> = listed
        .stdout
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 3, "{}", listed.stdout);
    assert_eq!(lines[0], ["REFERENCE", "DIGEST", "SIZE", "SOURCE"]);
    assert_eq!(lines[1][0], "example.com/oci:v1");
    assert_eq!(lines[1][3..], ["archive", "layout.tar"]);
    assert_eq!(lines[2][0], "example.com/saved/img:v1");
    assert_eq!(lines[2][3..], ["archive", "saved.tar"]);
    for line in &lines[1..] {
        assert!(
            line[1].starts_with("sha256:") && line[1].len() == 19,
            "{line:?}"
        );
        assert!(line[2].ends_with('B'), "{line:?}");
    }
    listed.stdout
}

/// Text, a truncated archive and a missing file: one error line each, exit 2.
fn bad_archives_fail(dir: &Path, store: &Path, docker: &Path) {
    let text = dir.join("notes.tar");
    std::fs::write(&text, "not an archive\n".repeat(100)).unwrap();
    let mut truncated = std::fs::read(docker).unwrap();
    truncated.truncate(truncated.len() / 2);
    let half = dir.join("half.tar");
    std::fs::write(&half, truncated).unwrap();
    for bad in [&text, &half, &dir.join("absent.tar")] {
        let failed = xtask(&["load", &bad.display().to_string()], store);
        assert_eq!(failed.code, Some(2), "{}", failed.stdout);
        assert!(
            failed
                .stderr
                .starts_with(&format!("error: {}: ", bad.display()))
                && failed.stderr.lines().count() == 1,
            "{}",
            failed.stderr
        );
    }
}

#[test]
fn images_load_list_and_prune() {
    let dir = std::env::temp_dir().join(format!("xtask-images-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("store");
    let (oci, docker) = archives(&dir);
    let empty = xtask(&["list"], &store);
    assert_eq!(empty.stdout, format!("No images in {}\n", store.display()));

    load_both(&store, &oci, &docker);
    let listed = list_both(&store);
    bad_archives_fail(&dir, &store, &docker);
    assert_eq!(xtask(&["list"], &store).stdout, listed, "nothing changed");

    let pruned = xtask(&["prune"], &store);
    assert_eq!(pruned.code, Some(0), "{}", pruned.stderr);
    for expected in [
        "untagged: example.com/oci:v1\n",
        "untagged: example.com/saved/img:v1\n",
        "\nTotal reclaimed space: ",
    ] {
        assert!(pruned.stdout.contains(expected), "{}", pruned.stdout);
    }
    assert_eq!(xtask(&["list"], &store).stdout, empty.stdout);
    let blobs = std::fs::read_dir(store.join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
