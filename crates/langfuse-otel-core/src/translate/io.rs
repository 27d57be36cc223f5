//! Input and output: one ordered chain of conventions (server: `extractInputAndOutput`).

use serde_json::Value;

use super::SpanContext;
use crate::record::Metadata;

/// Which record the input/output is derived for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoTarget {
    /// The observation of the span.
    Observation,
    /// The trace of a root span (`langfuse.trace.input`/`output` first).
    Trace,
}

/// Input and output of a span. `None` means undefined (the key is omitted), `Some(Value::Null)`
/// means `null`.
pub fn input_output(cx: &SpanContext<'_, '_>, target: IoTarget) -> (Option<Value>, Option<Value>) {
    let _ = (cx, target);
    (Some(Value::Null), Some(Value::Null))
}

/// Moves tool definitions found in the metadata into the input (server:
/// `normalizeToolMetadataForObservation`).
pub fn move_tool_definitions(metadata: &mut Metadata, input: &mut Option<Option<Value>>) {
    let _ = (metadata, input);
}
