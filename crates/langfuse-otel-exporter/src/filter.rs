//! Which spans are exported: the official SDKs' default filter, or a predicate of yours.

use std::fmt;
use std::sync::Arc;

use langfuse_otel_core::keys::is_known_llm_scope;
use opentelemetry_sdk::trace::SpanData;

pub use langfuse_otel_core::keys::KNOWN_LLM_SCOPES;

/// The default filter of the official SDKs: a span is exported when its scope is a known LLM
/// scope (see [`KNOWN_LLM_SCOPES`]; `ai` matches exactly only), any attribute key starts with
/// `gen_ai.`, or any attribute key starts with `langfuse.`.
///
/// (The last rule is ours: spans our own instrumentation marks with `langfuse.*` attributes are
/// Langfuse spans whatever their scope.)
pub fn is_default_export_span(span: &SpanData) -> bool {
    is_known_llm_scope(span.instrumentation_scope.name())
        || span.attributes.iter().any(|kv| {
            let k = kv.key.as_str();
            k.starts_with("gen_ai.") || k.starts_with("langfuse.")
        })
}

/// The export filter: which spans an exporter sends.
#[derive(Clone, Default)]
pub enum ExportFilter {
    /// [`is_default_export_span`].
    #[default]
    Default,
    /// Every span.
    All,
    /// A predicate of yours (it must not panic; a panic is caught and the span dropped).
    Custom(Arc<dyn Fn(&SpanData) -> bool + Send + Sync>),
}

impl fmt::Debug for ExportFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportFilter::Default => f.write_str("Default"),
            ExportFilter::All => f.write_str("All"),
            ExportFilter::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl ExportFilter {
    /// Whether `span` passes.
    pub fn accepts(&self, span: &SpanData) -> bool {
        match self {
            ExportFilter::Default => is_default_export_span(span),
            ExportFilter::All => true,
            ExportFilter::Custom(f) => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(span))).unwrap_or(false)
            }
        }
    }
}
