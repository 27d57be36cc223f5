//! The receive path shared by the HTTP and gRPC listeners: bounded decompression, content
//! type, validation and counting. Pure functions over bytes (the fuzz target drives them).
//!
//! | input | answer |
//! |---|---|
//! | body over `max_body_bytes` | 413 / `RESOURCE_EXHAUSTED`… see [`ReceiveError`] |
//! | decompressed body over `max_decompressed_bytes` (gzip bombs) | 413, memory bounded by the limit |
//! | `Content-Encoding` other than gzip/identity, `Content-Type` other than protobuf/JSON | 415 |
//! | undecodable protobuf, JSON, gzip | 400 with the decoder's message |
//! | an OTLP export with spans the forwarder's decoder refuses (an empty id, …) | the rest kept and stored without them, `partial_success` in the answer; 400 when none is left |
//! | an ingestion event the record model does not read (unknown type, numeric `body.id`, …) | 400 for that event in the 207 answer; the others stored as sent |
//!
//! OTLP bodies are checked with the decoder the forwarder uses, in the format the content type
//! declares ([`otlp::screen`], [`otlp::decode_as`]), and ingestion events with the record model
//! the local store and the forwarders read ([`IngestionEvent`]): what is acknowledged can be
//! delivered.

use bytes::Bytes;
use langfuse_otel_core::IngestionEvent;
use langfuse_otel_core::otlp::{self, Format, Rejected};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde::Deserialize;
use serde_json::Value;

use super::content_type::MediaType;
use crate::sources::body::{BodyError, BodyLimits, Encoding, decode_body};
use langfuse_spool::RecordKind;

/// Why a request was not accepted. Messages never contain credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The body as received is over the limit.
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body after decompression is over the limit.
    #[error("decompressed request body larger than {limit} bytes")]
    DecompressedTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Not a body this endpoint decodes.
    #[error("{0}")]
    Malformed(String),
    /// Unsupported `Content-Type` or `Content-Encoding`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Missing or wrong credentials.
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// The spool is full; retry after the delay.
    #[error("the bridge's spool is full, retry later")]
    SpoolFull,
    /// The bridge cannot store the request (an I/O failure).
    #[error("the bridge cannot store the request")]
    Unavailable,
}

impl ReceiveError {
    /// The metric label of the rejection reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ReceiveError::BodyTooLarge { .. } => "body_too_large",
            ReceiveError::DecompressedTooLarge { .. } => "decompressed_too_large",
            ReceiveError::Malformed(_) => "malformed",
            ReceiveError::UnsupportedMediaType(_) => "unsupported_media_type",
            ReceiveError::Unauthorized => "unauthorized",
            ReceiveError::SpoolFull => "spool_full",
            ReceiveError::Unavailable => "unavailable",
        }
    }

    /// The HTTP status of the answer.
    pub fn http_status(&self) -> u16 {
        match self {
            ReceiveError::BodyTooLarge { .. } | ReceiveError::DecompressedTooLarge { .. } => 413,
            ReceiveError::Malformed(_) => 400,
            ReceiveError::UnsupportedMediaType(_) => 415,
            ReceiveError::Unauthorized => 401,
            ReceiveError::SpoolFull => 429,
            ReceiveError::Unavailable => 503,
        }
    }
}

/// Body limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body as received.
    pub max_body_bytes: usize,
    /// Largest body after decompression.
    pub max_decompressed_bytes: usize,
}

/// Decompresses `body` per its `Content-Encoding` (`gzip` or identity) through the bounded
/// reader of `sources::body`: never more than `limits.max_decompressed_bytes + 1` bytes are held.
pub fn decompress(
    body: Bytes,
    encoding: Option<&str>,
    limits: Limits,
) -> Result<Bytes, ReceiveError> {
    let encoding = Encoding::from_header(encoding).map_err(from_body_error)?;
    let limits = BodyLimits {
        max_body_bytes: limits.max_body_bytes,
        max_decoded_bytes: limits.max_decompressed_bytes,
    };
    if encoding == Encoding::Identity {
        // No copy for the common case.
        if body.len() > limits.max_body_bytes {
            return Err(ReceiveError::BodyTooLarge {
                limit: limits.max_body_bytes,
            });
        }
        if body.len() > limits.max_decoded_bytes {
            return Err(ReceiveError::DecompressedTooLarge {
                limit: limits.max_decoded_bytes,
            });
        }
        return Ok(body);
    }
    decode_body(Vec::from(body), encoding, &limits)
        .map(Bytes::from)
        .map_err(from_body_error)
}

fn from_body_error(e: BodyError) -> ReceiveError {
    match e {
        BodyError::TooLarge { limit } => ReceiveError::BodyTooLarge { limit },
        BodyError::DecodedTooLarge { limit } => ReceiveError::DecompressedTooLarge { limit },
        BodyError::UnsupportedEncoding(_) => ReceiveError::UnsupportedMediaType(e.to_string()),
        other => ReceiveError::Malformed(other.to_string()),
    }
}

fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// The OTLP encoding named by a `Content-Type` (its media type exactly, parameters apart:
/// see `sources::content_type`).
pub fn otlp_kind(content_type: Option<&str>) -> Result<RecordKind, ReceiveError> {
    let ct = content_type.unwrap_or("");
    match MediaType::parse(ct) {
        Some(m) if m.is("application", "x-protobuf") || m.is("application", "protobuf") => {
            Ok(RecordKind::OtlpProtobuf)
        }
        Some(m) if m.is("application", "json") => Ok(RecordKind::OtlpJson),
        _ => Err(ReceiveError::UnsupportedMediaType(format!(
            "unsupported Content-Type '{}' (expected application/x-protobuf or application/json)",
            printable(ct)
        ))),
    }
}

/// The OTLP format of a record kind (`None` for the Langfuse API kinds).
pub fn otlp_format(kind: RecordKind) -> Option<Format> {
    match kind {
        RecordKind::OtlpProtobuf => Some(Format::Protobuf),
        RecordKind::OtlpJson => Some(Format::Json),
        _ => None,
    }
}

/// An OTLP export as it is stored: what the forwarder's decoder accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedExport {
    /// Spans kept.
    pub spans: u32,
    /// Spans refused (OTLP's partial success).
    pub rejected: Rejected,
    /// The body to store: as received, or re-encoded without the refused spans.
    pub body: Bytes,
}

/// Validates an uncompressed OTLP trace export with the forwarder's decoder, in the format its
/// kind declares: 400 when it does not decode or when every span is refused; else the spans
/// kept, those refused and the body to store.
pub fn check_otlp(kind: RecordKind, body: Bytes) -> Result<CheckedExport, ReceiveError> {
    let format = otlp_format(kind)
        .ok_or_else(|| ReceiveError::Malformed("not an OTLP trace export".into()))?;
    let screened =
        otlp::screen(format, &body).map_err(|e| ReceiveError::Malformed(e.to_string()))?;
    if screened.spans == 0 && screened.rejected.spans > 0 {
        return Err(ReceiveError::Malformed(format!(
            "invalid OTLP trace export: {}",
            screened.rejected.message()
        )));
    }
    Ok(CheckedExport {
        spans: u32::try_from(screened.spans).unwrap_or(u32::MAX),
        rejected: screened.rejected,
        body: screened.body.map_or(body, Bytes::from),
    })
}

/// An OTLP signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// `/v1/traces`, `TraceService`.
    Traces,
    /// `/v1/logs`, `LogsService`.
    Logs,
    /// `/v1/metrics`, `MetricsService`.
    Metrics,
}

impl Signal {
    /// The OTLP/HTTP path (`/v1/traces`, …).
    pub fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
            Signal::Metrics => "/v1/metrics",
        }
    }

    /// The OTLP/gRPC method.
    pub fn grpc_method(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        }
    }
}

/// The record kind of an export of `signal` in the encoding of `kind` (a trace kind, as
/// [`otlp_kind`] names it).
pub fn signal_kind(signal: Signal, kind: RecordKind) -> RecordKind {
    let json = kind == RecordKind::OtlpJson;
    match (signal, json) {
        (Signal::Traces, false) => RecordKind::OtlpProtobuf,
        (Signal::Traces, true) => RecordKind::OtlpJson,
        (Signal::Logs, false) => RecordKind::OtlpLogsProtobuf,
        (Signal::Logs, true) => RecordKind::OtlpLogsJson,
        (Signal::Metrics, false) => RecordKind::OtlpMetricsProtobuf,
        (Signal::Metrics, true) => RecordKind::OtlpMetricsJson,
    }
}

/// The signal and encoding of an OTLP record kind (`None` for the Langfuse API kinds).
pub fn signal_of(kind: RecordKind) -> Option<(Signal, Format)> {
    Some(match kind {
        RecordKind::OtlpProtobuf => (Signal::Traces, Format::Protobuf),
        RecordKind::OtlpJson => (Signal::Traces, Format::Json),
        RecordKind::OtlpLogsProtobuf => (Signal::Logs, Format::Protobuf),
        RecordKind::OtlpLogsJson => (Signal::Logs, Format::Json),
        RecordKind::OtlpMetricsProtobuf => (Signal::Metrics, Format::Protobuf),
        RecordKind::OtlpMetricsJson => (Signal::Metrics, Format::Json),
        _ => return None,
    })
}

/// Validates an uncompressed OTLP logs export (a logs kind) with the forwarder's decoder:
/// 400 when it does not decode; else the number of log records.
pub fn check_logs(kind: RecordKind, body: &[u8]) -> Result<u32, ReceiveError> {
    let Some((Signal::Logs, format)) = signal_of(kind) else {
        return Err(ReceiveError::Malformed("not an OTLP logs export".into()));
    };
    let batch = otlp::decode_logs_as(format, body)
        .map_err(|e| ReceiveError::Malformed(format!("invalid OTLP logs export: {e}")))?;
    Ok(u32::try_from(batch.record_count()).unwrap_or(u32::MAX))
}

/// Validates an uncompressed OTLP metrics export (a metrics kind): 400 when it does not
/// decode; else the number of metrics.
pub fn check_metrics(kind: RecordKind, body: &[u8]) -> Result<u32, ReceiveError> {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use prost::Message;
    let request = match signal_of(kind) {
        Some((Signal::Metrics, Format::Protobuf)) => ExportMetricsServiceRequest::decode(body)
            .map_err(|e| ReceiveError::Malformed(format!("invalid OTLP metrics export: {e}")))?,
        Some((Signal::Metrics, Format::Json)) => serde_json::from_slice(body)
            .map_err(|e| ReceiveError::Malformed(format!("invalid OTLP metrics export: {e}")))?,
        _ => return Err(ReceiveError::Malformed("not an OTLP metrics export".into())),
    };
    Ok(metric_count(&request))
}

/// Metrics in an export.
pub fn metric_count(
    request: &opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
) -> u32 {
    let n: usize = request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .map(|s| s.metrics.len())
        .sum();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Spans in an export.
pub fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

/// Whether a `Content-Type` is `application/json` (the Langfuse API endpoints; parameters
/// apart, so `text/plain;charset=application/json` is not).
pub fn check_json_content_type(content_type: Option<&str>) -> Result<(), ReceiveError> {
    let ct = content_type.unwrap_or("");
    match MediaType::parse(ct) {
        Some(m) if m.is("application", "json") => Ok(()),
        _ => Err(ReceiveError::UnsupportedMediaType(format!(
            "unsupported Content-Type '{}' (expected application/json)",
            printable(ct)
        ))),
    }
}

/// One event's verdict in an ingestion batch.
#[derive(Debug, Clone, PartialEq)]
pub struct EventVerdict {
    /// The event id (`null` when it has none).
    pub id: Value,
    /// `None`: accepted; else the reason it is not.
    pub error: Option<String>,
}

/// Splits an ingestion request `{"batch":[...]}` into the valid events (re-serialized as a
/// batch) and per-event verdicts, like Langfuse's 207 answer.
pub fn split_ingestion(body: &[u8]) -> Result<(Vec<Value>, Vec<EventVerdict>), ReceiveError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| ReceiveError::Malformed(format!("invalid JSON: {e}")))?;
    let Some(batch) = root.get("batch").and_then(Value::as_array) else {
        return Err(ReceiveError::Malformed(
            "invalid ingestion request: expected {\"batch\":[...]}".into(),
        ));
    };
    let mut valid = Vec::with_capacity(batch.len());
    let mut verdicts = Vec::with_capacity(batch.len());
    for event in batch {
        let id = event.get("id").cloned().unwrap_or(Value::Null);
        let error = if !event.is_object() {
            Some("event is not an object".to_owned())
        } else if !id.is_string() {
            Some("event id must be a string".to_owned())
        } else if !event.get("type").is_some_and(Value::is_string) {
            Some("event type must be a string".to_owned())
        } else if !event.get("body").is_some_and(Value::is_object) {
            Some("event body must be an object".to_owned())
        } else if event["type"] == "sdk-log" {
            // A client's own log line: Langfuse answers 201 and only logs it, and so does the
            // bridge (nothing of it is a trace record).
            let message: String = event["body"]["log"]
                .to_string()
                .chars()
                .filter(|c| !c.is_control())
                .take(1000)
                .collect();
            tracing::info!(%message, "sdk-log event from a client");
            verdicts.push(EventVerdict { id, error: None });
            continue;
        } else {
            // What the local store and the forwarders read the event as.
            IngestionEvent::deserialize(event)
                .err()
                .map(|e| format!("the event does not match the ingestion schema: {e}"))
        };
        if error.is_none() {
            valid.push(event.clone());
        }
        verdicts.push(EventVerdict { id, error });
    }
    Ok((valid, verdicts))
}

/// Parses a scores request (one score object or a list of them), giving every score an id.
pub fn parse_scores(body: &[u8]) -> Result<Vec<Value>, ReceiveError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| ReceiveError::Malformed(format!("invalid JSON: {e}")))?;
    let mut scores = match root {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(ReceiveError::Malformed(
                "invalid scores request: expected a score object or a list of them".into(),
            ));
        }
    };
    for score in &mut scores {
        let Some(map) = score.as_object_mut() else {
            return Err(ReceiveError::Malformed("a score is not an object".into()));
        };
        if !map.get("name").is_some_and(Value::is_string) {
            return Err(ReceiveError::Malformed(
                "a score needs a string name".into(),
            ));
        }
        if !map.get("id").is_some_and(Value::is_string) {
            map.insert(
                "id".into(),
                Value::String(langfuse_otel_transport::new_uuid()),
            );
        }
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_body_bytes: 8000,
        max_decompressed_bytes: 2000,
    };

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_gzip_bomb_is_cut_at_the_decompressed_limit() {
        let bomb = gzip(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < LIMITS.max_body_bytes);
        let err = decompress(Bytes::from(bomb), Some("gzip"), LIMITS).unwrap_err();
        assert_eq!(err.http_status(), 413);
    }

    #[test]
    fn unknown_encodings_and_types_are_415() {
        let err = decompress(Bytes::from_static(b"x"), Some("br"), LIMITS).unwrap_err();
        assert_eq!(err.http_status(), 415);
        assert_eq!(
            otlp_kind(Some("text/plain")).unwrap_err().http_status(),
            415
        );
        assert_eq!(otlp_kind(None).unwrap_err().http_status(), 415);
    }

    #[test]
    fn malformed_bodies_are_400() {
        assert_eq!(
            check_otlp(RecordKind::OtlpProtobuf, Bytes::from_static(b"\xff\xff"))
                .unwrap_err()
                .http_status(),
            400
        );
        assert_eq!(
            check_otlp(RecordKind::OtlpJson, Bytes::from_static(b"{"))
                .unwrap_err()
                .http_status(),
            400
        );
        assert_eq!(
            decompress(Bytes::from_static(b"\x1f\x8bxx"), Some("gzip"), LIMITS)
                .unwrap_err()
                .http_status(),
            400
        );
    }

    #[test]
    fn sdk_log_events_are_answered_201_and_not_kept() {
        let (valid, verdicts) = split_ingestion(
            br#"{"batch":[{"id":"l","type":"sdk-log","timestamp":"2026-12-06T00:00:00Z","body":{"log":"flush"}}]}"#,
        )
        .unwrap();
        assert!(valid.is_empty());
        assert_eq!(verdicts.len(), 1);
        assert!(verdicts[0].error.is_none());
    }

    #[test]
    fn invalid_ingestion_events_get_their_own_errors() {
        let (valid, verdicts) = split_ingestion(
            br#"{"batch":[{"id":"a","type":"score-create","body":{"name":"q","value":1}},{"id":1,"type":"x","body":{}}]}"#,
        )
        .unwrap();
        assert_eq!(valid.len(), 1);
        assert!(verdicts[0].error.is_none());
        assert!(verdicts[1].error.is_some());
    }

    #[test]
    fn events_the_record_model_does_not_read_are_refused_and_kept_as_sent_otherwise() {
        let (valid, verdicts) = split_ingestion(
            br#"{"batch":[
            {"id":"ok","type":"span-create","timestamp":"2026-01-01T00:00:00.000Z","body":{"id":"s1","traceId":"t1","newKey":{"kept":true}}},
            {"id":"unknown-type","type":"span-explode","body":{"id":"s2"}},
            {"id":"numeric-id","type":"span-create","body":{"id":7}},
            {"id":"string-usage","type":"generation-create","body":{"id":"g1","usageDetails":"12"}}]}"#,
        )
        .unwrap();
        assert_eq!(valid.len(), 1);
        assert_eq!(valid[0]["body"]["newKey"]["kept"], true);
        let refused: Vec<&str> = verdicts
            .iter()
            .filter(|v| v.error.is_some())
            .filter_map(|v| v.id.as_str())
            .collect();
        assert_eq!(refused, ["unknown-type", "numeric-id", "string-usage"]);
        assert!(
            verdicts[1]
                .error
                .as_deref()
                .unwrap()
                .contains("span-explode")
        );
    }

    #[test]
    fn an_export_whose_spans_are_all_refused_is_400_and_one_bad_span_is_left_out() {
        use opentelemetry_proto::tonic::trace::v1 as pb;
        use prost::Message;
        let span = |id: Vec<u8>| pb::Span {
            trace_id: vec![1; 16],
            span_id: id,
            ..Default::default()
        };
        let export = |spans| {
            ExportTraceServiceRequest {
                resource_spans: vec![pb::ResourceSpans {
                    scope_spans: vec![pb::ScopeSpans {
                        spans,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }
            .encode_to_vec()
        };
        let all_bad = export(vec![span(vec![])]);
        assert_eq!(
            check_otlp(RecordKind::OtlpProtobuf, Bytes::from(all_bad))
                .unwrap_err()
                .http_status(),
            400
        );
        let one_bad = export(vec![span(vec![2; 8]), span(vec![])]);
        let checked = check_otlp(RecordKind::OtlpProtobuf, Bytes::from(one_bad)).unwrap();
        assert_eq!((checked.spans, checked.rejected.spans), (1, 1));
        assert_eq!(
            otlp::decode_as(Format::Protobuf, &checked.body)
                .unwrap()
                .span_count(),
            1
        );
    }

    #[test]
    fn one_score_or_a_list_is_accepted_and_gets_an_id() {
        assert_eq!(
            parse_scores(br#"{"name":"q","value":1}"#).unwrap()[0]["id"]
                .as_str()
                .unwrap()
                .len(),
            36
        );
        assert_eq!(
            parse_scores(br#"[{"name":"q","id":"s"},{"name":"r"}]"#)
                .unwrap()
                .len(),
            2
        );
        assert!(parse_scores(b"3").is_err());
    }

    mod accepted_means_decodable {
        //! Anything the receiver accepts, the forwarder's decoder accepts: random exports with
        //! missing, empty and odd ids, odd lists, byte-level corruption and every length of
        //! the first `ResourceSpans`.
        use super::*;
        use opentelemetry_proto::tonic::trace::v1 as pb;
        use proptest::prelude::*;
        use prost::Message;

        fn forwarder_accepts(kind: RecordKind, body: &[u8]) {
            let format = otlp_format(kind).unwrap();
            if let Ok(checked) = check_otlp(kind, Bytes::copy_from_slice(body)) {
                let batch = otlp::decode_as(format, &checked.body)
                    .unwrap_or_else(|e| panic!("accepted but the forwarder refuses it: {e}"));
                assert_eq!(batch.span_count(), checked.spans as usize);
            }
        }

        fn id_strategy(len: usize) -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                4 => proptest::collection::vec(any::<u8>(), len),
                1 => Just(Vec::new()),
                1 => proptest::collection::vec(any::<u8>(), 0..20),
            ]
        }

        fn span_strategy() -> impl Strategy<Value = pb::Span> {
            (id_strategy(16), id_strategy(8), id_strategy(8), ".{0,40}").prop_map(
                |(trace_id, span_id, parent_span_id, name)| pb::Span {
                    trace_id,
                    span_id,
                    parent_span_id,
                    name,
                    ..Default::default()
                },
            )
        }

        fn request_strategy() -> impl Strategy<Value = ExportTraceServiceRequest> {
            proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(span_strategy(), 0..5), 0..3),
                0..3,
            )
            .prop_map(|resources| ExportTraceServiceRequest {
                resource_spans: resources
                    .into_iter()
                    .map(|scopes| pb::ResourceSpans {
                        scope_spans: scopes
                            .into_iter()
                            .map(|spans| pb::ScopeSpans {
                                spans,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
            })
        }

        /// An OTLP/JSON id in the forms clients send (and some they should not).
        fn json_id() -> impl Strategy<Value = Option<Value>> {
            prop_oneof![
                4 => "[0-9a-f]{16}".prop_map(|s| Some(Value::String(s))),
                1 => Just(None),
                1 => Just(Some(Value::Null)),
                1 => Just(Some(Value::String(String::new()))),
                1 => Just(Some(serde_json::json!(7))),
                1 => Just(Some(serde_json::json!([1, 2, 300]))),
                1 => Just(Some(serde_json::json!({"type": "Buffer", "data": [1, 2]}))),
            ]
        }

        fn json_list() -> impl Strategy<Value = Option<Value>> {
            prop_oneof![
                4 => Just(Some(serde_json::json!([{"key": "k", "value": {"stringValue": "v"}}]))),
                1 => Just(None),
                1 => Just(Some(serde_json::json!({"k": "v"}))),
                1 => Just(Some(Value::Null)),
            ]
        }

        fn json_span() -> impl Strategy<Value = Value> {
            (json_id(), json_id(), json_id(), json_list(), json_list()).prop_map(
                |(trace, span, parent, attributes, events)| {
                    let mut map = serde_json::Map::new();
                    for (key, value) in [
                        ("traceId", trace),
                        ("spanId", span),
                        ("parentSpanId", parent),
                        ("attributes", attributes),
                        (
                            "events",
                            events.map(|e| serde_json::json!([{"attributes": e}])),
                        ),
                    ] {
                        if let Some(value) = value {
                            map.insert(key.into(), value);
                        }
                    }
                    Value::Object(map)
                },
            )
        }

        fn json_export() -> impl Strategy<Value = Value> {
            (
                proptest::collection::vec(json_span(), 0..6),
                json_list(),
                any::<bool>(),
            )
                .prop_map(|(spans, resource_attributes, spans_as_object)| {
                    let spans = if spans_as_object {
                        serde_json::json!({"0": spans})
                    } else {
                        Value::Array(spans)
                    };
                    let mut resource = serde_json::Map::new();
                    if let Some(a) = resource_attributes {
                        resource.insert("attributes".into(), a);
                    }
                    serde_json::json!({"resourceSpans": [{
                        "resource": resource,
                        "scopeSpans": [{"spans": spans}]
                    }]})
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn protobuf_exports(request in request_strategy(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3)) {
                let mut body = request.encode_to_vec();
                forwarder_accepts(RecordKind::OtlpProtobuf, &body);
                if !body.is_empty() {
                    for (at, byte) in flips {
                        let at = at % body.len();
                        body[at] = byte;
                    }
                    forwarder_accepts(RecordKind::OtlpProtobuf, &body);
                    forwarder_accepts(RecordKind::OtlpJson, &body);
                }
            }

            #[test]
            fn json_exports(export in json_export()) {
                let body = serde_json::to_vec(&export).unwrap();
                forwarder_accepts(RecordKind::OtlpJson, &body);
                forwarder_accepts(RecordKind::OtlpProtobuf, &body);
            }

            #[test]
            fn arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..300)) {
                forwarder_accepts(RecordKind::OtlpProtobuf, &body);
                forwarder_accepts(RecordKind::OtlpJson, &body);
            }
        }

        #[test]
        fn exports_whose_first_message_starts_like_json_are_kept_as_protobuf() {
            // A name of every length puts every byte value from 0x64 to 0x8c at offset 1.
            for name in 60..100 {
                let request = ExportTraceServiceRequest {
                    resource_spans: vec![pb::ResourceSpans {
                        scope_spans: vec![pb::ScopeSpans {
                            spans: vec![pb::Span {
                                trace_id: vec![1; 16],
                                span_id: vec![2; 8],
                                name: "n".repeat(name),
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                };
                let body = request.encode_to_vec();
                let checked =
                    check_otlp(RecordKind::OtlpProtobuf, Bytes::from(body.clone())).unwrap();
                assert_eq!(checked.body, body, "kept as received");
                assert_eq!(
                    otlp::decode_as(Format::Protobuf, &checked.body)
                        .unwrap()
                        .span_count(),
                    1
                );
            }
        }
    }
}
