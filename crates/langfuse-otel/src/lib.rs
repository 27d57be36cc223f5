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
#![warn(missing_docs)]

mod client;
mod config;
mod context;
pub mod json;
mod observation;
mod processor;
mod propagation;
mod scores;
mod time;
mod transport;
mod types;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// Traces a function or method as an observation of the global client
/// ([`Langfuse::set_global`]); sync and async, free functions and methods.
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

pub use client::Langfuse;
pub use config::{DEFAULT_BASE_URL, LangfuseBuilder, MASK_FALLBACK, MaskFn};
pub use context::{in_current_context, with_current_context};
pub use observation::Observation;
pub use processor::{LangfuseSpanProcessor, SCOPE_NAME, ShouldExportSpan, is_default_export_span};
pub use propagation::{
    MAX_ENVIRONMENT_LENGTH, MAX_VALUE_LENGTH, PropagatedAttributes, context_with_attributes,
    propagate_attributes, propagate_attributes_sync,
};
pub use scores::{Score, ScoreDataType, ScoreTransport, ScoreValue};
pub use transport::{INGESTION_PATH, SCORES_PATH, SDK_NAME, SDK_VERSION, TRACES_PATH};
pub use types::{
    Level, ObservationOptions, ObservationType, ObservationUpdate, PromptRef, TraceContext,
    takes_generation_fields,
};

/// Errors of the client's lifecycle calls (building a processor, flushing, shutting down).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is incomplete (e.g. missing keys).
    #[error("configuration: {0}")]
    Config(String),
    /// The HTTP transport failed or could not be built.
    #[error("transport: {0}")]
    Transport(String),
    /// A flush did not finish in time.
    #[error("timed out")]
    Timeout,
}

/// Result of the client's lifecycle calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
