//! Walk mode as an instructor uses it, against an embedded cluster reached through its
//! kubeconfig: in a terminal (a pty), each step's explanation and command come before its
//! result and Enter moves on; `q` quits, cleans up and exits 130. Without a terminal,
//! `--auto 0s` runs to the end in plain text.
//!
//! Needs root and `scripts/install-deps` (the embedded cluster runs pods with runc).

use crate::common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Duration;

use common::{lab_namespaces, start_cluster};
use k8s_labs_harness::Language;
use nix::pty::{Winsize, openpty};
use tokio::process::Command;
use tokio::sync::watch;

/// How long the terminal may take to show what comes next (a step starting pods included).
const SCREEN_TIMEOUT: Duration = Duration::from_secs(120);

const PROMPT: &str = "[Enter] run it";

/// The start of a step's explanation as it appears on screen (the first words, which the
/// 78-column wrapping keeps on the first line).
fn explanation_start(step: usize, language: Language) -> String {
    let lab = lab_statefulset_dns::lab();
    let text = lab.steps()[step].explanation(language).to_string();
    assert!(!text.is_empty(), "step {step} has an explanation");
    match language {
        Language::En => text
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" "),
        Language::Zh => text.chars().take(8).collect(),
    }
}

/// Terminal text without color escapes (`ESC [ ... m`) and carriage returns.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// A program running in a pseudo-terminal of 80x24, its screen output collected as it comes.
struct Terminal {
    input: File,
    screen: watch::Receiver<String>,
}

impl Terminal {
    fn spawn(command: &mut Command) -> (Terminal, tokio::process::Child) {
        let size = Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&size), None).unwrap();
        let slave: OwnedFd = pty.slave;
        command
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let child = command.spawn().unwrap();
        let master = File::from(pty.master);
        let input = master.try_clone().unwrap();
        let (sender, screen) = watch::channel(String::new());
        std::thread::spawn(move || {
            let mut master = master;
            let mut buffer = [0u8; 4096];
            // Ends with EIO once the program and every copy of the pty's other end are gone.
            while let Ok(read) = master.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                let chunk = String::from_utf8_lossy(&buffer[..read]).into_owned();
                sender.send_modify(|screen| screen.push_str(&chunk));
            }
        });
        (Terminal { input, screen }, child)
    }

    fn type_line(&mut self, line: &str) {
        self.input
            .write_all(format!("{line}\r").as_bytes())
            .unwrap();
    }

    /// Waits until the screen shows `needle` `count` times; returns the raw screen.
    async fn wait_for(&mut self, needle: &str, count: usize) -> String {
        let found = tokio::time::timeout(
            SCREEN_TIMEOUT,
            self.screen
                .wait_for(|screen| plain(screen).matches(needle).count() >= count),
        )
        .await
        .is_ok_and(|seen| seen.is_ok());
        let screen = self.screen.borrow().clone();
        assert!(
            found,
            "the screen did not show {needle:?} {count} times:\n{}",
            plain(&screen)
        );
        screen
    }
}

/// `text` from the `n`-th (1-based) occurrence of `needle` on.
fn after_nth<'a>(text: &'a str, needle: &str, n: usize) -> &'a str {
    let (index, _) = text.match_indices(needle).nth(n - 1).unwrap();
    &text[index..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_terminal_each_step_is_explained_before_it_runs_and_q_quits() {
    let _turn = common::cluster_turn().await;
    let (cluster, kubeconfig, dir) = start_cluster("walk-pty").await;
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .args(["lab", "statefulset-dns", "--walk", "--kubeconfig"])
        .arg(&kubeconfig)
        .kill_on_drop(true);
    let (mut terminal, mut child) = Terminal::spawn(&mut command);

    // Step 1: explanation and command, then the prompt; nothing has run yet.
    let screen = terminal.wait_for(PROMPT, 1).await;
    assert!(screen.contains("\x1b["), "a terminal gets colors");
    let text = plain(&screen);
    let step_1 = after_nth(&text, "── step 1/6", 1);
    let explained = step_1.find(&explanation_start(0, Language::En)).unwrap();
    let command_shown = step_1.find("$ kubectl apply -f web.yaml").unwrap();
    assert!(explained < command_shown, "{text}");
    assert!(!text.contains("service/nginx created"), "{text}");
    // The walk's own text fits an 80-column terminal.
    let preview = &step_1[..step_1.find(PROMPT).unwrap()];
    for line in preview.lines() {
        let width = line.chars().count();
        assert!(width <= 80, "{width} columns: {line}");
    }

    // Enter: step 1 runs and shows its real output; then step 2 is explained and waits.
    terminal.type_line("");
    let text = plain(&terminal.wait_for(PROMPT, 2).await);
    let after_1 = after_nth(&text, PROMPT, 1);
    let result_1 = after_1.find("service/nginx created").unwrap();
    let step_2 = after_1.find("── step 2/6").unwrap();
    assert!(result_1 < step_2, "{text}");
    let after_step_2 = &after_1[step_2..];
    let explained = after_step_2
        .find(&explanation_start(1, Language::En))
        .unwrap();
    let command_shown = after_step_2.find("$ kubectl get pod").unwrap();
    assert!(explained < command_shown, "{text}");
    assert!(!after_1.contains("web-2   1/1     Running"), "{text}");

    // Enter: step 2 runs (its table appears after its prompt), step 3 waits.
    terminal.type_line("");
    let text = plain(&terminal.wait_for(PROMPT, 3).await);
    let after_2 = after_nth(&text, PROMPT, 2);
    let table = after_2.find("web-2   1/1     Running").unwrap();
    assert!(table < after_2.find("── step 3/6").unwrap(), "{text}");

    // q: the walk stops, cleans up and exits like Ctrl-C.
    let namespaces_during = lab_namespaces(&cluster).await;
    terminal.type_line("q");
    let status = tokio::time::timeout(SCREEN_TIMEOUT, child.wait())
        .await
        .expect("xtask exits after q")
        .unwrap();
    let text = plain(&terminal.wait_for("INTERRUPTED statefulset-dns", 1).await);
    let left = lab_namespaces(&cluster).await;
    cluster.stop().await.unwrap();
    assert_eq!(namespaces_during.len(), 1, "{namespaces_during:?}");
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(!text.contains("[3/6]"), "step 3 never ran:\n{text}");
    assert!(left.is_empty(), "namespaces left after q: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_auto_walks_to_the_end_in_plain_text() {
    let _turn = common::cluster_turn().await;
    let (cluster, kubeconfig, dir) = start_cluster("walk-auto").await;
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .args([
            "lab",
            "statefulset-dns",
            "--walk",
            "--lang",
            "zh",
            "--auto",
            "0s",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let left = lab_namespaces(&cluster).await;
    cluster.stop().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains('\x1b'),
        "no escapes without a terminal:\n{stdout}"
    );
    assert!(
        stdout.contains("PASSED statefulset-dns: 6/6 steps"),
        "{stdout}"
    );
    for step in 1..=6 {
        let preview = stdout.find(&format!("── step {step}/6")).unwrap();
        let ran = stdout.find(&format!("[{step}/6]")).unwrap();
        assert!(
            preview < ran,
            "step {step} is previewed before it runs:\n{stdout}"
        );
    }
    assert!(
        stdout.contains(&explanation_start(0, Language::Zh)),
        "the Chinese explanation is shown:\n{stdout}"
    );
    assert!(left.is_empty(), "namespaces left: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
