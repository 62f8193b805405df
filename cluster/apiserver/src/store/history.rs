//! The store's history of changes, kept for watches that resume from a resourceVersion and
//! for lists read at a past one (etcd's revisions before compaction). It is bounded twice:
//! in events, and in bytes of the objects the events hold, so that a few large objects
//! (a ConfigMap holds up to 1.5 MiB) cannot keep memory in use long after they were
//! deleted. The oldest events go first; a reader that needs one of them gets 410 Expired.

use std::collections::VecDeque;
use std::sync::Arc;

use super::StoreEvent;

/// The most events kept.
pub const HISTORY_LEN: usize = 10_000;

/// The most bytes of objects kept (their JSON size; an event counts its object and the
/// object before the change).
pub const HISTORY_BYTES: usize = 64 * 1024 * 1024;

/// The events after `compacted`, oldest first, within both bounds.
pub(super) struct History {
    events: VecDeque<Arc<StoreEvent>>,
    /// The sum of the kept events' sizes.
    bytes: usize,
    /// Events with a resourceVersion up to this one are no longer kept.
    compacted: u64,
    max_events: usize,
    max_bytes: usize,
}

impl History {
    /// An empty history at `revision`, keeping at most `max_events` events and `max_bytes`
    /// bytes of objects.
    pub(super) fn new(revision: u64, max_events: usize, max_bytes: usize) -> History {
        History {
            events: VecDeque::new(),
            bytes: 0,
            compacted: revision,
            max_events,
            max_bytes,
        }
    }

    /// Appends an event, then drops the oldest ones until both bounds hold. The newest event
    /// is always kept, even alone over the byte bound, so that a watcher that has just seen
    /// the store's revision can resume from the one before it.
    pub(super) fn push(&mut self, event: Arc<StoreEvent>) {
        self.bytes += event.size;
        self.events.push_back(event);
        while self.events.len() > 1
            && (self.events.len() > self.max_events || self.bytes > self.max_bytes)
        {
            let Some(old) = self.events.pop_front() else {
                break;
            };
            self.bytes -= old.size;
            self.compacted = old.resource_version;
        }
    }

    /// The resourceVersion up to which events are gone: a read from an older one cannot be
    /// served.
    pub(super) fn compacted(&self) -> u64 {
        self.compacted
    }

    /// The kept events, oldest first.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<StoreEvent>> {
        self.events.iter()
    }

    /// How many events are kept and the bytes of objects they hold.
    pub(super) fn usage(&self) -> (usize, usize) {
        (self.events.len(), self.bytes)
    }
}

/// The size of `value` written as compact JSON, as etcd would be sent it, counted without
/// building the text.
pub fn json_size(value: &serde_json::Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a Value to a counter cannot fail: its keys are strings and it has no I/O.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventType;
    use serde_json::json;

    fn event(resource_version: u64, size: usize) -> Arc<StoreEvent> {
        Arc::new(StoreEvent {
            resource_version,
            event_type: EventType::Added,
            resource: "/configmaps",
            namespace: "ns".into(),
            object: json!({}),
            previous: None,
            size,
        })
    }

    #[test]
    fn json_size_is_the_length_of_compact_json() {
        let value = json!({"metadata": {"name": "a"}, "data": {"k": "v\"é"}});
        assert_eq!(json_size(&value), serde_json::to_vec(&value).unwrap().len());
    }

    #[test]
    fn the_oldest_events_go_first_past_the_byte_bound() {
        let mut history = History::new(1, 100, 1000);
        for rv in 2..=6 {
            history.push(event(rv, 300));
        }
        // 5 × 300 bytes: the two oldest are dropped to stay within 1000.
        assert_eq!(history.usage(), (3, 900));
        assert_eq!(history.compacted(), 3);
        let kept: Vec<u64> = history.iter().map(|e| e.resource_version).collect();
        assert_eq!(kept, [4, 5, 6]);
    }

    #[test]
    fn the_event_bound_still_holds() {
        let mut history = History::new(1, 3, usize::MAX);
        for rv in 2..=10 {
            history.push(event(rv, 1));
        }
        assert_eq!(history.usage(), (3, 3));
        assert_eq!(history.compacted(), 7);
    }

    #[test]
    fn the_newest_event_is_kept_even_over_the_byte_bound() {
        let mut history = History::new(1, 100, 1000);
        history.push(event(2, 10));
        history.push(event(3, 5000));
        assert_eq!(history.usage(), (1, 5000));
        assert_eq!(history.compacted(), 2);
        history.push(event(4, 10));
        assert_eq!(history.usage(), (1, 10));
        assert_eq!(history.compacted(), 3);
    }
}
