//! Generation fields: model, model parameters, usage, cost, completion start time and prompt
//! link (server: `extractModelName`, `extractModelParameters`, `extractUsageDetails`,
//! `extractCostDetails`, `extractCompletionStartTime`, prompt linking, and the ingestion schema's
//! validation of these fields).

use serde_json::{Map, Value};

use super::{Compatibility, SpanContext};
use crate::record::ObservationType;

/// The generation fields of a generation-like observation, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationFields {
    /// Model name.
    pub model: Option<String>,
    /// Model parameters (sanitized: strings and numbers).
    pub model_parameters: Map<String, Value>,
    /// Usage details (normalized); `None` or empty → omitted.
    pub usage_details: Option<Map<String, Value>>,
    /// Cost details (normalized); `None` or empty → omitted.
    pub cost_details: Option<Map<String, Value>>,
    /// Completion start time as an ISO-8601 string with offset.
    pub completion_start_time: Option<String>,
    /// Prompt name.
    pub prompt_name: Option<String>,
    /// Prompt version.
    pub prompt_version: Option<i64>,
}

/// Why the server's schema would reject the generation fields, with the fields as derived.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The fields as derived (invalid ones left out or as close as representable).
    pub fields: GenerationFields,
    /// The schema's error messages.
    pub errors: Vec<String>,
}

/// Derives and validates the generation fields of a span of a generation-like type.
pub fn generation_fields(
    cx: &SpanContext<'_, '_>,
    kind: ObservationType,
    compatibility: Compatibility,
    start_unix_ms: i64,
) -> Result<GenerationFields, Rejection> {
    let _ = (cx, kind, compatibility, start_unix_ms);
    Ok(GenerationFields::default())
}
