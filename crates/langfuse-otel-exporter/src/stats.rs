//! Counters of what happened to exported spans, readable while the pipeline runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shared, lock-free counters. Clone the handle (an `Arc`) before moving the exporter or
/// processor into a tracer provider, then read it at any time.
///
/// ```
/// let stats = langfuse_otel_exporter::Stats::default();
/// assert_eq!(stats.snapshot().exported_spans, 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Stats(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    exported_spans: AtomicU64,
    dropped_spans: AtomicU64,
    queue_dropped_spans: AtomicU64,
    filtered_spans: AtomicU64,
    retried_requests: AtomicU64,
    failed_exports: AtomicU64,
    sent_events: AtomicU64,
    rejected_events: AtomicU64,
    requests: AtomicU64,
}

/// A point-in-time copy of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Spans the destination acknowledged (or wrote, for the offline file).
    pub exported_spans: u64,
    /// Spans given up by the exporter (retries exhausted, timeout, final rejection).
    pub dropped_spans: u64,
    /// Spans the processor dropped because its queue was full.
    pub queue_dropped_spans: u64,
    /// Spans not exported because the export filter rejected them (not a loss).
    pub filtered_spans: u64,
    /// Requests sent again after a retryable failure.
    pub retried_requests: u64,
    /// `export` calls that returned an error.
    pub failed_exports: u64,
    /// Native ingestion: events the server accepted.
    pub sent_events: u64,
    /// Native ingestion: events the server rejected with a 4xx per-event error (or that still
    /// failed with 5xx/429 after retries).
    pub rejected_events: u64,
    /// HTTP requests that got a 2xx answer.
    pub requests: u64,
}

impl StatsSnapshot {
    /// All spans lost: dropped by the exporter plus dropped by the queue.
    pub fn lost_spans(&self) -> u64 {
        self.dropped_spans + self.queue_dropped_spans
    }
}

macro_rules! adders {
    ($($name:ident => $field:ident),* $(,)?) => {
        impl Stats {
            $(
                pub(crate) fn $name(&self, n: u64) {
                    self.0.$field.fetch_add(n, Ordering::Relaxed);
                }
            )*
        }
    };
}

adders! {
    add_exported => exported_spans,
    add_dropped => dropped_spans,
    add_queue_dropped => queue_dropped_spans,
    add_filtered => filtered_spans,
    add_retried => retried_requests,
    add_failed_export => failed_exports,
    add_sent_events => sent_events,
    add_rejected_events => rejected_events,
    add_requests => requests,
}

impl Stats {
    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let c = &self.0;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            exported_spans: r(&c.exported_spans),
            dropped_spans: r(&c.dropped_spans),
            queue_dropped_spans: r(&c.queue_dropped_spans),
            filtered_spans: r(&c.filtered_spans),
            retried_requests: r(&c.retried_requests),
            failed_exports: r(&c.failed_exports),
            sent_events: r(&c.sent_events),
            rejected_events: r(&c.rejected_events),
            requests: r(&c.requests),
        }
    }
}
