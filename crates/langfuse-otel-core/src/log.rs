//! OTLP log records, as the agent rules ([`crate::agents`]) read them: records grouped by
//! resource and instrumentation scope, values converted like span attributes ([`AttrValue`]).
//!
//! The decoders are in [`crate::otlp`] ([`crate::otlp::decode_logs_as`]).

use crate::span::{Attributes, Resource, Scope};
use crate::value::AttrValue;

/// One OTLP log record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogRecord {
    /// When the event happened (Unix nanoseconds), if the record says.
    pub time_unix_nano: Option<u64>,
    /// When the SDK observed it (Unix nanoseconds), if the record says.
    pub observed_time_unix_nano: Option<u64>,
    /// OTLP severity number (0: unspecified).
    pub severity_number: i32,
    /// Severity text, when present and non-empty.
    pub severity_text: Option<String>,
    /// The body, when present.
    pub body: Option<AttrValue<'static>>,
    /// The record's attributes.
    pub attributes: Attributes<'static>,
    /// Trace id (lowercase hex), when the record carries a non-empty one.
    pub trace_id: Option<String>,
    /// Span id (lowercase hex), when the record carries a non-empty one.
    pub span_id: Option<String>,
    /// `LogRecord.event_name`, when present and non-empty.
    pub event_name: Option<String>,
}

impl LogRecord {
    /// The record's time in Unix nanoseconds: its event time, else its observed time.
    pub fn time_nanos(&self) -> Option<u64> {
        self.time_unix_nano.or(self.observed_time_unix_nano)
    }

    /// The record's time in Unix milliseconds (see [`time_nanos`](Self::time_nanos)).
    pub fn time_ms(&self) -> Option<i64> {
        self.time_nanos()
            .and_then(|ns| i64::try_from(ns / 1_000_000).ok())
    }
}

/// Log records of one instrumentation scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeLogs {
    /// The scope.
    pub scope: Scope<'static>,
    /// Its records, in order.
    pub records: Vec<LogRecord>,
}

/// Log records of one resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceLogs {
    /// The resource.
    pub resource: Resource<'static>,
    /// Its scopes with their records.
    pub scope_logs: Vec<ScopeLogs>,
}

/// The content of one OTLP logs export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogBatch {
    /// Records grouped by resource.
    pub resource_logs: Vec<ResourceLogs>,
}

impl LogBatch {
    /// Total number of log records.
    pub fn record_count(&self) -> usize {
        self.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.records.len())
            .sum()
    }
}
