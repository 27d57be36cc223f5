//! Observation type inference and observation naming (server: `ObservationTypeMapper`,
//! `extractName`).

use super::SpanContext;
use crate::record::ObservationType;

/// The observation type of a span: the first convention that recognizes it wins; `Span` by
/// default.
pub fn observation_type(cx: &SpanContext<'_, '_>) -> ObservationType {
    let _ = cx;
    ObservationType::Span
}

/// The observation name of a span (`gen_ai.tool.name`, `genkit:name`, `logfire.msg`,
/// `ai.toolCall.name`, the AI SDK operation id, else the span name).
pub fn observation_name(cx: &SpanContext<'_, '_>) -> String {
    cx.span.name.to_string()
}
