//! `--cluster kind` up to the point where a cluster would answer: finding kind, its release,
//! the command lines, and deletion by the guard. A fake `kind` (a shell script) records its
//! arguments; the whole run against an API server is in `xtask/tests/it/kind.rs`.

use std::os::unix::fs::PermissionsExt;

use super::*;

/// Writes `script` to `path` as an executable through a child `sh`, so that this process
/// never holds the file open for writing: the tests beside this one spawn processes, and a
/// child forked while this process had the file open keeps that descriptor until it execs;
/// running the script in that moment failed with ETXTBSY ("Text file busy", seen in a
/// `cargo test --workspace` run). Written by another process, no child of this one can
/// hold it.
fn write_executable(path: &std::path::Path, script: &str) {
    use std::io::Write as _;
    let mut writer = std::process::Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).unwrap();
    drop(stdin);
    assert!(
        writer.wait().unwrap().success(),
        "writing {}",
        path.display()
    );
}

/// A directory holding an executable `kind` that logs its arguments to `log`, prints
/// `version_line` for `kind version` and exits `create_exit` for `create cluster`.
struct FakeKind {
    dir: PathBuf,
}

impl FakeKind {
    fn new(test: &str, version_line: &str, create_exit: i32) -> FakeKind {
        let dir =
            std::env::temp_dir().join(format!("k8s-labs-fake-kind-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\ncase \"$1\" in\n  version) echo '{version_line}' ;;\n  create) exit {create_exit} ;;\nesac\nexit 0\n",
            log.display()
        );
        write_executable(&dir.join("kind"), &script);
        FakeKind { dir }
    }

    fn env(&self) -> KindEnv {
        KindEnv {
            path: Some(std::env::join_paths(["/nonexistent".into(), self.dir.clone()]).unwrap()),
        }
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for FakeKind {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config_line(result: Result<KindProvider, ConnectError>) -> String {
    match result {
        Err(error @ ConnectError::Config(_)) => {
            let line = error.to_string();
            assert!(!line.contains('\n'), "{line}");
            line
        }
        Err(other) => panic!("expected a usage error, got {other}"),
        Ok(_) => panic!("a cluster was created"),
    }
}

#[test]
fn kind_is_found_on_path_only_when_executable() {
    let fake = FakeKind::new("path", "kind v0.30.0 go1.24.6 linux/amd64", 0);
    assert_eq!(fake.env().find_kind(), Some(fake.dir.join("kind")));
    std::fs::set_permissions(
        fake.dir.join("kind"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert_eq!(fake.env().find_kind(), None);
    assert_eq!(KindEnv { path: None }.find_kind(), None);
}

#[tokio::test]
async fn without_kind_the_error_says_how_to_install_it_and_the_alternatives() {
    let env = KindEnv {
        path: Some("/nonexistent:/also-not-there".into()),
    };
    let line = config_line(KindProvider::create(KubernetesVersion::DEFAULT, &env).await);
    assert!(
        line.starts_with("--cluster kind needs the `kind` binary on PATH, and none was found"),
        "{line}"
    );
    assert!(line.contains("install kind v0.30.0 or newer"), "{line}");
    assert!(line.contains("--kubeconfig PATH"), "{line}");
    assert!(line.contains("embedded cluster"), "{line}");
}

#[tokio::test]
async fn a_kind_older_than_the_node_image_is_refused_naming_both_releases() {
    let fake = FakeKind::new("old", "kind v0.30.0 go1.24.6 linux/amd64", 0);
    let version: KubernetesVersion = "v1.35".parse().unwrap();
    let line = config_line(KindProvider::create(version, &fake.env()).await);
    assert!(
        line.starts_with("kind v0.30.0 on PATH is older than kind v0.31.0, which published the node image for Kubernetes v1.35 (kindest/node:v1.35.0@sha256:"),
        "{line}"
    );
    // Only `kind version` ran: nothing was created.
    assert_eq!(fake.calls(), ["version"]);
}

#[tokio::test]
async fn a_kind_that_does_not_say_its_release_is_one_line() {
    let fake = FakeKind::new("garbage", "something else", 0);
    let line = config_line(KindProvider::create(KubernetesVersion::DEFAULT, &fake.env()).await);
    assert!(line.starts_with("cannot tell the release of "), "{line}");
}

#[tokio::test]
async fn a_failed_create_deletes_what_kind_left() {
    let fake = FakeKind::new("create-fails", "kind v0.33.0 go1.25 linux/amd64", 1);
    let result = KindProvider::create(KubernetesVersion::DEFAULT, &fake.env()).await;
    match result {
        Err(ConnectError::Cluster(error)) => {
            let line = format!("{error:#}");
            assert!(line.contains("failed (exit status: 1)"), "{line}");
            assert!(line.contains("kindest/node:v1.33."), "{line}");
        }
        Err(other) => panic!("expected a cluster error, got {other}"),
        Ok(_) => panic!("a cluster was created"),
    }
    let calls = fake.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0], "version");
    let create: Vec<&str> = calls[1].split(' ').collect();
    let name = create[3];
    assert!(name.starts_with("k8s-labs-"), "{calls:?}");
    let image = kind_node_for(KubernetesVersion::DEFAULT).unwrap().image;
    assert_eq!(
        &create[..8],
        &[
            "create",
            "cluster",
            "--name",
            name,
            "--image",
            &image,
            "--wait",
            CREATE_WAIT
        ]
    );
    assert_eq!(create[8], "--kubeconfig");
    let kubeconfig = create[9];
    assert_eq!(
        calls[2],
        format!("delete cluster --name {name} --kubeconfig {kubeconfig}")
    );
    assert!(!Path::new(kubeconfig).parent().unwrap().exists());
}

#[test]
fn names_are_unique_and_valid_for_kind() {
    let name = unique_name();
    assert!(
        name.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{name}"
    );
    assert!(name.len() < 40, "{name}");
}
