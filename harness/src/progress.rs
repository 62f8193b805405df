//! What a terminal shows while a step waits: after a second, one live line (indicatif) saying
//! what the step waits for, what the cluster shows now (`web-1 ContainerCreating: Pulling image
//! "nginx"`, `pvc www-web-0 Pending`) and the time spent against the step's timeout; the line is
//! cleared when the step ends, so its result takes its place. On a pipe, with `NO_COLOR` or
//! `TERM=dumb`, or with labs in parallel, a plain line every ten seconds instead; nothing on a
//! captured console, so that tests and transcripts never depend on timing.

mod now;
mod pty;

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use kube::Client;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::console::{Console, ProgressMode};
use crate::context::StepState;

pub use now::cluster_now;

/// How long a step runs before the live line appears (shorter steps show nothing).
pub const LIVE_AFTER: Duration = Duration::from_secs(1);
/// How often the cluster is looked at and the line redrawn.
pub const REFRESH: Duration = Duration::from_secs(1);
/// How often the plain line is printed where no live line can be.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);
/// Items of the cluster's state shown at most (then "+N more").
const MAX_ITEMS: usize = 3;

/// What one step shows while it runs; [`StepProgress::finish`] takes it away.
pub(crate) struct StepProgress {
    ticker: Option<JoinHandle<()>>,
}

/// Where the ticker shows its line.
enum Shown {
    /// The target, until the bar is made (at the first line).
    Live(Option<ProgressDrawTarget>),
    Plain(Console),
}

/// What the ticker needs to know about the step.
pub(crate) struct Watched {
    pub(crate) started: Instant,
    pub(crate) timeout: Duration,
    pub(crate) state: Arc<StepState>,
    pub(crate) client: Client,
    pub(crate) namespace: String,
}

impl StepProgress {
    /// Starts showing the progress of the step `watched` on `console`, as its mode says.
    pub(crate) fn start(console: &Console, watched: Watched) -> StepProgress {
        let shown = match console.progress_mode() {
            ProgressMode::Off => return StepProgress { ticker: None },
            ProgressMode::LiveOnStdout => Shown::Live(Some(ProgressDrawTarget::stdout())),
            ProgressMode::LiveOn(file) => Shown::Live(Some(ProgressDrawTarget::term_like(
                Box::new(pty::FileTerm::new(file)),
            ))),
            ProgressMode::Plain => Shown::Plain(console.clone()),
        };
        StepProgress {
            ticker: Some(tokio::spawn(tick(shown, watched))),
        }
    }

    /// Stops showing progress; a live line is cleared before this returns.
    pub(crate) async fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
            // The bar, owned by the ticker, clears its line when dropped.
            let _ = ticker.await;
        }
    }
}

async fn tick(mut shown: Shown, watched: Watched) {
    let mut bar: Option<ProgressBar> = None;
    // The cluster is looked at only when a line is shown: every second for a live line, every
    // ten seconds for a plain one (three lists per look, on every step of every run).
    let mut next = watched.started
        + match shown {
            Shown::Live(_) => LIVE_AFTER,
            Shown::Plain(_) => PLAIN_EVERY,
        };
    loop {
        tokio::time::sleep_until(next).await;
        let items = cluster_now(&watched.client, &watched.namespace).await;
        let line = progress_line(
            watched.state.waiting_for().as_deref(),
            &items,
            watched.started.elapsed(),
            watched.timeout,
        );
        match &mut shown {
            Shown::Live(target) => {
                match (&bar, target.take()) {
                    (Some(bar), _) => bar.set_message(line),
                    (None, Some(target)) => bar = Some(live_bar(target, line)),
                    (None, None) => {}
                }
                next = Instant::now() + REFRESH;
            }
            Shown::Plain(console) => {
                console.print(&format!("      … {line}\n"));
                next += PLAIN_EVERY;
            }
        }
    }
}

/// The bar, first drawn with `line` (the spinner turns on its own from then on).
fn live_bar(target: ProgressDrawTarget, line: String) -> ProgressBar {
    let style = ProgressStyle::with_template("      {spinner} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bar = ProgressBar::with_draw_target(None, target)
        .with_style(style)
        .with_message(line)
        .with_finish(ProgressFinish::AndClear);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// The line: `waiting for pod web-0 to be Running and Ready · web-0 ContainerCreating:
/// Pulling image "nginx" · 12 s of 180 s`.
pub fn progress_line(
    waiting_for: Option<&str>,
    items: &[String],
    elapsed: Duration,
    timeout: Duration,
) -> String {
    let mut parts = vec![match waiting_for {
        Some(what) => format!("waiting for {what}"),
        None => "running".to_string(),
    }];
    if !items.is_empty() {
        let mut shown = items
            .iter()
            .take(MAX_ITEMS)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if items.len() > MAX_ITEMS {
            shown.push_str(&format!("; +{} more", items.len() - MAX_ITEMS));
        }
        parts.push(shown);
    }
    parts.push(format!(
        "{} s of {} s",
        elapsed.as_secs(),
        timeout.as_secs()
    ));
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_is_awaited_what_the_cluster_shows_and_the_time() {
        let items = vec![
            "web-1 ContainerCreating: Pulling image \"nginx\"".to_string(),
            "pvc www-web-1 Pending".to_string(),
        ];
        assert_eq!(
            progress_line(
                Some("pod web-1 to be Running and Ready"),
                &items,
                Duration::from_millis(12_700),
                Duration::from_secs(180)
            ),
            "waiting for pod web-1 to be Running and Ready · web-1 ContainerCreating: Pulling \
             image \"nginx\"; pvc www-web-1 Pending · 12 s of 180 s"
        );
        assert_eq!(
            progress_line(None, &[], Duration::from_secs(3), Duration::from_secs(60)),
            "running · 3 s of 60 s"
        );
    }

    #[test]
    fn many_items_are_cut_to_a_few() {
        let items: Vec<String> = (0..5).map(|i| format!("web-{i} Pending")).collect();
        let line = progress_line(None, &items, Duration::ZERO, Duration::from_secs(1));
        assert_eq!(
            line,
            "running · web-0 Pending; web-1 Pending; web-2 Pending; +2 more · 0 s of 1 s"
        );
    }
}
