//! A real registry for the pull tests: Debian's `docker-registry` on a free port of 127.0.0.1
//! (optionally behind an htpasswd login), and a test image built with `umoci` (busybox and
//! its libraries from the host and a marker file in one layer; a second layer that deletes a file of the first,
//! so it carries a whiteout; Entrypoint, Cmd, Env, WorkingDir and User set) pushed with
//! `skopeo`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The registry process, killed (by its PID, through `Child`) even when the test fails.
pub struct Registry {
    child: Child,
    port: u16,
    /// Where it stores repositories and blobs.
    pub storage: PathBuf,
}

impl Registry {
    /// An open registry storing under `dir`.
    pub fn start(dir: &Path) -> Registry {
        Registry::start_with(dir, None)
    }

    /// A registry storing under `dir`, asking for `login` when given.
    pub fn start_with(dir: &Path, login: Option<(&str, &str)>) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("config.yml");
        let storage = dir.join("storage");
        let mut text = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some((user, password)) = login {
            let htpasswd = dir.join("htpasswd");
            run(
                "htpasswd",
                &["-Bbc", &htpasswd.display().to_string(), user, password],
            );
            text.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&config, text).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry (apt-get install docker-registry)");
        let registry = Registry {
            child,
            port,
            storage,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory removed at the end, whatever happened.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory named after `label` and this process.
    pub fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("running {program} (is it installed?): {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Builds the test image in an OCI layout under `dir` and pushes it to `registry` as
/// `test/img:base` (one layer) and `test/img:v1` (two, with its config); returns v1's
/// manifest digest. The layout stays in `dir/layout` as `v1` for [`push`].
pub fn build_and_push(dir: &Path, registry: &Registry) -> String {
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    let (layout_s, bundle_s) = (layout.display().to_string(), bundle.display().to_string());
    let image = format!("{layout_s}:v1");
    let rootfs = bundle.join("rootfs");
    run("umoci", &["init", "--layout", &layout_s]);
    run("umoci", &["new", "--image", &image]);
    run("umoci", &["unpack", "--image", &image, &bundle_s]);
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("work")).unwrap();
    install_busybox(&rootfs);
    std::fs::write(rootfs.join("marker"), "pulled from a registry\n").unwrap();
    std::fs::write(rootfs.join("doomed"), "deleted by the second layer\n").unwrap();
    run("umoci", &["repack", "--image", &image, &bundle_s]);
    // The one-layer image as `base`: it shares its layer with `v1`.
    push(&image, &format!("{}/test/img:base", registry.host()), &[]);
    std::fs::remove_dir_all(&bundle).unwrap();
    run("umoci", &["unpack", "--image", &image, &bundle_s]);
    std::fs::remove_file(rootfs.join("doomed")).unwrap();
    run("umoci", &["repack", "--image", &image, &bundle_s]);
    run(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.entrypoint",
            "/bin/busybox",
            "--config.entrypoint",
            "sh",
            "--config.cmd",
            "-c",
            "--config.env",
            "GREETING=hello",
            "--config.workingdir",
            "/work",
            "--config.user",
            "1000:1000",
        ],
    );
    let digest_file = dir.join("digest");
    let digest_arg = digest_file.display().to_string();
    let destination = format!("{}/test/img:v1", registry.host());
    push(&image, &destination, &["--digestfile", &digest_arg]);
    std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_string()
}

/// The host's busybox and the shared libraries it loads (Debian's is linked dynamically), at
/// the same paths in `rootfs`.
pub fn install_busybox(rootfs: &Path) {
    let output = Command::new("ldd").arg("/bin/busybox").output().unwrap();
    let listing = String::from_utf8_lossy(&output.stdout).to_string();
    let libraries = listing
        .split_whitespace()
        .filter(|word| word.starts_with('/') && !word.starts_with("/bin/"));
    for path in libraries.chain(["/bin/busybox"]) {
        let target = rootfs.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(path, &target).unwrap();
    }
}

/// Copies the OCI layout image `image` (`<layout>:<tag>`) to `destination` (`host/repo:tag`)
/// with skopeo, adding `extra` arguments (`--dest-creds`, `--dest-compress-format`, …).
pub fn push(image: &str, destination: &str, extra: &[&str]) {
    let source = format!("oci:{image}");
    let destination = format!("docker://{destination}");
    let mut args = vec!["copy", "--quiet", "--dest-tls-verify=false"];
    args.extend(extra);
    args.extend([source.as_str(), destination.as_str()]);
    run("skopeo", &args);
}

/// The bytes under `path`, as `du -sb` counts them.
pub fn size_of(path: &Path) -> u64 {
    let output = Command::new("du").arg("-sb").arg(path).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace().next().unwrap().parse().unwrap()
}

/// Pushes `host/test/multi:v1`, an image index over two images of the layout in `dir` (made
/// by [`build_and_push`]): `v1` for this machine's platform and a variant whose marker says
/// `wrong platform`, listed first, for another architecture. Returns the index's digest.
pub fn push_multi_platform(dir: &Path, registry: &Registry) -> String {
    let layout = dir.join("layout");
    let (layout_s, bundle_s) = (
        layout.display().to_string(),
        dir.join("bundle").display().to_string(),
    );
    let other = format!("{layout_s}:other");
    run(
        "umoci",
        &["tag", "--image", &format!("{layout_s}:v1"), "other"],
    );
    let _ = std::fs::remove_dir_all(dir.join("bundle"));
    run("umoci", &["unpack", "--image", &other, &bundle_s]);
    std::fs::write(dir.join("bundle/rootfs/marker"), "wrong platform\n").unwrap();
    run("umoci", &["repack", "--image", &other, &bundle_s]);
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let descriptor = |tag: &str| {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap()
            .clone()
    };
    let host = k8s_labs_node::registry::host_architecture();
    let elsewhere = if host == "arm64" { "amd64" } else { "arm64" };
    let entry = |tag: &str, architecture: &str| {
        let mut entry = descriptor(tag);
        entry.as_object_mut().unwrap().remove("annotations");
        entry["platform"] = serde_json::json!({"architecture": architecture, "os": "linux"});
        entry
    };
    let image_index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry("other", elsewhere), entry("v1", host)],
    });
    let bytes = serde_json::to_vec(&image_index).unwrap();
    let digest = k8s_labs_node::registry::sha256_digest(&bytes);
    let hex = digest.trim_start_matches("sha256:");
    std::fs::write(layout.join("blobs/sha256").join(hex), &bytes).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest, "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }));
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let destination = format!("{}/test/multi:v1", registry.host());
    push(&format!("{layout_s}:multi"), &destination, &["--all"]);
    digest
}

/// Pushes `host/<repository>:v1`, an image of one layer holding `/content` (nothing else, so
/// its one blob is new to any store), and returns the path of that layer blob in the
/// registry's storage, for a test to tamper with.
pub fn push_one_file_image(
    dir: &Path,
    registry: &Registry,
    repository: &str,
    content: &str,
) -> PathBuf {
    let layout = dir.join("one-file");
    let bundle = dir.join("one-file-bundle");
    let (layout_s, bundle_s) = (layout.display().to_string(), bundle.display().to_string());
    let image = format!("{layout_s}:v1");
    run("umoci", &["init", "--layout", &layout_s]);
    run("umoci", &["new", "--image", &image]);
    run("umoci", &["unpack", "--image", &image, &bundle_s]);
    std::fs::write(bundle.join("rootfs/content"), content).unwrap();
    run("umoci", &["repack", "--image", &image, &bundle_s]);
    push(&image, &format!("{}/{repository}:v1", registry.host()), &[]);
    let layer = layout_layer(&layout);
    let hex = layer.trim_start_matches("sha256:");
    registry
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// The digest of the first layer of the one image in the OCI layout at `layout`.
fn layout_layer(layout: &Path) -> String {
    let read = |digest: &str| -> serde_json::Value {
        let hex = digest.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The biggest blob a registry stores under `storage`.
pub fn largest_blob(storage: &Path) -> PathBuf {
    let output = Command::new("find")
        .arg(storage)
        .args(["-path", "*/blobs/*", "-name", "data", "-printf", "%s %p\\n"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (_, path) = text
        .lines()
        .filter_map(|line| line.split_once(' '))
        .max_by_key(|(size, _)| size.parse::<u64>().unwrap_or(0))
        .expect("the registry stores blobs");
    PathBuf::from(path)
}

/// Flips one byte in the middle of `path`, keeping its size.
pub fn tamper(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}
