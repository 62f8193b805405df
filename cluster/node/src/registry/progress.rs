//! Progress of a long pull, for whoever watches the cluster's terminal: a line every few
//! seconds (`pulling docker.io/library/nginx:latest: 23.1 of 71.2 MB`) once a pull has taken
//! longer than a moment, logged at info under the target [`PULL_PROGRESS`]. Short pulls, and
//! every pull of an offline machine, print nothing.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::task::JoinHandle;

/// The tracing target of progress lines (`cargo xtask` shows it by default).
pub const PULL_PROGRESS: &str = "k8s_labs::pulls";

/// How long a pull runs before its first progress line, and between lines.
const FIRST_LINE_AFTER: Duration = Duration::from_secs(2);
const LINE_EVERY: Duration = Duration::from_secs(5);

/// The bytes a pull has downloaded; logs them until dropped.
pub struct PullProgress {
    downloaded: Arc<AtomicU64>,
    ticker: JoinHandle<()>,
}

impl PullProgress {
    /// Starts reporting a pull of `reference` that downloads `total` bytes.
    pub fn start(reference: String, total: u64) -> PullProgress {
        let downloaded = Arc::new(AtomicU64::default());
        let seen = downloaded.clone();
        let ticker = tokio::spawn(async move {
            tokio::time::sleep(FIRST_LINE_AFTER).await;
            loop {
                let megabytes = |bytes: u64| bytes as f64 / 1e6;
                tracing::info!(
                    target: PULL_PROGRESS,
                    "pulling {reference}: {:.1} of {:.1} MB",
                    megabytes(seen.load(Ordering::Relaxed)),
                    megabytes(total)
                );
                tokio::time::sleep(LINE_EVERY).await;
            }
        });
        PullProgress { downloaded, ticker }
    }

    /// `out`, counting what is written through it into this pull's progress.
    pub fn counting<W: AsyncWrite + Unpin>(&self, out: W) -> CountingWriter<W> {
        CountingWriter {
            out,
            count: self.downloaded.clone(),
        }
    }
}

impl Drop for PullProgress {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

/// A writer that adds what it writes to a pull's progress.
pub struct CountingWriter<W> {
    out: W,
    count: Arc<AtomicU64>,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for CountingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.out).poll_write(cx, buf);
        if let Poll::Ready(Ok(bytes)) = &written {
            self.count.fetch_add(*bytes as u64, Ordering::Relaxed);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.out).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.out).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn counts_what_goes_through() {
        let progress = PullProgress::start("x".into(), 10);
        let mut sink = progress.counting(Vec::new());
        sink.write_all(b"hello").await.unwrap();
        sink.write_all(b"!!").await.unwrap();
        assert_eq!(progress.downloaded.load(Ordering::Relaxed), 7);
        assert_eq!(sink.out, b"hello!!");
    }
}
