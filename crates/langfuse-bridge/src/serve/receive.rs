//! The receive path shared by the HTTP and gRPC listeners: bounded decompression, content
//! type, validation and counting. Pure functions over bytes (the fuzz target drives them).
//!
//! | input | answer |
//! |---|---|
//! | body over `max_body_bytes` | 413 / `RESOURCE_EXHAUSTED`… see [`ReceiveError`] |
//! | decompressed body over `max_decompressed_bytes` (gzip bombs) | 413, memory bounded by the limit |
//! | `Content-Encoding` other than gzip/identity, `Content-Type` other than protobuf/JSON | 415 |
//! | undecodable protobuf, JSON, gzip | 400 with the decoder's message |

use bytes::Bytes;
use langfuse_otel_core::otlp;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::Value;

use super::content_type::MediaType;
use crate::body::{BodyError, BodyLimits, Encoding, decode_body};
use crate::spool::RecordKind;

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
/// reader of [`crate::body`]: never more than `limits.max_decompressed_bytes + 1` bytes are held.
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
/// see [`content_type`](super::content_type)).
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

/// Validates an uncompressed OTLP trace export and counts its spans.
pub fn check_otlp(kind: RecordKind, body: &[u8]) -> Result<u32, ReceiveError> {
    let spans = match kind {
        RecordKind::OtlpProtobuf => {
            let request = ExportTraceServiceRequest::decode(body)
                .map_err(|e| ReceiveError::Malformed(format!("invalid OTLP protobuf: {e}")))?;
            span_count(&request)
        }
        _ => otlp::decode_json(body)
            .map_err(|e| ReceiveError::Malformed(e.to_string()))?
            .span_count(),
    };
    Ok(u32::try_from(spans).unwrap_or(u32::MAX))
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
        } else {
            None
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
            map.insert("id".into(), Value::String(super::new_id()));
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
            check_otlp(RecordKind::OtlpProtobuf, b"\xff\xff")
                .unwrap_err()
                .http_status(),
            400
        );
        assert_eq!(
            check_otlp(RecordKind::OtlpJson, b"{")
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
    fn invalid_ingestion_events_get_their_own_errors() {
        let (valid, verdicts) = split_ingestion(
            br#"{"batch":[{"id":"a","type":"score-create","body":{}},{"id":1,"type":"x","body":{}}]}"#,
        )
        .unwrap();
        assert_eq!(valid.len(), 1);
        assert!(verdicts[0].error.is_none());
        assert!(verdicts[1].error.is_some());
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
}
