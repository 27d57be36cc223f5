//! Bringing OTLP exports and `opentelemetry_sdk` spans into the translator's input shape
//! ([`crate::span::SpanBatch`]).
//!
//! | source | entry point |
//! |---|---|
//! | OTLP/JSON body | [`decode_json`] |
//! | OTLP protobuf body | [`decode_protobuf`], or [`batch_from_request`] for a decoded message |
//! | either (auto-detected) | [`decode`] |
//! | `opentelemetry_sdk` spans (in-process exporter) | [`batch_from_span_data`] |
//!
//! All of them produce the values the Langfuse server derives from the same export: the
//! server decodes protobuf with protobufjs `toObject({longs: String})` and then applies the same
//! rules as for OTLP/JSON, so protobuf decoding mirrors that `toObject` output (proto3 default
//! values are absent, ids are hex, 64-bit integers become JavaScript numbers).

mod json;
mod proto;
mod sdk;

pub use self::json::{any_value as json_any_value, batch_from_json, decode_json};
pub use self::proto::{batch_from_request, decode_protobuf};
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

/// Decodes an OTLP trace export, detecting its encoding: a body whose first non-whitespace
/// byte is `{` is OTLP/JSON, anything else OTLP protobuf.
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
    if looks_like_json(bytes) {
        decode_json(bytes)
    } else {
        decode_protobuf(bytes)
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
