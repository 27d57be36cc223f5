//! `opentelemetry_sdk` spans into a borrowed [`SpanBatch`], for in-process exporters.
//!
//! The result equals what decoding the OTLP protobuf the official exporter
//! (`opentelemetry-otlp`, via `opentelemetry_proto::transform`) sends for the same spans would
//! give (see [`super::decode_protobuf`]), without encoding anything: keys, names and string
//! values are borrowed from the spans; only the hex ids and the containers are allocated.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource as SdkResource;
use opentelemetry_sdk::trace::SpanData;

use super::{EMPTY_ARRAY_VALUE, hex, nanos_to_ms};
use crate::span::{
    Attributes, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanBatch, SpanEvent, StatusCode,
};
use crate::value::AttrValue;

/// Converts exported `SpanData` of one resource into a batch borrowing from them.
///
/// Spans are grouped by instrumentation scope: each run of consecutive spans with equal scopes
/// forms one group, in order. (The official exporter merges all spans of a scope into one
/// group; the translation does not depend on the grouping.)
///
/// Values follow the server's view of the OTLP protobuf: `i64` → JavaScript number, empty
/// arrays → `{"arrayValue":{}}`, `Status::Error` → code 2 with its description as message
/// (absent when empty), parent [`SpanId::INVALID`] → root, times before the epoch → missing.
pub fn batch_from_span_data<'a>(spans: &'a [SpanData], resource: &'a SdkResource) -> SpanBatch<'a> {
    let mut scope_spans: Vec<ScopeSpans<'a>> = Vec::new();
    let mut current: Option<&'a InstrumentationScope> = None;
    for data in spans {
        let scope = &data.instrumentation_scope;
        let same = current.is_some_and(|c| std::ptr::eq(c, scope) || c == scope);
        if !same || scope_spans.is_empty() {
            scope_spans.push(ScopeSpans {
                scope: convert_scope(scope),
                spans: Vec::new(),
            });
            current = Some(scope);
        }
        if let Some(group) = scope_spans.last_mut() {
            group.spans.push(convert_span(data));
        }
    }
    SpanBatch {
        resource_spans: vec![ResourceSpans {
            resource: Resource {
                attributes: Attributes::from_pairs(
                    resource
                        .iter()
                        .map(|(k, v)| (Cow::Borrowed(k.as_str()), value(v))),
                ),
            },
            scope_spans,
        }],
    }
}

fn convert_scope(scope: &InstrumentationScope) -> Scope<'_> {
    Scope {
        name: Cow::Borrowed(scope.name()),
        version: scope.version().filter(|v| !v.is_empty()).map(Cow::Borrowed),
        attributes: attributes(scope.attributes()),
    }
}

fn convert_span(data: &SpanData) -> Span<'_> {
    let (status_code, status_message) = match &data.status {
        Status::Unset => (StatusCode::Unset, None),
        Status::Ok => (StatusCode::Ok, None),
        Status::Error { description } => (
            StatusCode::Error,
            (!description.is_empty()).then(|| Cow::Borrowed(description.as_ref())),
        ),
    };
    let ctx = &data.span_context;
    Span {
        trace_id: Cow::Owned(hex(&ctx.trace_id().to_bytes())),
        span_id: Cow::Owned(hex(&ctx.span_id().to_bytes())),
        parent_span_id: (data.parent_span_id != SpanId::INVALID)
            .then(|| Cow::Owned(hex(&data.parent_span_id.to_bytes()))),
        name: Cow::Borrowed(data.name.as_ref()),
        start_time_unix_ms: time_ms(data.start_time),
        end_time_unix_ms: time_ms(data.end_time),
        start_time_unix_nano: time_nanos(data.start_time),
        end_time_unix_nano: time_nanos(data.end_time),
        status_code,
        status_message,
        attributes: attributes(data.attributes.iter()),
        events: data
            .events
            .iter()
            .map(|ev| SpanEvent {
                name: Cow::Borrowed(ev.name.as_ref()),
                time_unix_ms: time_ms(ev.timestamp),
                attributes: ev
                    .attributes
                    .iter()
                    .map(|kv| (Cow::Borrowed(kv.key.as_str()), value(&kv.value)))
                    .collect(),
            })
            .collect(),
    }
}

/// The exporter's `to_nanos` (times before the epoch become 0, i.e. absent), then ms.
fn time_nanos(t: SystemTime) -> Option<u64> {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
        .filter(|&ns| ns != 0)
}

fn time_ms(t: SystemTime) -> Option<i64> {
    let ns = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos_to_ms(ns)
}

fn attributes<'a>(kvs: impl Iterator<Item = &'a KeyValue>) -> Attributes<'a> {
    Attributes::from_pairs(kvs.map(|kv| (Cow::Borrowed(kv.key.as_str()), value(&kv.value))))
}

/// An `opentelemetry::Value` as the server sees the `AnyValue` the exporter makes of it.
pub(crate) fn value(v: &Value) -> AttrValue<'_> {
    match v {
        Value::Bool(b) => AttrValue::Bool(*b),
        Value::I64(i) => AttrValue::Number(*i as f64),
        Value::F64(f) => AttrValue::Number(*f),
        Value::String(s) => AttrValue::Str(Cow::Borrowed(s.as_str())),
        Value::Array(array) => match array {
            Array::Bool(items) => array_value(items, |b| AttrValue::Bool(*b)),
            Array::I64(items) => array_value(items, |i| AttrValue::Number(*i as f64)),
            Array::F64(items) => array_value(items, |f| AttrValue::Number(*f)),
            Array::String(items) => {
                array_value(items, |s| AttrValue::Str(Cow::Borrowed(s.as_str())))
            }
            // Variants added after 0.33 (the official exporter panics on them).
            _ => AttrValue::Str(Cow::Owned(v.to_string())),
        },
        _ => AttrValue::Str(Cow::Owned(v.to_string())),
    }
}

fn array_value<'a, T>(items: &'a [T], f: impl Fn(&'a T) -> AttrValue<'a>) -> AttrValue<'a> {
    if items.is_empty() {
        AttrValue::Str(Cow::Borrowed(EMPTY_ARRAY_VALUE))
    } else {
        AttrValue::Array(items.iter().map(f).collect())
    }
}
