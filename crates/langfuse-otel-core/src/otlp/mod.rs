//! Bringing OTLP exports and `opentelemetry_sdk` spans into the translator's input shape
//! ([`crate::span::SpanBatch`]).

mod json;

pub use self::json::{any_value as json_any_value, batch_from_json, decode_json};

/// Why an OTLP export could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
