//! The task that samples the node's cgroups for [`crate::metrics`] every period.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::cgroups::CgroupUsage;
use crate::context::NodeContext;
use crate::metrics::Sample;

/// Samples the node's containers every period until `shutdown`.
pub async fn run(context: Arc<NodeContext>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(context.metrics.period());
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        sample(&context);
    }
}

/// One round: reads the cgroup files of every running container and of the node (a few
/// small files each, which the kernel answers from memory).
fn sample(context: &NodeContext) {
    let take = |usage: std::io::Result<CgroupUsage>| {
        usage.ok().map(|usage| Sample {
            at: Instant::now(),
            wall: SystemTime::now(),
            usage,
        })
    };
    let containers = context
        .registry
        .all()
        .into_iter()
        .filter(|(_, record)| *record.running.borrow())
        .filter_map(|(key, record)| {
            let sample = take(record.usage.as_ref()?.read())?;
            Some((key, record.runc_id, sample))
        })
        .collect();
    let node = context
        .cgroups
        .usage_files()
        .and_then(|files| take(files.read()));
    context.metrics.record(containers, node);
}
