//! The tutorial's interactive commands with the real kubectl, typed on a real terminal (a pty
//! this test drives like a user): `kubectl exec -it web-1 -- bash` then `curl …` and `exit`,
//! and `kubectl run -i --tty --image busybox:1.28 dns-test --restart=Never --rm` then
//! `nslookup web-0.nginx` and `exit`. Every kubectl from 1.30 on streams over WebSocket by
//! default, 1.29 with `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true`; each of 1.29 … 1.33 is tested.
//! Older ones (SPDY only) get one error line naming what to use. Needs root, and kubectl
//! 1.27 … 1.33 in `K8S_LABS_KUBECTL_DIR` (default: where Debian's kubectl package puts them).

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use k8s_labs_cluster::{ClusterConfig, EmbeddedCluster};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::wait::{await_condition, conditions};

/// How long a step may take before the test gives up (a guard against hanging, not a check).
const STEP: Duration = Duration::from_secs(60);

/// A kubectl binary and the environment it runs with.
struct Kubectl {
    binary: PathBuf,
    env: &'static [(&'static str, &'static str)],
}

/// kubectl 1.29 streams over WebSocket only when told to (SPDY is its default).
const WEBSOCKETS: &[(&str, &str)] = &[("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "true")];

/// kubectl `1.<minor>`; panics naming `K8S_LABS_KUBECTL_DIR` when it is missing.
fn kubectl(minor: u32, env: &'static [(&'static str, &'static str)]) -> Kubectl {
    Kubectl {
        binary: k8s_labs_apiserver::testing::kubectl_binary(minor),
        env,
    }
}

/// A program running on a pty of ours, as in a terminal window: what it writes is collected,
/// what the test types is its keyboard input, and the window can be resized.
struct Terminal {
    master: std::fs::File,
    screen: Arc<(Mutex<Screen>, Condvar)>,
    child: tokio::process::Child,
    /// Where the next `expect` starts looking.
    cursor: usize,
}

#[derive(Default)]
struct Screen {
    bytes: Vec<u8>,
    /// Why the terminal closed: EIO once every holder of the other side has closed it, as
    /// expected when kubectl exits; anything else is worth seeing in a failure.
    closed: Option<std::io::Error>,
}

fn winsize(rows: u16, cols: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Terminal {
    fn spawn(kubectl: &Kubectl, args: &[&str], rows: u16, cols: u16) -> Terminal {
        let pty = nix::pty::openpty(Some(&winsize(rows, cols)), None).unwrap();
        let slave: OwnedFd = pty.slave;
        let mut command = tokio::process::Command::new(&kubectl.binary);
        command
            .args(args)
            .env("TERM", "xterm")
            .envs(kubectl.env.iter().copied())
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()))
            .kill_on_drop(true);
        // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec. The pty
        // becomes kubectl's controlling terminal, so a resize sends it SIGWINCH.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap();
        drop(command);
        drop(slave);
        let master = std::fs::File::from(pty.master);
        let screen = Arc::new((Mutex::new(Screen::default()), Condvar::new()));
        let mut reader = master.try_clone().unwrap();
        let shared = screen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            loop {
                // EIO once the program and everything it started have closed the terminal.
                let read = reader.read(&mut buffer);
                if matches!(&read, Err(error) if error.kind() == ErrorKind::Interrupted) {
                    continue;
                }
                let (lock, changed) = &*shared;
                let mut screen = lock.lock().unwrap();
                let read = match read {
                    Ok(0) => Err(ErrorKind::UnexpectedEof.into()),
                    other => other,
                };
                let read = match read {
                    Ok(read) => read,
                    Err(error) => {
                        screen.closed = Some(error);
                        changed.notify_all();
                        return;
                    }
                };
                screen.bytes.extend_from_slice(&buffer[..read]);
                changed.notify_all();
            }
        });
        Terminal {
            master,
            screen,
            child,
            cursor: 0,
        }
    }

    fn text(&self) -> String {
        let screen = self.screen.0.lock().unwrap();
        String::from_utf8_lossy(&screen.bytes).into_owned()
    }

    /// Waits until `text` shows up after what earlier expectations matched; returns the output
    /// from there up to the end of `text`.
    async fn expect(&mut self, text: &str) -> String {
        let screen = self.screen.clone();
        let needle = text.as_bytes().to_vec();
        let from = self.cursor;
        let found = tokio::task::spawn_blocking(move || {
            let (lock, changed) = &*screen;
            let guard = lock.lock().unwrap();
            let (guard, _) = changed
                .wait_timeout_while(guard, STEP, |screen| {
                    find(&screen.bytes[from..], &needle).is_none() && screen.closed.is_none()
                })
                .unwrap();
            find(&guard.bytes[from..], &needle).map(|at| {
                let end = from + at + needle.len();
                (
                    end,
                    String::from_utf8_lossy(&guard.bytes[from..end]).into_owned(),
                )
            })
        })
        .await
        .unwrap();
        match found {
            Some((end, seen)) => {
                self.cursor = end;
                seen
            }
            None => {
                let (closed, bytes) = {
                    let screen = self.screen.0.lock().unwrap();
                    (format!("{:?}", screen.closed), screen.bytes.clone())
                };
                panic!(
                    "{text:?} did not show up after byte {} (terminal closed: {closed}); \
                     the terminal shows:\n{}\nbytes from there: {:?}",
                    self.cursor,
                    String::from_utf8_lossy(&bytes),
                    String::from_utf8_lossy(&bytes[self.cursor..]),
                )
            }
        }
    }

    /// Types `keys` (a line ends with `\r`, the Enter key).
    fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    /// Resizes the terminal window; the kernel tells kubectl with SIGWINCH.
    fn resize(&self, rows: u16, cols: u16) {
        let size = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer; the descriptor is open.
        let result = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(result, 0, "{}", std::io::Error::last_os_error());
    }

    /// Waits for the program to exit and for the last of its output; its exit code and all
    /// that the terminal showed.
    async fn exit_code(mut self) -> (Option<i32>, String) {
        let status = tokio::time::timeout(STEP, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!("kubectl did not exit; the terminal shows:\n{}", self.text())
            })
            .unwrap();
        let screen = self.screen.clone();
        tokio::task::spawn_blocking(move || {
            let (lock, changed) = &*screen;
            let guard = lock.lock().unwrap();
            let (guard, _) = changed
                .wait_timeout_while(guard, STEP, |screen| screen.closed.is_none())
                .unwrap();
            assert!(
                guard.closed.is_some(),
                "the terminal stayed open after kubectl exited"
            );
        })
        .await
        .unwrap();
        (status.code(), self.text())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

struct Kubeconfig(PathBuf);

impl Drop for Kubeconfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn kubectl_output(kubectl: &Path, kubeconfig: &Kubeconfig, args: &[&str]) -> String {
    let output = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(&kubeconfig.0)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn wait_for(pods: &Api<Pod>, name: &str, condition: impl Fn(Option<&Pod>) -> bool) {
    tokio::time::timeout(
        STEP,
        await_condition(pods.clone(), name, move |pod: Option<&Pod>| condition(pod)),
    )
    .await
    .unwrap_or_else(|_| panic!("waiting for {name}"))
    .unwrap();
}

fn ready(pod: Option<&Pod>) -> bool {
    pod.and_then(|pod| pod.status.as_ref())
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|condition| condition.type_ == "Ready" && condition.status == "True")
        })
}

/// `stty size` in the shell until it reports `rows cols`: the size reaches the container's
/// terminal asynchronously (kubectl → API server → node → runc's SIGWINCH handler), so the
/// first answer may be the size before. Each try waits for the shell's answer, not for time;
/// the answer ends with a number the shell computes (so it is not the echo of the typed
/// line), because the prompt alone can show up more often (bash redraws it on a resize).
async fn expect_size(terminal: &mut Terminal, rows: u16, cols: u16) {
    let wanted = format!("{rows} {cols}\r\n");
    for attempt in 0..50 {
        terminal.type_keys(&format!("stty size; echo tick-$(({attempt} + 1))\r"));
        let answer = terminal.expect(&format!("tick-{}\r\n", attempt + 1)).await;
        if answer.contains(&wanted) {
            return;
        }
    }
    panic!(
        "the container's terminal never got {rows}x{cols}:\n{}",
        terminal.text()
    );
}

/// The tutorial's `kubectl exec -it web-1 -- bash`: a bash prompt on a terminal of the
/// window's size that follows a resize, the nginx page of `curl`, and the shell's exit code.
async fn exec_it_bash(kubectl: &Kubectl, kubeconfig: &Kubeconfig) {
    let config = kubeconfig.0.to_str().unwrap();
    let mut terminal = Terminal::spawn(
        kubectl,
        &["--kubeconfig", config, "exec", "-it", "web-1", "--", "bash"],
        24,
        80,
    );
    terminal.expect("root@web-1:/# ").await;
    expect_size(&mut terminal, 24, 80).await;
    terminal.resize(30, 100);
    expect_size(&mut terminal, 30, 100).await;
    terminal.type_keys("echo TERM=$TERM\r");
    terminal.expect("TERM=xterm\r\n").await;
    terminal.type_keys("curl web-1.nginx.default.svc.cluster.local\r");
    let page = terminal.expect("</html>\r\n").await;
    assert!(
        page.contains("<title>Welcome to nginx!</title>"),
        "{:?}: {page}",
        kubectl.binary
    );
    terminal.type_keys("exit 3\r");
    let (code, screen) = terminal.exit_code().await;
    assert_eq!(code, Some(3), "{:?}: {screen}", kubectl.binary);
    assert!(
        screen.ends_with("command terminated with exit code 3\r\n"),
        "{screen:?}"
    );
}

/// The tutorial's `kubectl run -i --tty --image busybox:1.28 dns-test --restart=Never --rm`:
/// kubectl attaches to the new pod's shell, `nslookup web-0.nginx` answers web-0's IP, and
/// after `exit` the pod is removed.
async fn run_it_busybox(kubectl: &Kubectl, kubeconfig: &Kubeconfig, pods: &Api<Pod>) {
    let web_0_ip = pods
        .get("web-0")
        .await
        .unwrap()
        .status
        .and_then(|status| status.pod_ip)
        .unwrap();
    let config = kubeconfig.0.to_str().unwrap();
    let mut terminal = Terminal::spawn(
        kubectl,
        &[
            "--kubeconfig",
            config,
            "run",
            "-i",
            "--tty",
            "--image",
            "busybox:1.28",
            "dns-test",
            "--restart=Never",
            "--rm",
        ],
        24,
        80,
    );
    terminal
        .expect("If you don't see a command prompt, try pressing enter.")
        .await;
    terminal.type_keys("\r");
    terminal.expect("/ # ").await;
    terminal.type_keys("nslookup web-0.nginx\r");
    let answer = terminal.expect(&format!("Address: {web_0_ip}\r\n")).await;
    assert!(
        answer.contains("Name:\tweb-0.nginx.default.svc.cluster.local\r\n"),
        "{:?}: {answer}",
        kubectl.binary
    );
    let uid = pods.get("dns-test").await.unwrap().metadata.uid.unwrap();
    terminal.type_keys("exit\r");
    let (code, screen) = terminal.exit_code().await;
    assert_eq!(code, Some(0), "{:?}: {screen}", kubectl.binary);
    assert!(screen.contains("pod \"dns-test\" deleted"), "{screen:?}");
    tokio::time::timeout(
        STEP,
        await_condition(pods.clone(), "dns-test", conditions::is_deleted(&uid)),
    )
    .await
    .expect("dns-test is removed")
    .unwrap();
}

/// kubectl before 1.30 speaks SPDY unless told otherwise (1.29), or only SPDY (1.27, 1.28):
/// `exec -it` ends at once with the server's one-line answer naming what to use.
async fn spdy_is_refused_with_the_way_out(kubectl: &Kubectl, kubeconfig: &Kubeconfig) {
    let config = kubeconfig.0.to_str().unwrap();
    let terminal = Terminal::spawn(
        kubectl,
        &["--kubeconfig", config, "exec", "-it", "web-1", "--", "bash"],
        24,
        80,
    );
    let (code, screen) = terminal.exit_code().await;
    assert_eq!(
        (code, screen.as_str()),
        (
            Some(1),
            "Error from server (BadRequest): this API server streams exec and attach over \
             WebSocket only, not SPDY/3.1: use kubectl 1.30 or newer (or kubectl 1.29 with \
             KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true)\r\n"
        ),
        "{:?}",
        kubectl.binary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorials_interactive_commands_work_on_a_terminal() {
    let _turn = crate::support::cluster_turn().await;
    let streaming = [
        kubectl(29, WEBSOCKETS),
        kubectl(30, &[]),
        kubectl(31, &[]),
        kubectl(32, &[]),
        kubectl(33, &[]),
    ];
    let spdy = [kubectl(27, &[]), kubectl(28, &[]), kubectl(29, &[])];
    let newest = &streaming[streaming.len() - 1];
    let cluster = EmbeddedCluster::start(ClusterConfig::default())
        .await
        .expect("the embedded cluster starts");
    let kubeconfig = Kubeconfig(std::env::temp_dir().join(format!(
        "k8s-labs-kubectl-tty-{}.kubeconfig",
        cluster.instance()
    )));
    std::fs::write(&kubeconfig.0, cluster.kubeconfig_yaml()).unwrap();
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/statefulset-dns/web.yaml");
    kubectl_output(
        &newest.binary,
        &kubeconfig,
        &["apply", "-f", manifest.to_str().unwrap()],
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(cluster.client().await.unwrap(), "default");
    for name in ["web-0", "web-1", "web-2"] {
        wait_for(&pods, name, ready).await;
    }
    for kubectl in &streaming {
        exec_it_bash(kubectl, &kubeconfig).await;
        run_it_busybox(kubectl, &kubeconfig, &pods).await;
        eprintln!(
            "{} {:?}: exec -it and run -it --rm work",
            kubectl.binary.display(),
            kubectl.env
        );
    }
    for kubectl in &spdy {
        spdy_is_refused_with_the_way_out(kubectl, &kubeconfig).await;
    }
    cluster.stop().await.expect("the cluster stops cleanly");
}
