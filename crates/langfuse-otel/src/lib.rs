//! LLM observability for Rust on OpenTelemetry, wire-compatible with the official Langfuse
//! Python SDK 5: nested observations that survive `.await` and spawned tasks, trace attributes
//! propagated to every span (including other crates' and `tracing`'s), scores, masking and
//! sampling.
//!
//! ```
//! use langfuse_otel::{Langfuse, ObservationOptions, ObservationType, ObservationUpdate, PropagatedAttributes, Score, propagate_attributes};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let langfuse = Langfuse::from_env(); // LANGFUSE_PUBLIC_KEY/SECRET_KEY/BASE_URL; disabled without keys
//! let attrs = PropagatedAttributes::new().user_id("user_456").session_id("session_abc");
//! propagate_attributes(attrs, async {
//!     langfuse
//!         .start_active_observation("rag-pipeline", |root| async move {
//!             root.start_active_observation(
//!                 ObservationOptions::new("generate-answer", ObservationType::Generation).model("gpt-4o-mini"),
//!                 |generation| async move {
//!                     generation.update(
//!                         ObservationUpdate::new()
//!                             .output("Go to Settings > Security.")
//!                             .usage_details(&serde_json::json!({"input": 120, "output": 40})),
//!                     );
//!                     generation.score(Score::numeric("relevance", 0.87));
//!                 },
//!             )
//!             .await;
//!         })
//!         .await;
//! })
//! .await;
//! langfuse.flush().ok();
//! # }
//! ```
//!
//! # Delivery at exit
//!
//! Spans and scores are sent in the background: spans every 5 s or per 512
//! (`LANGFUSE_FLUSH_INTERVAL`, `LANGFUSE_FLUSH_AT`), scores every second or per 15. Whatever is
//! still queued when the process exits is lost unless it is flushed:
//!
//! - a client you own: call [`Langfuse::flush`] or [`Langfuse::shutdown`] (or
//!   [`shutdown_with_timeout`](Langfuse::shutdown_with_timeout)) before `main` returns; dropping
//!   the last clone also shuts it down;
//! - the global client of [`observe`]: Rust has no `atexit` for statics, so keep the
//!   [`GlobalGuard`] returned by [`Langfuse::init_global`] alive in `main`. Dropping it flushes
//!   and shuts the client down within [`GLOBAL_GUARD_TIMEOUT`]. A client installed with
//!   [`Langfuse::set_global`] alone is flushed by the background interval only.
//!
//! ```
//! use langfuse_otel::{Langfuse, observe};
//!
//! #[observe]
//! fn answer(question: &str) -> String {
//!     format!("echo: {question}")
//! }
//!
//! fn main() {
//!     let _guard = Langfuse::from_env().init_global();
//!     answer("hi");
//! } // spans flushed here
//! ```
//!
//! # Offline and debugging
//!
//! [`LangfuseBuilder::offline`] writes spans and scores to a JSON-lines file of Langfuse
//! ingestion events instead of sending them (no keys needed;
//! [`langfuse_otel_exporter::offline::render_trace_file`] prints it as trace trees).
//! `LANGFUSE_DEBUG=true` or [`LangfuseBuilder::debug`] prints one `langfuse: debug:` line on
//! standard error for the resolved configuration (never the secret key), each export and score
//! batch, and each flush and shutdown; [`Diagnostics`] redirects those lines.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod active;
mod attributes;
mod builder;
mod client;
mod config;
mod context;
mod global;
pub mod json;
mod observation;
mod processor;
mod propagation;
mod recorder;
mod scores;
mod span_handle;
mod transport;
mod types;
mod warning;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// Traces a function or method as an observation of the global client
/// ([`Langfuse::init_global`] or [`Langfuse::set_global`]); sync and async, free functions and
/// methods. Keep the [`GlobalGuard`] of `init_global` alive in `main`: it flushes the spans
/// when `main` returns; without it they are sent by the background interval only.
///
/// Options: `name = ".."` (default: the function name), `as_type = "generation"` (any type but
/// `event`; default `span`), `capture_input = false`, `capture_output = false`, `skip(arg, ..)`.
/// Input = the arguments by parameter name as a JSON object (`self` left out; values that are
/// not `Serialize` become a placeholder text). Output = the return value; for a `Result`, the
/// `Ok` value, while an `Err` marks the observation ERROR with the error's `Display` as status
/// message and is returned unchanged. Capture also follows
/// `LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED`.
///
/// ```
/// use langfuse_otel::observe;
///
/// #[observe(name = "embed", as_type = "embedding", skip(api_key))]
/// async fn embed(text: &str, api_key: &str) -> Result<Vec<f32>, std::io::Error> {
///     let _ = api_key;
///     Ok(vec![0.1; text.len()])
/// }
///
/// #[observe]
/// fn rerank(ids: Vec<u32>) -> Vec<u32> {
///     ids.into_iter().rev().collect()
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(embed("hi", "secret").await.unwrap().len(), 2);
/// assert_eq!(rerank(vec![1, 2]), vec![2, 1]);
/// # }
/// ```
pub use langfuse_otel_macros::observe;

/// The `opentelemetry` API crate this SDK is built on (0.33). Use this re-export (or the same
/// version in your `Cargo.toml`) so your tracer, context and key-value types are the ones the
/// SDK takes: two versions in one build fail with "multiple versions of crate `opentelemetry`".
pub use opentelemetry;
/// The `opentelemetry_sdk` crate this SDK is built on (0.33): [`LangfuseSpanProcessor`] is an
/// `opentelemetry_sdk::trace::SpanProcessor` of this version, so build your `SdkTracerProvider`
/// from this re-export (or the same version).
pub use opentelemetry_sdk;
/// The `tracing-opentelemetry` version (0.34) that bridges `tracing` to this `opentelemetry`
/// version (feature `tracing-opentelemetry`).
#[cfg(feature = "tracing-opentelemetry")]
pub use tracing_opentelemetry;

pub use client::Langfuse;
pub use config::{DEFAULT_BASE_URL, LangfuseBuilder, MASK_FALLBACK, MaskFn};
pub use context::{in_current_context, with_current_context};
pub use global::{GLOBAL_GUARD_TIMEOUT, GlobalGuard};
pub use langfuse_otel_exporter::Diagnostics;
pub use observation::Observation;
pub use processor::{LangfuseSpanProcessor, SCOPE_NAME, ShouldExportSpan, is_default_export_span};
pub use propagation::{
    MAX_ENVIRONMENT_LENGTH, MAX_VALUE_LENGTH, PropagatedAttributes, context_with_attributes,
    propagate_attributes, propagate_attributes_sync,
};
pub use scores::{
    DEFAULT_MAX_QUEUED_SCORES, Score, ScoreDataType, ScoreStats, ScoreTransport, ScoreValue,
};
pub use transport::{INGESTION_PATH, SCORES_PATH, TRACES_PATH};
pub use types::{
    Level, ObservationOptions, ObservationType, ObservationUpdate, PromptRef, Skill, TraceContext,
    takes_generation_fields,
};

/// Errors of the client's lifecycle calls (building a processor, flushing, shutting down).
/// Each carries its cause as [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is incomplete: no keys, and not offline.
    #[error(
        "configuration: LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY missing: the Langfuse client is disabled"
    )]
    MissingKeys,
    /// The span exporter (or the offline file) cannot be set up.
    #[error("cannot set up the span exporter")]
    Exporter(#[source] langfuse_otel_exporter::config::ConfigError),
    /// The score sender cannot be set up.
    #[error("cannot set up the score sender")]
    ScoreSender(#[source] langfuse_otel_transport::TransportError),
    /// The score thread cannot be started.
    #[error("cannot start the score thread")]
    ScoreThread(#[source] std::io::Error),
    /// The score thread stopped before it answered.
    #[error("the score thread has stopped")]
    ScoreThreadStopped,
    /// Exporting or shutting the spans' provider down failed.
    #[error("exporting spans failed")]
    Export(#[source] opentelemetry_sdk::error::OTelSdkError),
    /// A flush did not finish in time.
    #[error("timed out")]
    Timeout,
}

/// Result of the client's lifecycle calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
