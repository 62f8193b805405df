//! Runs a real kubectl binary against a cluster and makes its output comparable: AGE columns
//! and IP addresses are replaced by `[AGE]` and `[IP]`, and table columns are joined by one
//! space, so that an assertion says what a student would see, minus what changes per run.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

/// One kubectl version, with the kubeconfig and cache directory it uses.
pub struct Kubectl {
    pub binary: PathBuf,
    pub minor: u32,
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
    env: Vec<(&'static str, &'static str)>,
}

/// What a kubectl run printed.
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    /// kubectl `1.<minor>` from `K8S_LABS_KUBECTL_DIR` (default: Debian's kubectl package);
    /// panics with what to install when the binary is missing, because a test that silently
    /// skips the oldest kubectl proves nothing about it.
    pub fn new(minor: u32, kubeconfig: &Path, scratch: &Path) -> Kubectl {
        let binary = k8s_labs_apiserver::testing::kubectl_binary(minor);
        Kubectl {
            binary,
            minor,
            kubeconfig: kubeconfig.to_path_buf(),
            cache_dir: scratch.join(format!("cache-1.{minor}")),
            env: Vec::new(),
        }
    }

    /// The same kubectl, run with `name=value` in its environment.
    pub fn with_env(mut self, name: &'static str, value: &'static str) -> Kubectl {
        self.env.push((name, value));
        self
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .args(args)
            .env_remove("KUBECONFIG")
            .envs(self.env.iter().copied())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs `kubectl args…` to its end.
    pub async fn run(&self, args: &[&str]) -> Output {
        let output = self
            .command(args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("running {}: {e}", self.binary.display()));
        Output {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs `kubectl args…`, which must succeed; its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            output.success,
            "kubectl 1.{} {args:?} failed:\n{}\n{}",
            self.minor, output.stderr, output.stdout
        );
        output.stdout
    }

    /// Runs `kubectl args…`, which must fail; its stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            !output.success,
            "kubectl 1.{} {args:?} should have failed but printed:\n{}",
            self.minor, output.stdout
        );
        output.stderr
    }

    /// Starts `kubectl args…` (a watch, `-w`) and reads its output line by line until a
    /// redacted line satisfies `wanted`; panics if kubectl ends first. Returns the lines read.
    pub async fn watch_until(&self, args: &[&str], wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await.expect("reading kubectl's output") {
            let line = redact_line(&line);
            let done = wanted(&line);
            seen.push(line);
            if done {
                let _ = child.kill().await;
                return seen;
            }
        }
        let output = child.wait_with_output().await.expect("kubectl ends");
        panic!(
            "kubectl 1.{} {args:?} ended before printing the expected line; it printed:\n{}\n{}",
            self.minor,
            seen.join("\n"),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Kubectl {
    /// Starts `kubectl args…` with stdout and stderr piped, for a command that runs until it
    /// is killed (`port-forward`); the caller reads its output and kills it by its PID.
    pub fn spawn(&self, args: &[&str]) -> tokio::process::Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()))
    }
}

/// A kubectl that keeps printing (`get -w`, `logs -f`), read line by line while the test goes
/// on acting on the cluster.
pub struct Stream {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    what: String,
}

impl Kubectl {
    /// Starts `kubectl args…`, to be read with [`Stream::until`].
    pub fn stream(&self, args: &[&str]) -> Stream {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        Stream {
            child,
            lines: BufReader::new(stdout).lines(),
            what: format!("kubectl 1.{} {args:?}", self.minor),
        }
    }
}

impl Stream {
    /// Reads redacted lines until one satisfies `wanted`; panics if kubectl ends first.
    /// Returns the lines read by this call, the wanted one last.
    pub async fn until(&mut self, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(line) = self
            .lines
            .next_line()
            .await
            .expect("reading kubectl's output")
        {
            let line = redact_line(&line);
            let done = wanted(&line);
            seen.push(line);
            if done {
                return seen;
            }
        }
        panic!(
            "{} ended before printing the expected line; it printed:\n{}",
            self.what,
            seen.join("\n")
        );
    }

    /// Ends kubectl.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Every line of `text`, redacted by [`redact_line`].
pub fn redact(text: &str) -> Vec<String> {
    text.lines().map(redact_line).collect()
}

/// A table line with its columns joined by one space, ages as `[AGE]` and IPv4 addresses as
/// `[IP]`: `web-0   1/1     Running   0          81s` becomes `web-0 1/1 Running 0 [AGE]`.
pub fn redact_line(line: &str) -> String {
    line.split_whitespace()
        .map(|token| {
            if is_age(token) {
                "[AGE]".to_string()
            } else {
                redact_ips(token)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `81s`, `2m5s`, `2d22h`, `<unknown>`: what kubectl prints in AGE and LAST SEEN columns.
fn is_age(token: &str) -> bool {
    if token == "<unknown>" || token == "<invalid>" {
        return true;
    }
    let mut digits = 0;
    let mut units = 0;
    for c in token.chars() {
        if c.is_ascii_digit() {
            digits += 1;
        } else if "smhdy".contains(c) && digits > 0 {
            units += 1;
            digits = 0;
        } else {
            return false;
        }
    }
    units > 0 && digits == 0
}

/// Replaces each IPv4 address inside `token` with `[IP]`.
fn redact_ips(token: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.parse::<Ipv4Addr>().is_ok() {
            out.push_str("[IP]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in token.chars() {
        if c.is_ascii_digit() || c == '.' {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[test]
fn redaction_keeps_what_a_student_compares() {
    assert_eq!(
        redact_line("web-0   1/1     Running   0          81s   10.244.0.3   k8s-labs-node"),
        "web-0 1/1 Running 0 [AGE] [IP] k8s-labs-node"
    );
    assert_eq!(
        redact_line("nginx   10.244.0.3:80,10.244.0.4:80   2d22h"),
        "nginx [IP]:80,[IP]:80 [AGE]"
    );
    assert_eq!(redact_line("busybox:1.28 443/TCP"), "busybox:1.28 443/TCP");
}
