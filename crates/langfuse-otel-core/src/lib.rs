//! # langfuse-otel-core
//!
//! The pure translation core of `langfuse-otel`: OpenTelemetry spans in, Langfuse ingestion
//! records out, with the same results the Langfuse server derives from the same spans.
//!
//! No I/O, no async, no network: decoding ([`otlp`]), the span model ([`span`]), the record
//! model ([`record`]), the rules ([`translate`]), the way back to OTLP with one convention
//! ([`canonical`]), every attribute key in one place ([`keys`]), and the signals of the current
//! GenAI conventions the server does not read yet, for span processors ([`conventions`]), and
//! trace text made safe for a terminal ([`terminal`]).
//!
//! ```
//! use langfuse_otel_core::{otlp, translate::translate_batch};
//!
//! let export = br#"{"resourceSpans":[{"scopeSpans":[{"scope":{"name":"app"},"spans":[{
//!     "traceId":"f7a0e8d1f86e1d6a80854c2106aa25fb","spanId":"99180b94af7b795a","name":"retrieve",
//!     "startTimeUnixNano":"1767258000000000000","endTimeUnixNano":"1767258000250000000",
//!     "attributes":[{"key":"langfuse.observation.type","value":{"stringValue":"retriever"}}]}]}]}]}"#;
//! let batch = otlp::decode_json(export).unwrap();
//! let translation = translate_batch(&batch);
//! let json = serde_json::to_value(&translation.events).unwrap();
//! assert_eq!(json[1]["type"], "retriever-create");
//! assert_eq!(json[1]["body"]["startTime"], "2026-01-01T09:00:00.000Z");
//! ```

//! ## Deviations from the server
//!
//! The translator reproduces the server exactly ([`translate::Compatibility::Server`], which the
//! conformance suite runs in), except where the server *silently drops* data. By default
//! ([`translate::Compatibility::Repair`]) it keeps such observations and repairs the offending
//! field; each repair is tested:
//!
//! | input (conformance case) | server | default mode |
//! |---|---|---|
//! | `completion_start_time` without zone or with a space, or as epoch-ms (`completion-start-time-rejected-forms`) | drops the observation | repairs the time (UTC assumed) |
//! | prompt version as numeric string; prompt name without version (`prompt-link-invalid-forms`) | drops the observation | integer version; unlinked prompt |
//! | non-string `langfuse.version` (no case; named in the corpus README) | drops the observation | version rendered as text |
//!
//! See [Repair mode](translate#repair-mode) for every repair, including the current GenAI
//! conventions the server does not read yet.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agents;
pub mod canonical;
pub mod conventions;
pub mod fold;
pub mod keys;
pub mod legacy;
pub mod log;
pub mod otlp;
pub mod record;
pub mod span;
pub mod terminal;
pub mod time;
pub mod translate;
pub mod value;

pub use canonical::OtlpMode;
pub use record::{IngestionBatch, IngestionEvent, ObservationType};
pub use span::SpanBatch;
pub use translate::{Translation, Translator, translate_batch};
