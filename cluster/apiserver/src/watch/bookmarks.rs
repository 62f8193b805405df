//! BOOKMARK events, as the watch cache sends them: the `k8s.io/initial-events-end` one that
//! ends a streaming list, and the periodic ones (cacheWatcher.nextBookmarkTime) that tell an
//! idle client how far the store has come, so that it resumes from a recent revision.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::time::Instant;

use crate::registry::ResourceInfo;

/// How long before the watch's timeout the last bookmark is due: upstream "simply set it 2s
/// before the deadline", so that a client reconnecting after the timeout starts from a
/// revision that is as recent as possible.
const BEFORE_DEADLINE: Duration = Duration::from_secs(2);

/// The timing of watches; upstream's by default. Internal: tests change it, users cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchTiming {
    /// How often a watch that takes bookmarks gets one: the cacher's `bookmarkFrequency`,
    /// a minute.
    pub bookmark_frequency: Duration,
    /// How long a streaming list waits for the store to reach its resourceVersion before it
    /// fails with 504: the watch cache's `blockTimeout`, 3 s.
    pub freshness_wait: Duration,
}

impl Default for WatchTiming {
    fn default() -> Self {
        WatchTiming {
            bookmark_frequency: Duration::from_secs(60),
            freshness_wait: Duration::from_secs(3),
        }
    }
}

/// When a watch's next periodic bookmark is due (upstream's cacheWatcher.nextBookmarkTime):
/// a frequency after `now`, but 2 s before the deadline if that comes first; None when that
/// moment has passed (no more bookmarks for this watch).
pub fn next_bookmark_time(
    now: Instant,
    frequency: Duration,
    deadline: Option<Instant>,
) -> Option<Instant> {
    let heartbeat = now + frequency;
    let Some(deadline) = deadline else {
        return Some(heartbeat);
    };
    let pretimeout = deadline.checked_sub(BEFORE_DEADLINE)?;
    let next = heartbeat.min(pretimeout);
    (next >= now).then_some(next)
}

/// A BOOKMARK event line: an object of the watched kind with only a resourceVersion (and the
/// initial-events-end annotation when it ends a streaming list's initial events).
pub fn bookmark_line(resource: &ResourceInfo, revision: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({ "resourceVersion": revision.to_string() });
    if initial_events_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    let object = json!({ "kind": resource.kind, "apiVersion": resource.api_version(), "metadata": metadata });
    super::line("BOOKMARK", &object)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn bookmarks_are_due_every_minute_and_two_seconds_before_the_deadline() {
        let now = Instant::now();
        let secs = Duration::from_secs;
        // No timeout: every minute.
        assert_eq!(next_bookmark_time(now, MINUTE, None), Some(now + MINUTE));
        // A timeout far off: still every minute.
        assert_eq!(
            next_bookmark_time(now, MINUTE, Some(now + secs(290))),
            Some(now + MINUTE)
        );
        // A timeout within the minute: 2 s before it.
        assert_eq!(
            next_bookmark_time(now, MINUTE, Some(now + secs(30))),
            Some(now + secs(28))
        );
        assert_eq!(
            next_bookmark_time(now, MINUTE, Some(now + secs(2))),
            Some(now)
        );
        // Less than 2 s left: none any more.
        assert_eq!(next_bookmark_time(now, MINUTE, Some(now + secs(1))), None);
    }
}
