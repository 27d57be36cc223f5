//! OTLP logs decoding (`ExportLogsServiceRequest`, protobuf and OTLP/JSON) into a
//! [`LogBatch`]. Values are converted like span attributes (see [`super::proto`] and
//! [`super::json`]), so the agent rules read a log attribute exactly as they would read the same
//! attribute on a span.
//!
//! Unlike spans, log records have no mandatory ids: a record without trace or span id is
//! ordinary (most CLI events are such records).

use std::borrow::Cow;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1 as pb;
use prost::Message;
use serde_json::{Map, Value};

use super::{DecodeError, Format, hex, json, proto};
use crate::log::{LogBatch, LogRecord, ResourceLogs, ScopeLogs};
use crate::span::{Resource, Scope};

/// Decodes an OTLP logs export of a declared format (no sniffing).
///
/// ```
/// use langfuse_otel_core::otlp::{self, Format};
///
/// let body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
///   {"timeUnixNano":"1767258000000000000","body":{"stringValue":"hello"},
///    "attributes":[{"key":"duration_ms","value":{"stringValue":"12"}}]}]}]}]}"#;
/// let batch = otlp::decode_logs_as(Format::Json, body).unwrap();
/// assert_eq!(batch.record_count(), 1);
/// let record = &batch.resource_logs[0].scope_logs[0].records[0];
/// assert_eq!(record.time_ms(), Some(1_767_258_000_000));
/// assert!(otlp::decode_logs_as(Format::Protobuf, b"\x0a\xff\xff").is_err());
/// ```
pub fn decode_logs_as(format: Format, bytes: &[u8]) -> Result<LogBatch, DecodeError> {
    match format {
        Format::Protobuf => decode_logs_protobuf(bytes),
        Format::Json => decode_logs_json(bytes),
    }
}

/// Decodes an OTLP protobuf `ExportLogsServiceRequest` (already decompressed).
pub fn decode_logs_protobuf(bytes: &[u8]) -> Result<LogBatch, DecodeError> {
    let req = ExportLogsServiceRequest::decode(bytes)
        .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    Ok(log_batch_from_request(req))
}

/// Converts a decoded logs request, moving its strings into the batch.
pub fn log_batch_from_request(req: ExportLogsServiceRequest) -> LogBatch {
    LogBatch {
        resource_logs: req
            .resource_logs
            .into_iter()
            .map(|rl| ResourceLogs {
                resource: Resource {
                    attributes: rl
                        .resource
                        .map_or_else(Default::default, |r| proto::attributes(r.attributes)),
                },
                scope_logs: rl
                    .scope_logs
                    .into_iter()
                    .map(|sl| ScopeLogs {
                        scope: sl.scope.map_or_else(Scope::default, |s| Scope {
                            name: Cow::Owned(s.name),
                            version: proto::non_empty(s.version),
                            attributes: proto::attributes(s.attributes),
                        }),
                        records: sl.log_records.into_iter().map(proto_record).collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn proto_record(r: pb::LogRecord) -> LogRecord {
    let id =
        |bytes: &[u8]| (!bytes.is_empty() && bytes.iter().any(|b| *b != 0)).then(|| hex(bytes));
    LogRecord {
        time_unix_nano: (r.time_unix_nano != 0).then_some(r.time_unix_nano),
        observed_time_unix_nano: (r.observed_time_unix_nano != 0)
            .then_some(r.observed_time_unix_nano),
        severity_number: r.severity_number,
        severity_text: (!r.severity_text.is_empty()).then_some(r.severity_text),
        body: r
            .body
            .filter(|b| b.value.is_some())
            .map(|b| proto::attr_value(Some(b))),
        attributes: proto::attributes(r.attributes),
        trace_id: id(&r.trace_id),
        span_id: id(&r.span_id),
        event_name: (!r.event_name.is_empty()).then_some(r.event_name),
    }
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest`.
pub fn decode_logs_json(bytes: &[u8]) -> Result<LogBatch, DecodeError> {
    let root: Value =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
    let root = root
        .as_object()
        .ok_or_else(|| DecodeError::Shape("the export is not a JSON object".into()))?;
    let mut batch = LogBatch::default();
    for (ri, rl) in json::list(root, "resourceLogs", "resourceLogs")?
        .iter()
        .enumerate()
    {
        let at = format!("resourceLogs[{ri}]");
        let rl = json::object(rl, &at)?;
        let resource = match rl.get("resource") {
            Some(Value::Object(r)) => Resource {
                attributes: json::attributes(r, &format!("{at}.resource"))?,
            },
            _ => Resource::default(),
        };
        let mut group = ResourceLogs {
            resource,
            scope_logs: Vec::new(),
        };
        for (si, sl) in json::list(rl, "scopeLogs", &at)?.iter().enumerate() {
            let at = format!("{at}.scopeLogs[{si}]");
            let sl = json::object(sl, &at)?;
            let scope = match sl.get("scope") {
                Some(Value::Object(s)) => Scope {
                    name: Cow::Owned(json::string(s.get("name")).unwrap_or_default()),
                    version: json::string(s.get("version"))
                        .filter(|v| !v.is_empty())
                        .map(Cow::Owned),
                    attributes: json::attributes(s, &format!("{at}.scope"))?,
                },
                _ => Scope::default(),
            };
            let mut records = Vec::new();
            for (li, lr) in json::list(sl, "logRecords", &at)?.iter().enumerate() {
                let at = format!("{at}.logRecords[{li}]");
                records.push(json_record(json::object(lr, &at)?, &at)?);
            }
            group.scope_logs.push(ScopeLogs { scope, records });
        }
        batch.resource_logs.push(group);
    }
    Ok(batch)
}

fn json_record(obj: &Map<String, Value>, at: &str) -> Result<LogRecord, DecodeError> {
    let id = |key: &str| {
        json::id(obj.get(key)).filter(|s| !s.is_empty() && s.bytes().any(|b| b != b'0'))
    };
    let severity_number = match obj.get("severityNumber") {
        Some(Value::Number(n)) => n.as_i64().and_then(|n| i32::try_from(n).ok()).unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or_else(|_| severity_by_name(s)),
        _ => 0,
    };
    Ok(LogRecord {
        time_unix_nano: json::timestamp_nanos(obj.get("timeUnixNano")),
        observed_time_unix_nano: json::timestamp_nanos(obj.get("observedTimeUnixNano")),
        severity_number,
        severity_text: json::string(obj.get("severityText")).filter(|s| !s.is_empty()),
        body: match obj.get("body") {
            Some(Value::Object(b)) if !b.is_empty() => Some(json::any_value(obj.get("body"))),
            _ => None,
        },
        attributes: json::attributes(obj, at)?,
        trace_id: id("traceId"),
        span_id: id("spanId"),
        event_name: json::string(obj.get("eventName")).filter(|s| !s.is_empty()),
    })
}

/// An OTLP/JSON enum given by name (`"SEVERITY_NUMBER_WARN"`).
fn severity_by_name(name: &str) -> i32 {
    const NAMES: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    let Some(rest) = name.strip_prefix("SEVERITY_NUMBER_") else {
        return 0;
    };
    let (base, n) = rest.split_at(
        rest.find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len()),
    );
    let Some(i) = NAMES.iter().position(|b| *b == base) else {
        return 0;
    };
    let offset: i32 = if n.is_empty() {
        1
    } else {
        n.parse().unwrap_or(1)
    };
    (i as i32) * 4 + offset.clamp(1, 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::AttrValue;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

    fn request() -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![pb::ResourceLogs {
                scope_logs: vec![pb::ScopeLogs {
                    log_records: vec![pb::LogRecord {
                        observed_time_unix_nano: 1_767_258_000_123_000_000,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        trace_id: vec![0xab; 16],
                        span_id: vec![0; 8],
                        attributes: vec![KeyValue {
                            key: "n".into(),
                            value: Some(AnyValue {
                                value: Some(any_value::Value::IntValue(7)),
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn protobuf_and_json_give_the_same_batch() {
        let req = request();
        let from_proto = decode_logs_protobuf(&req.encode_to_vec()).unwrap();
        let record = &from_proto.resource_logs[0].scope_logs[0].records[0];
        assert_eq!(record.time_ms(), Some(1_767_258_000_123));
        assert_eq!(record.trace_id.as_deref(), Some(&*"ab".repeat(16)));
        // An all-zero span id is "no span".
        assert_eq!(record.span_id, None);
        assert_eq!(record.body, None);
        assert_eq!(record.attributes.get("n"), Some(&AttrValue::Number(7.0)));
        let json = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{
            "observedTimeUnixNano":"1767258000123000000","severityNumber":"SEVERITY_NUMBER_INFO",
            "severityText":"INFO","traceId":"abababababababababababababababab","spanId":"0000000000000000",
            "attributes":[{"key":"n","value":{"intValue":"7"}}]}]}]}]}"#;
        let from_json = decode_logs_json(json).unwrap();
        assert_eq!(from_json, from_proto);
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        assert!(matches!(
            decode_logs_json(br#"{"resourceLogs":{}}"#),
            Err(DecodeError::Shape(_))
        ));
        assert!(matches!(decode_logs_json(b"{"), Err(DecodeError::Json(_))));
        assert!(matches!(
            decode_logs_protobuf(b"\x0a\xff\xff\xff"),
            Err(DecodeError::Protobuf(_))
        ));
        assert_eq!(severity_by_name("SEVERITY_NUMBER_ERROR2"), 18);
        assert_eq!(severity_by_name("nonsense"), 0);
    }
}
