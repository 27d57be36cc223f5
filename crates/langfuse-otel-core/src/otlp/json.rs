//! Tolerant OTLP/JSON decoding into a [`SpanBatch`].
//!
//! Accepts what the Langfuse server accepts: ids as given (hex strings kept verbatim, byte
//! arrays hex-encoded), 64-bit integers as decimal strings or JSON numbers, `"NaN"` doubles,
//! omitted empty lists, `kvlistValue`/`bytesValue` attributes (rendered as the JSON text of the
//! value, like the server).

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::DecodeError;
use crate::span::{
    Attributes, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanBatch, SpanEvent, StatusCode,
};
use crate::value::{AttrValue, js_json_stringify, js_string_to_number};

/// Decodes an OTLP/JSON `ExportTraceServiceRequest`.
pub fn decode_json(bytes: &[u8]) -> Result<SpanBatch<'static>, DecodeError> {
    let root: Value =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
    batch_from_json(&root)
}

/// Converts a parsed OTLP/JSON export.
pub fn batch_from_json(root: &Value) -> Result<SpanBatch<'static>, DecodeError> {
    let root = root
        .as_object()
        .ok_or_else(|| DecodeError::Shape("the export is not a JSON object".into()))?;
    let mut batch = SpanBatch::default();
    for (ri, rs) in list(root, "resourceSpans", "resourceSpans")?
        .iter()
        .enumerate()
    {
        let at = format!("resourceSpans[{ri}]");
        let rs = object(rs, &at)?;
        let resource = match rs.get("resource") {
            Some(Value::Object(r)) => Resource {
                attributes: attributes(r, &format!("{at}.resource"))?,
            },
            _ => Resource::default(),
        };
        let mut group = ResourceSpans {
            resource,
            scope_spans: Vec::new(),
        };
        for (si, ss) in list(rs, "scopeSpans", &at)?.iter().enumerate() {
            let at = format!("{at}.scopeSpans[{si}]");
            let ss = object(ss, &at)?;
            let scope = match ss.get("scope") {
                Some(Value::Object(s)) => Scope {
                    name: Cow::Owned(string(s.get("name")).unwrap_or_default()),
                    version: string(s.get("version"))
                        .filter(|v| !v.is_empty())
                        .map(Cow::Owned),
                    attributes: attributes(s, &format!("{at}.scope"))?,
                },
                _ => Scope::default(),
            };
            let mut spans = Vec::new();
            for (pi, sp) in list(ss, "spans", &at)?.iter().enumerate() {
                let at = format!("{at}.spans[{pi}]");
                spans.push(span(object(sp, &at)?, &at)?);
            }
            group.scope_spans.push(ScopeSpans { scope, spans });
        }
        batch.resource_spans.push(group);
    }
    Ok(batch)
}

/// Why the decoder refuses one span of an export (the span is `value`, found at `at`), if it
/// does: the span-level rules of [`batch_from_json`].
pub(super) fn span_problem(value: &Value, at: &str) -> Option<DecodeError> {
    object(value, at).and_then(|obj| span(obj, at)).err()
}

pub(super) fn object<'v>(
    value: &'v Value,
    at: &str,
) -> Result<&'v Map<String, Value>, DecodeError> {
    value
        .as_object()
        .ok_or_else(|| DecodeError::Shape(format!("{at} is not an object")))
}

/// A list field: absent or `null` is empty; anything but an array is an error (as on the server).
pub(super) fn list<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<&'v [Value], DecodeError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(DecodeError::Shape(format!("{at}.{key} is not an array"))),
    }
}

pub(super) fn string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(js_json_stringify(other)),
    }
}

pub(super) fn attributes(
    obj: &Map<String, Value>,
    at: &str,
) -> Result<Attributes<'static>, DecodeError> {
    Ok(Attributes::from_pairs(key_values(obj, at)?))
}

pub(super) fn key_values(
    obj: &Map<String, Value>,
    at: &str,
) -> Result<Vec<(Cow<'static, str>, AttrValue<'static>)>, DecodeError> {
    let mut out = Vec::new();
    for kv in list(obj, "attributes", at)? {
        let Some(kv) = kv.as_object() else { continue };
        let Some(key) = string(kv.get("key")) else {
            continue;
        };
        out.push((Cow::Owned(key), any_value(kv.get("value"))));
    }
    Ok(out)
}

/// Converts an OTLP/JSON `AnyValue` like the server's `convertValueToPlainJavascript`.
pub fn any_value(value: Option<&Value>) -> AttrValue<'static> {
    let Some(Value::Object(v)) = value else {
        return AttrValue::Str(Cow::Owned(
            value.map_or_else(|| "undefined".to_owned(), js_json_stringify),
        ));
    };
    if let Some(s) = v.get("stringValue").filter(|s| !s.is_null()) {
        return match s {
            Value::String(s) => AttrValue::Str(Cow::Owned(s.clone())),
            other => AttrValue::Str(Cow::Owned(js_json_stringify(other))),
        };
    }
    if let Some(d) = v.get("doubleValue").filter(|d| !d.is_null()) {
        return match d {
            Value::Number(n) => AttrValue::Number(n.as_f64().unwrap_or(f64::NAN)),
            // A string double is `Number()`-parsed; "NaN", "Infinity" and the like stay strings.
            Value::String(s) => match js_string_to_number(s) {
                Some(n) if n.is_finite() => AttrValue::Number(n),
                _ => AttrValue::Str(Cow::Owned(s.clone())),
            },
            other => AttrValue::Str(Cow::Owned(js_json_stringify(other))),
        };
    }
    if let Some(b) = v.get("boolValue").filter(|b| !b.is_null()) {
        return AttrValue::Bool(matches!(b, Value::Bool(true)));
    }
    if let Some(Value::Object(arr)) = v.get("arrayValue")
        && let Some(Value::Array(items)) = arr.get("values")
    {
        return AttrValue::Array(items.iter().map(|i| any_value(Some(i))).collect());
    }
    if let Some(i) = v.get("intValue").filter(|i| !i.is_null()) {
        return match i {
            Value::Number(n) => AttrValue::Number(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => AttrValue::Number(js_string_to_number(s).unwrap_or(f64::NAN)),
            Value::Object(long) => AttrValue::Number(long_value(long)),
            other => AttrValue::Str(Cow::Owned(js_json_stringify(other))),
        };
    }
    AttrValue::Str(Cow::Owned(js_json_stringify(&Value::Object(v.clone()))))
}

/// A protobufjs `Long` `{low, high}` as a JavaScript number.
fn long_value(long: &Map<String, Value>) -> f64 {
    let part = |k: &str| long.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let (low, high) = (part("low"), part("high"));
    if high == 0.0 {
        low
    } else if high == -1.0 && low == -1.0 {
        -1.0
    } else {
        high * 4_294_967_296.0 + low
    }
}

/// Span ids as the server stores them: strings verbatim, byte arrays as lowercase hex.
pub(super) fn id(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Array(bytes) => Some(hex_bytes(bytes)),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("Buffer") => {
            match o.get("data") {
                Some(Value::Array(bytes)) => Some(hex_bytes(bytes)),
                _ => None,
            }
        }
        _ => None,
    }
}

fn hex_bytes(bytes: &[Value]) -> String {
    bytes
        .iter()
        .map(|b| format!("{:02x}", b.as_u64().unwrap_or(0) & 0xff))
        .collect()
}

/// Nanosecond timestamp → Unix ms as the server computes it: decimal strings with integer
/// division (truncation), JSON numbers as doubles divided by 10^6, `Long` objects.
pub fn timestamp_ms(value: Option<&Value>) -> Option<i64> {
    let ms = match value? {
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let ns: u128 = t.parse().ok()?;
            i64::try_from(ns / 1_000_000).ok()?
        }
        Value::Number(n) => {
            let ms = n.as_f64()? / 1e6;
            if !ms.is_finite() {
                return None;
            }
            ms.trunc() as i64
        }
        Value::Object(long) => {
            let part = |k: &str| long.get(k).and_then(Value::as_i64);
            let (high, low) = (part("high")?, part("low")?);
            let ns = (high << 32) | (low & 0xffff_ffff);
            ns / 1_000_000
        }
        _ => return None,
    };
    (ms.abs() <= crate::time::MAX_JS_DATE_MS).then_some(ms)
}

/// The exact nanoseconds of a decimal-string or integer timestamp (other forms: `None`).
pub(super) fn timestamp_nanos(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::String(s) => s.trim().parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
    .filter(|&ns| ns != 0)
}

fn span(obj: &Map<String, Value>, at: &str) -> Result<Span<'static>, DecodeError> {
    let trace_id = id(obj.get("traceId"))
        .ok_or_else(|| DecodeError::Shape(format!("{at}: traceId:absent")))?;
    let span_id =
        id(obj.get("spanId")).ok_or_else(|| DecodeError::Shape(format!("{at}: spanId:absent")))?;
    let parent_span_id = match obj.get("parentSpanId") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            id(Some(v))
                .ok_or_else(|| DecodeError::Shape(format!("{at}: parentSpanId:not_an_id")))?,
        ),
    };
    let (status_code, status_message) = match obj.get("status") {
        Some(Value::Object(st)) => (
            st.get("code")
                .and_then(|c| c.as_i64().or_else(|| c.as_str()?.parse().ok()))
                .map_or(StatusCode::Unset, StatusCode::from_code),
            string(st.get("message")).map(Cow::Owned),
        ),
        _ => (StatusCode::Unset, None),
    };
    let mut events = Vec::new();
    for ev in list(obj, "events", at)? {
        let Some(ev) = ev.as_object() else { continue };
        events.push(SpanEvent {
            name: Cow::Owned(string(ev.get("name")).unwrap_or_default()),
            time_unix_ms: timestamp_ms(ev.get("timeUnixNano")),
            attributes: key_values(ev, at)?,
        });
    }
    Ok(Span {
        trace_id: Cow::Owned(trace_id),
        span_id: Cow::Owned(span_id),
        parent_span_id: parent_span_id.map(Cow::Owned),
        name: Cow::Owned(string(obj.get("name")).unwrap_or_default()),
        start_time_unix_ms: timestamp_ms(obj.get("startTimeUnixNano")),
        end_time_unix_ms: timestamp_ms(obj.get("endTimeUnixNano")),
        start_time_unix_nano: timestamp_nanos(obj.get("startTimeUnixNano")),
        end_time_unix_nano: timestamp_nanos(obj.get("endTimeUnixNano")),
        status_code,
        status_message,
        attributes: attributes(obj, at)?,
        events,
    })
}
