//! Spans that repeat their children's usage (agent and workflow operations): their model,
//! usage and cost are not read.

use crate::keys;
use crate::translate::context::SpanContext;

/// Spans whose model, usage and cost the server skips: agent spans that repeat their child
/// calls' aggregate usage (`invoke_agent`, `agent_step`); in repair mode also the orchestration
/// operations of the current conventions (`handle_conversation_turn`, `invoke_workflow`), whose
/// usage can only be such an aggregate.
pub(crate) fn is_aggregate_operation(cx: &SpanContext<'_, '_>, repair: bool) -> bool {
    match cx.attrs().get_str(keys::GEN_AI_OPERATION_NAME) {
        Some("invoke_agent" | "agent_step") => true,
        Some("handle_conversation_turn" | "invoke_workflow") => repair,
        _ => false,
    }
}
