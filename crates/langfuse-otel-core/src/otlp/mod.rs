//! Bringing OTLP exports and `opentelemetry_sdk` spans into the translator's input shape
//! ([`crate::span::SpanBatch`]).
//!
//! | source | entry point |
//! |---|---|
//! | OTLP/JSON body | [`decode_json`] |
//! | OTLP protobuf body | [`decode_protobuf`], or [`batch_from_request`] for a decoded message |
//! | a body of a declared [`Format`] (a request's content type) | [`decode_as`] |
//! | either (auto-detected, for files and stdin) | [`decode`] |
//! | a body to acknowledge: the spans the decoder would refuse, and the export without them | [`screen`], [`screen_request`] |
//! | `opentelemetry_sdk` spans (in-process exporter) | [`batch_from_span_data`] |
//! | an OTLP logs export (protobuf or JSON) | [`decode_logs_as`] → [`crate::log::LogBatch`] |
//! | a protobuf export cut per trace and a trace written back for Langfuse v4, at the wire level | [`wire`] |
//!
//! All of them produce the values the Langfuse server derives from the same export: the
//! server decodes protobuf with protobufjs `toObject({longs: String})` and then applies the same
//! rules as for OTLP/JSON, so protobuf decoding mirrors that `toObject` output (proto3 default
//! values are absent, ids are hex, 64-bit integers become JavaScript numbers).

mod json;
mod logs;
mod proto;
mod screen;
mod sdk;
pub mod wire;

pub use self::json::{any_value as json_any_value, batch_from_json, decode_json};
pub use self::logs::{
    decode_logs_as, decode_logs_json, decode_logs_protobuf, log_batch_from_request,
};
pub use self::proto::{batch_from_request, decode_protobuf};
/// The proto attribute helpers the trace-level reader uses.
pub(crate) mod proto_attrs {
    pub(crate) use super::proto::trace_level_attributes;
}
pub use self::screen::{Rejected, Screened, screen, screen_request};
pub use self::sdk::batch_from_span_data;
pub(crate) use self::sdk::value as sdk_value;

use crate::span::SpanBatch;

/// Why an OTLP export could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is not valid JSON.
    #[error("invalid OTLP/JSON: {0}")]
    Json(String),
    /// The body is not a valid protobuf `ExportTraceServiceRequest`.
    #[error("invalid OTLP protobuf: {0}")]
    Protobuf(String),
    /// The export has a shape the Langfuse server rejects (for example a span without id).
    #[error("invalid OTLP trace export: {0}")]
    Shape(String),
}

/// The encoding of an OTLP body, as a request's content type declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/x-protobuf`: an `ExportTraceServiceRequest` message.
    Protobuf,
    /// `application/json`: OTLP/JSON.
    Json,
}

/// Decodes an OTLP trace export of a declared format (no sniffing: a protobuf body is never
/// taken for JSON, whatever its first bytes).
///
/// ```
/// use langfuse_otel_core::otlp::{self, Format};
///
/// assert_eq!(otlp::decode_as(Format::Json, br#"{"resourceSpans":[]}"#).unwrap().span_count(), 0);
/// // A protobuf export whose first `ResourceSpans` is 123 bytes long starts with 0x0A 0x7B
/// // ("\n{"); declared as protobuf, it is protobuf.
/// assert!(otlp::decode_as(Format::Protobuf, b"\x0a\x7b").is_err());
/// assert!(otlp::decode_as(Format::Json, b"\x0a\x00").is_err());
/// ```
pub fn decode_as(format: Format, bytes: &[u8]) -> Result<SpanBatch<'static>, DecodeError> {
    match format {
        Format::Protobuf => decode_protobuf(bytes),
        Format::Json => decode_json(bytes),
    }
}

/// Decodes an OTLP trace export of unknown encoding (a file, stdin): a body whose first
/// non-whitespace byte is `{` is tried as OTLP/JSON first, then as protobuf; anything else is
/// protobuf. When the encoding is known (a request's content type), use [`decode_as`].
///
/// The fallback matters: a protobuf export whose first `ResourceSpans` is 123 bytes long
/// starts with the tag 0x0A (whitespace in JSON) and the length 0x7B (`{`).
///
/// The body must already be decompressed.
///
/// ```
/// use langfuse_otel_core::otlp;
///
/// let json = br#" {"resourceSpans":[]}"#;
/// assert_eq!(otlp::decode(json).unwrap().span_count(), 0);
/// // An empty body is an empty protobuf message.
/// assert_eq!(otlp::decode(b"").unwrap().span_count(), 0);
/// assert!(otlp::decode(b"\xff\xff\xff").is_err());
/// ```
pub fn decode(bytes: &[u8]) -> Result<SpanBatch<'static>, DecodeError> {
    if !looks_like_json(bytes) {
        return decode_protobuf(bytes);
    }
    match decode_json(bytes) {
        Ok(batch) => Ok(batch),
        // Not JSON after all: a protobuf that decodes wins; otherwise the JSON error explains
        // best what is wrong with a body that starts like JSON.
        Err(json_error) => decode_protobuf(bytes).map_err(|_| json_error),
    }
}

/// Whether the first non-whitespace byte is `{`.
fn looks_like_json(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// Lowercase hex of `bytes`, as the server renders binary ids.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
    out
}

/// A protobuf `fixed64` nanosecond timestamp → Unix ms as the server derives it: `0` is a
/// proto3 default, absent after `toObject`, hence `None`; otherwise integer division.
pub(crate) fn nanos_to_ms(ns: u64) -> Option<i64> {
    if ns == 0 {
        return None;
    }
    let ms = i64::try_from(ns / 1_000_000).ok()?;
    (ms <= crate::time::MAX_JS_DATE_MS).then_some(ms)
}

/// The value the server derives for an empty `arrayValue` (protobufjs `toObject` omits the
/// empty `values` list, so the wrapper is stringified).
pub(crate) const EMPTY_ARRAY_VALUE: &str = r#"{"arrayValue":{}}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::trace::v1 as pb;
    use prost::Message;

    /// An export whose first `ResourceSpans` encodes to exactly `len` bytes (a span name, a
    /// scope name and a schema URL of the right lengths: a nested length crossing 127 takes a
    /// second byte), followed by a second one.
    fn export_with_first_resource_spans_of(len: usize) -> ExportTraceServiceRequest {
        let resource_spans = |scope: usize, name: usize, schema: usize| pb::ResourceSpans {
            schema_url: "u".repeat(schema),
            scope_spans: vec![pb::ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "s".repeat(scope),
                    ..Default::default()
                }),
                spans: vec![pb::Span {
                    trace_id: vec![0xab; 16],
                    span_id: vec![0x0f; 8],
                    name: "n".repeat(name),
                    start_time_unix_nano: 1_767_258_000_000_000_000,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let first = (0..64)
            .flat_map(|scope| (0..128).map(move |name| (scope, name)))
            .flat_map(|(scope, name)| (0..4).map(move |schema| resource_spans(scope, name, schema)))
            .find(|rs| rs.encoded_len() == len)
            .unwrap_or_else(|| panic!("no ResourceSpans of {len} bytes"));
        ExportTraceServiceRequest {
            resource_spans: vec![first, resource_spans(3, 3, 0)],
        }
    }

    #[test]
    fn protobuf_exports_of_every_first_message_length_decode_as_protobuf() {
        for len in 100..=140 {
            let body = export_with_first_resource_spans_of(len).encode_to_vec();
            if len < 128 {
                assert_eq!(body[1] as usize, len, "the length byte");
            }
            let by_format = decode_as(Format::Protobuf, &body).unwrap();
            assert_eq!(by_format.span_count(), 2, "declared, len {len}");
            let sniffed = decode(&body).unwrap_or_else(|e| panic!("len {len}: {e}"));
            assert_eq!(sniffed, by_format, "auto-detected, len {len}");
        }
    }

    #[test]
    fn json_is_still_detected_and_its_errors_reported() {
        assert_eq!(
            decode(b" \n{\"resourceSpans\":[]}").unwrap().span_count(),
            0
        );
        assert!(matches!(
            decode(b"{\"resourceSpans\":"),
            Err(DecodeError::Json(_))
        ));
    }
}
