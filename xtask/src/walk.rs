//! Walk mode (`cargo xtask lab <lab> --walk`): a lab stepped through in front of a class.
//! Before each step the instructor sees its explanation (English or Chinese), the kubectl
//! command a student would type, and a prompt; Enter runs the step (whose real output the
//! runner prints), `q` quits and cleans up. `--auto DELAY` paces the steps by time instead,
//! for a projector. Plain text without a terminal or with NO_COLOR; fits 80 columns.

use std::io::{BufRead, IsTerminal, Write};
use std::pin::Pin;
use std::time::Duration;

use k8s_labs_harness::report::format_elapsed;
use k8s_labs_harness::{Language, Pacer, Step};
use tokio::sync::{Mutex, mpsc};

use crate::LangArg;

/// Explanations wrap at this display width (an 80-column terminal, minus a margin).
pub const WRAP_WIDTH: usize = 78;

/// The walk-mode flags of `cargo xtask lab`.
#[derive(clap::Args)]
pub struct WalkArgs {
    /// Step through the lab: explain each step and show its command, then wait for Enter
    /// (q + Enter quits and cleans up).
    #[arg(long, conflicts_with = "all")]
    pub walk: bool,
    /// The language of the walk's explanations.
    #[arg(long, value_enum, value_name = "LANG", requires = "walk", default_value_t = LangArg::En)]
    pub lang: LangArg,
    /// Instead of waiting for Enter, wait this long before each step (e.g. 2s, 500ms, 0s).
    #[arg(long, value_name = "DELAY", requires = "walk", value_parser = parse_delay)]
    pub auto: Option<Duration>,
}

/// `2s`, `1.5s`, `500ms`, `0s` (or a bare number of seconds) as a duration.
pub fn parse_delay(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a delay like 2s, 500ms or 0s");
    let (number, unit) = match text.strip_suffix("ms") {
        Some(number) => (number, 0.001),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    let value: f64 = number.trim().parse().map_err(|_| invalid())?;
    let seconds = value * unit;
    if !seconds.is_finite() || !(0.0..=3600.0).contains(&seconds) {
        return Err(invalid());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A line the instructor typed, or the end of input.
type Input = mpsc::UnboundedReceiver<String>;

/// Reads stdin lines on a plain thread: a read in progress cannot be cancelled, and a thread
/// blocked in it must not keep the process from exiting (tokio's stdin would hold the
/// runtime's shutdown until the next Enter).
pub fn stdin_lines() -> Input {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
        // Dropping the sender tells the pacer that input ended.
    });
    receiver
}

/// What the instructor's answer to a prompt means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Run,
    Quit,
}

fn answer(line: Option<&str>) -> Answer {
    match line.map(str::trim) {
        Some(text) if text.eq_ignore_ascii_case("q") || text.eq_ignore_ascii_case("quit") => {
            Answer::Quit
        }
        Some(_) => Answer::Run,
        None => Answer::Quit,
    }
}

/// The pacer of walk mode: shows what comes, then waits for Enter or the delay.
pub struct WalkPacer {
    input: Mutex<Input>,
    auto: Option<Duration>,
    language: Language,
    color: bool,
}

impl WalkPacer {
    /// A pacer reading answers from `input`, waiting `auto` per step instead when given.
    pub fn new(input: Input, auto: Option<Duration>, language: Language) -> WalkPacer {
        WalkPacer {
            input: Mutex::new(input),
            auto,
            language,
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// The preview of a step: header, wrapped explanation, command and prompt.
    fn preview(&self, index: usize, total: usize, step: &Step, command: &str) -> String {
        let mut text = String::from("\n");
        let header = format!("── step {index}/{total}: {}", step.name());
        for line in wrap(&header, "", "   ") {
            text.push_str(&self.paint("1", &line));
            text.push('\n');
        }
        let explanation = step.explanation(self.language);
        for paragraph in explanation.lines() {
            for line in wrap(paragraph, "   ", "   ") {
                text.push_str(&line);
                text.push('\n');
            }
        }
        text.push('\n');
        for line in wrap(&format!("$ {command}"), "   ", "       ") {
            text.push_str(&self.paint("36", &line));
            text.push('\n');
        }
        let prompt = match (self.auto, self.language) {
            (None, Language::En) => "   [Enter] run it   [q Enter] quit".to_string(),
            (None, Language::Zh) => "   [回车] 运行   [q 回车] 退出".to_string(),
            (Some(delay), Language::En) => {
                format!("   runs in {} ([q Enter] quits)", format_elapsed(delay))
            }
            (Some(delay), Language::Zh) => {
                format!("   {} 后运行([q 回车] 退出)", format_elapsed(delay))
            }
        };
        text.push_str(&self.paint("2", &prompt));
        text.push('\n');
        text
    }

    async fn wait(&self) -> bool {
        let mut input = self.input.lock().await;
        match self.auto {
            None => answer(input.recv().await.as_deref()) == Answer::Run,
            Some(delay) => {
                let sleep = tokio::time::sleep(delay);
                tokio::pin!(sleep);
                tokio::select! {
                    _ = &mut sleep => true,
                    line = input.recv() => match line {
                        // Input ended (no terminal, stdin closed): keep going by time.
                        None => {
                            sleep.await;
                            true
                        }
                        // Enter skips the rest of the delay; q quits.
                        Some(line) => answer(Some(&line)) == Answer::Run,
                    },
                }
            }
        }
    }
}

impl Pacer for WalkPacer {
    fn before_step<'a>(
        &'a self,
        index: usize,
        total: usize,
        step: &'a Step,
        command: &'a str,
    ) -> Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let preview = self.preview(index, total, step, command);
            {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(preview.as_bytes());
                let _ = stdout.flush();
            }
            let go_on = self.wait().await;
            if !go_on {
                let bye = match self.language {
                    Language::En => "   quitting: cleaning up the lab's namespace\n",
                    Language::Zh => "   退出:正在清理实验的命名空间\n",
                };
                print!("{bye}");
                let _ = std::io::stdout().flush();
            }
            go_on
        })
    }
}

/// `text` wrapped to [`WRAP_WIDTH`] display columns (Chinese characters count two and may
/// break between any two of them).
pub fn wrap(text: &str, first_indent: &str, indent: &str) -> Vec<String> {
    let options = textwrap::Options::new(WRAP_WIDTH)
        .initial_indent(first_indent)
        .subsequent_indent(indent);
    textwrap::wrap(text, options)
        .into_iter()
        .map(|line| line.into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_labs_harness::StepOutcome;

    #[test]
    fn delays_read_like_durations() {
        assert_eq!(parse_delay("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_delay("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_delay("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_delay("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_delay("soon").unwrap_err().contains("2s, 500ms"));
        assert!(parse_delay("-1s").is_err());
    }

    #[test]
    fn q_or_the_end_of_input_quits() {
        assert_eq!(answer(Some("")), Answer::Run);
        assert_eq!(answer(Some(" q ")), Answer::Quit);
        assert_eq!(answer(Some("Q")), Answer::Quit);
        assert_eq!(answer(None), Answer::Quit);
    }

    #[test]
    fn chinese_and_english_wrap_within_78_columns() {
        let lab = lab_statefulset_dns::lab();
        for step in lab.steps() {
            for language in [Language::En, Language::Zh] {
                for line in wrap(step.explanation(language), "   ", "   ") {
                    let width = textwrap::core::display_width(&line);
                    assert!(width <= WRAP_WIDTH, "{width} columns: {line}");
                }
            }
        }
        let chinese = "web.yaml 用于创建一个Service和一个StatefulSet,".repeat(6);
        let lines = wrap(&chinese, "", "");
        assert!(lines.len() > 1, "{lines:?}");
        assert_eq!(lines.concat().replace(' ', ""), chinese.replace(' ', ""));
    }

    fn step() -> Step {
        Step::new(
            "curl",
            "kubectl exec web-1 -- curl -s web-1.nginx.{ns}.svc.cluster.local",
            Duration::from_secs(1),
            |_| async { Ok(StepOutcome::passed("")) },
        )
        .explain("Each pod has a DNS name.")
        .explain_zh("每个Pod都有DNS名称。")
    }

    #[tokio::test]
    async fn enter_runs_the_step_and_q_quits() {
        let (sender, receiver) = mpsc::unbounded_channel();
        let pacer = WalkPacer::new(receiver, None, Language::Zh);
        let command = "kubectl exec web-1 -- curl -s web-1.nginx.lab-x.svc.cluster.local";
        let preview = pacer.preview(4, 6, &step(), command);
        assert!(preview.contains("step 4/6: curl"), "{preview}");
        assert!(preview.contains("每个Pod都有DNS名称。"), "{preview}");
        assert!(
            preview.contains("$ kubectl exec web-1 -- curl -s web-1.nginx.lab-x.svc"),
            "{preview}"
        );
        sender.send(String::new()).unwrap();
        assert!(pacer.before_step(4, 6, &step(), command).await);
        sender.send("q".to_string()).unwrap();
        assert!(!pacer.before_step(5, 6, &step(), command).await);
        drop(sender);
        assert!(
            !pacer.before_step(6, 6, &step(), command).await,
            "EOF quits"
        );
    }

    #[tokio::test]
    async fn auto_mode_goes_on_by_time_even_without_input() {
        let (sender, receiver) = mpsc::unbounded_channel::<String>();
        drop(sender);
        let pacer = WalkPacer::new(receiver, Some(Duration::from_millis(100)), Language::En);
        let started = tokio::time::Instant::now();
        assert!(pacer.before_step(1, 2, &step(), "kubectl get pod").await);
        assert!(started.elapsed() >= Duration::from_millis(100));
        let (sender, receiver) = mpsc::unbounded_channel();
        let pacer = WalkPacer::new(receiver, Some(Duration::from_secs(60)), Language::En);
        sender.send("q".to_string()).unwrap();
        assert!(!pacer.before_step(1, 2, &step(), "kubectl get pod").await);
    }
}
