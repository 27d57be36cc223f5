//! OTLP protobuf decoding into a [`SpanBatch`], mirroring what the Langfuse server sees.
//!
//! The server decodes protobuf bodies with protobufjs and converts them with
//! `toObject({longs: String})` before applying its OTLP/JSON rules. Consequences reproduced
//! here:
//!
//! * proto3 default values are absent: an empty scope version, status message or parent span
//!   id is `None`, a zero timestamp is missing (`None`);
//! * ids are byte buffers, rendered as lowercase hex;
//! * 64-bit integers become decimal strings and then JavaScript numbers (`i64 as f64`);
//! * an `AnyValue` that is neither string, bool, int, double nor a non-empty array becomes the
//!   `JSON.stringify` text of the whole `toObject` wrapper: `kvlistValue` as
//!   `{"kvlistValue":{"values":[{"key":"k","value":{"stringValue":"v"}}]}}` (nested
//!   `intValue`s as strings), `bytesValue` as `{"bytesValue":{"type":"Buffer","data":[1,2]}}`
//!   (protobufjs keeps bytes as a Node `Buffer` by default, whose `toJSON` gives that form),
//!   an empty array as `{"arrayValue":{}}` (empty repeated fields are omitted) and an empty
//!   `AnyValue` (or one holding only the newer `string_value_strindex`) as `{}`.

use std::borrow::Cow;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1 as pb;
use prost::Message;

use super::{DecodeError, EMPTY_ARRAY_VALUE, hex, nanos_to_ms};
use crate::span::{
    Attributes, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanBatch, SpanEvent, StatusCode,
};
use crate::value::{AttrValue, js_number_to_string, write_json_string};

/// Decodes an OTLP protobuf `ExportTraceServiceRequest` (already decompressed).
///
/// Fails with [`DecodeError::Protobuf`] when the bytes are not a valid message and with
/// [`DecodeError::Shape`] when a span has no trace or span id (the server rejects such
/// exports as a whole).
pub fn decode_protobuf(bytes: &[u8]) -> Result<SpanBatch<'static>, DecodeError> {
    let req = ExportTraceServiceRequest::decode(bytes)
        .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    validate_ids(&req)?;
    Ok(batch_from_request(req))
}

/// The server's id check (`validateOtelSpanIds`): an empty id is absent after `toObject`.
fn validate_ids(req: &ExportTraceServiceRequest) -> Result<(), DecodeError> {
    for (ri, rs) in req.resource_spans.iter().enumerate() {
        for (si, ss) in rs.scope_spans.iter().enumerate() {
            for (pi, span) in ss.spans.iter().enumerate() {
                if let Some(problem) = id_problem(span) {
                    return Err(DecodeError::Shape(format!(
                        "resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]: {problem}"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Why the server refuses a span's ids (`traceId:absent`, `spanId:absent`), if it does.
pub(super) fn id_problem(span: &pb::Span) -> Option<&'static str> {
    if span.trace_id.is_empty() {
        Some("traceId:absent")
    } else if span.span_id.is_empty() {
        Some("spanId:absent")
    } else {
        None
    }
}

/// Converts a decoded request, moving its strings into the batch (no copies).
///
/// Never fails: a span without trace or span id gets an empty id (use [`decode_protobuf`] to
/// reject such exports like the server does).
pub fn batch_from_request(req: ExportTraceServiceRequest) -> SpanBatch<'static> {
    SpanBatch {
        resource_spans: req.resource_spans.into_iter().map(resource_spans).collect(),
    }
}

fn resource_spans(rs: pb::ResourceSpans) -> ResourceSpans<'static> {
    ResourceSpans {
        resource: Resource {
            attributes: rs
                .resource
                .map_or_else(Attributes::new, |r| attributes(r.attributes)),
        },
        scope_spans: rs.scope_spans.into_iter().map(scope_spans).collect(),
    }
}

fn scope_spans(ss: pb::ScopeSpans) -> ScopeSpans<'static> {
    let scope = match ss.scope {
        Some(s) => Scope {
            name: Cow::Owned(s.name),
            version: non_empty(s.version),
            attributes: attributes(s.attributes),
        },
        None => Scope::default(),
    };
    ScopeSpans {
        scope,
        spans: ss.spans.into_iter().map(span).collect(),
    }
}

fn span(span: pb::Span) -> Span<'static> {
    let (status_code, status_message) = match span.status {
        Some(st) => (
            StatusCode::from_code(i64::from(st.code)),
            non_empty(st.message),
        ),
        None => (StatusCode::Unset, None),
    };
    Span {
        trace_id: Cow::Owned(hex(&span.trace_id)),
        span_id: Cow::Owned(hex(&span.span_id)),
        parent_span_id: (!span.parent_span_id.is_empty())
            .then(|| Cow::Owned(hex(&span.parent_span_id))),
        name: Cow::Owned(span.name),
        start_time_unix_ms: nanos_to_ms(span.start_time_unix_nano),
        end_time_unix_ms: nanos_to_ms(span.end_time_unix_nano),
        start_time_unix_nano: (span.start_time_unix_nano != 0).then_some(span.start_time_unix_nano),
        end_time_unix_nano: (span.end_time_unix_nano != 0).then_some(span.end_time_unix_nano),
        status_code,
        status_message,
        attributes: attributes(span.attributes),
        events: span
            .events
            .into_iter()
            .map(|ev| SpanEvent {
                name: Cow::Owned(ev.name),
                time_unix_ms: nanos_to_ms(ev.time_unix_nano),
                attributes: key_values(ev.attributes),
            })
            .collect(),
    }
}

pub(super) fn non_empty(s: String) -> Option<Cow<'static, str>> {
    (!s.is_empty()).then_some(Cow::Owned(s))
}

pub(super) fn attributes(kvs: Vec<KeyValue>) -> Attributes<'static> {
    Attributes::from_pairs(key_values(kvs))
}

/// Key/value pairs in wire order. An empty key is absent after `toObject`; like the OTLP/JSON
/// decoder, such entries are skipped.
pub(super) fn key_values(kvs: Vec<KeyValue>) -> Vec<(Cow<'static, str>, AttrValue<'static>)> {
    kvs.into_iter()
        .filter(|kv| !kv.key.is_empty())
        .map(|kv| (Cow::Owned(kv.key), attr_value(kv.value)))
        .collect()
}

/// Converts a protobuf `AnyValue` like the server's `convertValueToPlainJavascript` applied to
/// its `toObject` form. `None` (a `KeyValue` without value) is JavaScript `undefined`, rendered
/// as the OTLP/JSON decoder does.
pub(super) fn attr_value(value: Option<AnyValue>) -> AttrValue<'static> {
    let Some(value) = value else {
        return AttrValue::Str(Cow::Borrowed("undefined"));
    };
    match value.value {
        Some(any_value::Value::StringValue(s)) => AttrValue::Str(Cow::Owned(s)),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(b),
        Some(any_value::Value::IntValue(i)) => AttrValue::Number(i as f64),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Number(d),
        Some(any_value::Value::ArrayValue(arr)) if arr.values.is_empty() => {
            AttrValue::Str(Cow::Borrowed(EMPTY_ARRAY_VALUE))
        }
        Some(any_value::Value::ArrayValue(arr)) => AttrValue::Array(
            arr.values
                .into_iter()
                .map(|v| attr_value(Some(v)))
                .collect(),
        ),
        other => {
            let mut out = String::new();
            write_any_value_inner(&mut out, other.as_ref());
            AttrValue::Str(Cow::Owned(out))
        }
    }
}

/// `JSON.stringify` of the protobufjs `toObject({longs: String})` form of an `AnyValue`.
pub(crate) fn write_any_value(out: &mut String, value: &AnyValue) {
    write_any_value_inner(out, value.value.as_ref());
}

fn write_any_value_inner(out: &mut String, value: Option<&any_value::Value>) {
    out.push('{');
    match value {
        // `string_value_strindex` (field 8) is newer than the server's OTLP proto (v1.5.0):
        // protobufjs skips it as an unknown field, leaving an empty `AnyValue`.
        None | Some(any_value::Value::StringValueStrindex(_)) => {}
        Some(any_value::Value::StringValue(s)) => {
            out.push_str(r#""stringValue":"#);
            write_json_string(out, s);
        }
        Some(any_value::Value::BoolValue(b)) => {
            out.push_str(if *b {
                r#""boolValue":true"#
            } else {
                r#""boolValue":false"#
            });
        }
        Some(any_value::Value::IntValue(i)) => {
            out.push_str(r#""intValue":""#);
            out.push_str(&i.to_string());
            out.push('"');
        }
        Some(any_value::Value::DoubleValue(d)) => {
            out.push_str(r#""doubleValue":"#);
            if d.is_finite() {
                out.push_str(&js_number_to_string(*d));
            } else {
                out.push_str("null");
            }
        }
        Some(any_value::Value::ArrayValue(arr)) => {
            out.push_str(r#""arrayValue":{"#);
            if !arr.values.is_empty() {
                out.push_str(r#""values":["#);
                for (i, v) in arr.values.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_any_value(out, v);
                }
                out.push(']');
            }
            out.push('}');
        }
        Some(any_value::Value::KvlistValue(list)) => {
            out.push_str(r#""kvlistValue":{"#);
            if !list.values.is_empty() {
                out.push_str(r#""values":["#);
                for (i, kv) in list.values.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_key_value(out, kv);
                }
                out.push(']');
            }
            out.push('}');
        }
        Some(any_value::Value::BytesValue(bytes)) => {
            out.push_str(r#""bytesValue":{"type":"Buffer","data":["#);
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&b.to_string());
            }
            out.push_str("]}");
        }
    }
    out.push('}');
}

fn write_key_value(out: &mut String, kv: &KeyValue) {
    out.push('{');
    let mut first = true;
    if !kv.key.is_empty() {
        out.push_str(r#""key":"#);
        write_json_string(out, &kv.key);
        first = false;
    }
    if let Some(v) = &kv.value {
        if !first {
            out.push(',');
        }
        out.push_str(r#""value":"#);
        write_any_value(out, v);
    }
    out.push('}');
}

/// The attributes among `kvs` that can bear on trace-level fields, converted (the others are
/// not read, so not converted).
pub(crate) fn trace_level_attributes(kvs: &[KeyValue]) -> Attributes<'static> {
    Attributes::from_pairs(
        kvs.iter()
            .filter(|kv| super::wire::is_trace_level_key(kv.key.as_bytes()))
            .map(|kv| (Cow::Owned(kv.key.clone()), attr_value(kv.value.clone()))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn any(v: any_value::Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(any(v)),
            ..Default::default()
        }
    }

    #[test]
    fn values_convert_like_the_server() {
        use any_value::Value as V;
        assert_eq!(
            attr_value(Some(any(V::IntValue(i64::MAX)))),
            AttrValue::Number(9_223_372_036_854_775_807.0)
        );
        assert_eq!(
            attr_value(Some(any(V::ArrayValue(ArrayValue { values: vec![] })))),
            AttrValue::str(r#"{"arrayValue":{}}"#)
        );
        assert_eq!(
            attr_value(Some(AnyValue { value: None })),
            AttrValue::str("{}")
        );
        assert_eq!(
            attr_value(Some(any(V::BytesValue(vec![0xde, 0xad])))),
            AttrValue::str(r#"{"bytesValue":{"type":"Buffer","data":[222,173]}}"#)
        );
        let list = KeyValueList {
            values: vec![
                kv("n", V::IntValue(5)),
                kv("d", V::DoubleValue(1.0)),
                kv("s", V::StringValue("x\"".into())),
                KeyValue::default(),
            ],
        };
        assert_eq!(
            attr_value(Some(any(V::KvlistValue(list)))),
            AttrValue::str(
                r#"{"kvlistValue":{"values":[{"key":"n","value":{"intValue":"5"}},{"key":"d","value":{"doubleValue":1}},{"key":"s","value":{"stringValue":"x\""}},{}]}}"#
            )
        );
    }

    #[test]
    fn proto3_defaults_are_absent() {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![pb::ResourceSpans {
                scope_spans: vec![pb::ScopeSpans {
                    scope: Some(Default::default()),
                    spans: vec![pb::Span {
                        trace_id: vec![0xab; 16],
                        span_id: vec![0x0f; 8],
                        status: Some(pb::Status {
                            code: 2,
                            message: String::new(),
                        }),
                        start_time_unix_nano: 1_767_258_000_123_999_999,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let batch = decode_protobuf(&req.encode_to_vec()).unwrap();
        let rs = &batch.resource_spans[0];
        let ss = &rs.scope_spans[0];
        assert_eq!(ss.scope.version, None);
        let span = &ss.spans[0];
        assert_eq!(span.trace_id, "ab".repeat(16));
        assert_eq!(span.span_id, "0f0f0f0f0f0f0f0f");
        assert_eq!(span.parent_span_id, None);
        assert_eq!(span.status_code, StatusCode::Error);
        assert_eq!(span.status_message, None);
        assert_eq!(span.start_time_unix_ms, Some(1_767_258_000_123));
        assert_eq!(span.end_time_unix_ms, None);
    }

    #[test]
    fn missing_ids_and_garbage_are_errors() {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![pb::ResourceSpans {
                scope_spans: vec![pb::ScopeSpans {
                    spans: vec![pb::Span {
                        trace_id: vec![1; 16],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert!(matches!(
            decode_protobuf(&req.encode_to_vec()),
            Err(DecodeError::Shape(m)) if m.contains("spanId:absent")
        ));
        assert!(matches!(
            decode_protobuf(b"\x0a\xff\xff\xff"),
            Err(DecodeError::Protobuf(_))
        ));
    }
}
