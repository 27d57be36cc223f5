//! Log records of any other application (`--logs events`): a record that carries a trace and
//! span id becomes a Langfuse event (type `event`) under that span; records without them are
//! left out.
//!
//! | log record | event |
//! |---|---|
//! | `event.name` attribute, else `event_name`, else `log` | name |
//! | body | input |
//! | attributes | metadata |
//! | severity ≥ 17 (ERROR, FATAL) / ≥ 13 (WARN) / ≤ 8 (TRACE, DEBUG) / other | level ERROR / WARNING / DEBUG / DEFAULT |
//! | time (else observed time) | start and end |
//! | trace id, span id | trace, parent; the event's own id is derived from the record |

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::model::derived_span_id;
use crate::keys;
use crate::log::LogBatch;
use crate::span::{Attributes, ResourceSpans, ScopeSpans, Span, SpanBatch};
use crate::value::AttrValue;

/// The level of an OTLP severity number.
fn level(severity: i32) -> &'static str {
    match severity {
        17.. => "ERROR",
        13..=16 => "WARNING",
        1..=8 => "DEBUG",
        _ => "DEFAULT",
    }
}

/// The records of `batch` that carry a trace and span id, as event spans under that span.
/// Returns them and how many records were left out (no trace or span id, or no time).
///
/// ```
/// use langfuse_otel_core::{agents, otlp};
///
/// let logs = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
///   {"timeUnixNano":"1767258000000000000","severityNumber":17,"body":{"stringValue":"disk full"},
///    "traceId":"f7a0e8d1f86e1d6a80854c2106aa25fb","spanId":"99180b94af7b795a"},
///   {"timeUnixNano":"1767258000000000000","body":{"stringValue":"no trace"}}]}]}]}"#;
/// let batch = otlp::decode_logs_as(otlp::Format::Json, logs).unwrap();
/// let (spans, left_out) = agents::log_events(&batch);
/// assert_eq!((spans.span_count(), left_out), (1, 1));
/// ```
pub fn log_events(batch: &LogBatch) -> (SpanBatch<'static>, usize) {
    let mut out = SpanBatch::default();
    let mut left_out = 0;
    for rl in &batch.resource_logs {
        let mut scope_spans = Vec::new();
        for sl in &rl.scope_logs {
            let mut spans = Vec::new();
            for (n, r) in sl.records.iter().enumerate() {
                let (Some(trace_id), Some(span_id), Some(time)) =
                    (&r.trace_id, &r.span_id, r.time_nanos())
                else {
                    left_out += 1;
                    continue;
                };
                let name = r
                    .attributes
                    .get_str("event.name")
                    .map(str::to_owned)
                    .or_else(|| r.event_name.clone())
                    .unwrap_or_else(|| "log".to_owned());
                let metadata: Map<String, Value> = r
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_json()))
                    .collect();
                let mut attrs: Vec<(Cow<'static, str>, AttrValue<'static>)> = vec![
                    (
                        Cow::Borrowed(keys::LANGFUSE_OBSERVATION_TYPE),
                        AttrValue::str("event"),
                    ),
                    (
                        Cow::Borrowed(keys::LANGFUSE_OBSERVATION_LEVEL),
                        AttrValue::str(level(r.severity_number)),
                    ),
                ];
                if let Some(body) = &r.body {
                    attrs.push((
                        Cow::Borrowed(keys::LANGFUSE_OBSERVATION_INPUT),
                        AttrValue::Str(body.to_json_string().into_owned().into()),
                    ));
                }
                if !metadata.is_empty() {
                    attrs.push((
                        Cow::Borrowed(keys::LANGFUSE_OBSERVATION_METADATA),
                        AttrValue::Str(Value::Object(metadata).to_string().into()),
                    ));
                }
                let id = derived_span_id(&[trace_id, span_id, &time.to_string(), &n.to_string()]);
                let ms = i64::try_from(time / 1_000_000).ok();
                spans.push(Span {
                    trace_id: Cow::Owned(trace_id.clone()),
                    span_id: Cow::Owned(id),
                    parent_span_id: Some(Cow::Owned(span_id.clone())),
                    name: Cow::Owned(name),
                    start_time_unix_ms: ms,
                    end_time_unix_ms: ms,
                    start_time_unix_nano: Some(time),
                    end_time_unix_nano: Some(time),
                    attributes: Attributes::from_pairs(attrs),
                    ..Span::default()
                });
            }
            if !spans.is_empty() {
                scope_spans.push(ScopeSpans {
                    scope: sl.scope.clone(),
                    spans,
                });
            }
        }
        if !scope_spans.is_empty() {
            out.resource_spans.push(ResourceSpans {
                resource: rl.resource.clone(),
                scope_spans,
            });
        }
    }
    (out, left_out)
}
