//! Deterministic `SpanData` for exporter tests.

use std::borrow::Cow;
use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

/// Span number `i` (span id `i + 1`, trace id `i / 5 + 1`), a Langfuse span of scope
/// `langfuse-sdk` with `pad` bytes of input.
pub fn span(i: u64, pad: usize) -> SpanData {
    let start = UNIX_EPOCH + Duration::from_secs(1_767_258_000) + Duration::from_millis(i);
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(u128::from(i / 5 + 1)),
            SpanId::from(i + 1),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Owned(format!("span-{i}")),
        start_time: start,
        end_time: start + Duration::from_millis(3),
        attributes: vec![
            KeyValue::new("langfuse.observation.type", "span"),
            KeyValue::new("langfuse.observation.input", "x".repeat(pad)),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("langfuse-sdk").build(),
    }
}

/// Spans `range` with no padding.
pub fn spans(range: std::ops::Range<u64>) -> Vec<SpanData> {
    range.map(|i| span(i, 0)).collect()
}

/// The hex span id of [`span`]`(i, _)`, as receivers see it.
pub fn span_id_hex(i: u64) -> String {
    format!("{:016x}", i + 1)
}

/// Sorted hex ids of spans `range`.
pub fn span_ids(range: std::ops::Range<u64>) -> Vec<String> {
    let mut v: Vec<String> = range.map(span_id_hex).collect();
    v.sort();
    v
}
