//! Named network namespaces (the `ip netns` kind, files under `/run/netns`) and doing things
//! inside them from this process without ever touching the host network namespace.
//!
//! A socket belongs to the network namespace its creating thread was in when `socket()` ran, so
//! a short-lived thread that `setns()`es into a namespace and binds or connects there hands back
//! a socket that lives in that namespace, while the rest of the process stays in the host's.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns};

/// Where iproute2 keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// The path of a named network namespace.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Runs `ip` with the given arguments and fails with its stderr when it does not exit 0.
pub fn ip(args: &[&str]) -> Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .with_context(|| format!("running ip {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `ip -n <namespace> -batch -` with `commands` (one `ip` command each, without `ip`):
/// one process for several changes to a namespace. Fails with ip's stderr, which names the
/// failing line.
pub fn ip_batch(namespace: &str, commands: &[String]) -> Result<()> {
    use std::io::Write as _;
    let mut child = Command::new("ip")
        .args(["-n", namespace, "-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running ip -batch")?;
    let script = commands.join("\n") + "\n";
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .context("writing to ip -batch")?;
    }
    let output = child.wait_with_output().context("waiting for ip -batch")?;
    if !output.status.success() {
        bail!(
            "ip -n {namespace} -batch failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Creates a named network namespace (`ip netns add`).
pub fn create(name: &str) -> Result<()> {
    ip(&["netns", "add", name])
}

/// Removes a named network namespace (`ip netns delete`); a missing one is not an error, so
/// teardown can be repeated after a partial failure.
pub fn delete(name: &str) -> Result<()> {
    if !netns_path(name).exists() {
        return Ok(());
    }
    ip(&["netns", "delete", name])
}

/// The names of all named network namespaces (`ip netns list`, read from `/run/netns`).
pub fn list() -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).context("reading /run/netns"),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.context("reading /run/netns")?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Runs `work` on a fresh thread that has joined the network namespace at `path`, and returns
/// what it returns. The calling thread (and so the rest of the process) never changes namespace.
pub fn run_in<T, F>(path: &Path, work: F) -> std::io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
{
    let namespace = File::open(path)?;
    let thread = std::thread::Builder::new()
        .name("netns".to_string())
        .spawn(move || {
            setns(&namespace, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            work()
        })?;
    thread
        .join()
        .map_err(|_| std::io::Error::other("thread inside a network namespace panicked"))?
}

/// A TCP connection to `addr` made from inside the network namespace at `path` (by a thread
/// that joined it, see [`run_in`]); the socket keeps that namespace once the thread is gone.
pub fn connect_tcp(path: &Path, addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    run_in(path, move || TcpStream::connect_timeout(&addr, timeout))
}

/// Writes a sysctl under `/proc/sys/net/...` for the network namespace at `path` (those files
/// show the namespace of the thread that opens them).
pub fn write_net_sysctl(path: &Path, key: &str, value: &str) -> Result<()> {
    let file = format!("/proc/sys/{}", key.replace('.', "/"));
    let value = value.to_string();
    let file_for_thread = file.clone();
    run_in(path, move || std::fs::write(&file_for_thread, value))
        .with_context(|| format!("writing {file} in {}", path.display()))
}
