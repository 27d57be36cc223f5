//! What is derived once per span and shared by its observation and trace events: name,
//! environment, version and times ([`SpanFacts`]), and the tri-state of input/output.

use serde_json::Value;

use super::context::SpanContext;
use super::{environment, kind};

/// Values derived once per span and shared by its observation and trace events.
#[derive(Debug, Clone)]
pub(crate) struct SpanFacts {
    /// Observation name.
    pub name: String,
    /// Normalized environment.
    pub environment: String,
    /// Version (trace and observation).
    pub version: Option<String>,
    /// Start time, Unix ms.
    pub start_ms: i64,
    /// End time, Unix ms.
    pub end_ms: i64,
}

impl SpanFacts {
    /// Derives the facts of a span (`now` fills in missing times).
    pub fn derive(cx: &SpanContext<'_, '_>, now: i64) -> Self {
        let (start_ms, end_ms) = span_times(cx, now);
        SpanFacts {
            name: kind::observation_name(cx),
            environment: environment::environment(cx),
            version: environment::version(cx),
            start_ms,
            end_ms,
        }
    }
}

/// Start and end of a span in Unix ms: a missing edge takes the other one; both missing → now.
pub(crate) fn span_times(cx: &SpanContext<'_, '_>, now: i64) -> (i64, i64) {
    match (cx.span.start_time_unix_ms, cx.span.end_time_unix_ms) {
        (Some(s), Some(e)) => (s, e),
        (Some(s), None) => (s, s),
        (None, Some(e)) => (e, e),
        (None, None) => (now, now),
    }
}

/// Input/output as derived by [`super::io`] (`None` = undefined) into the record's tri-state.
pub(crate) fn io_field(value: Option<Value>) -> Option<Option<Value>> {
    match value {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(v)),
    }
}
