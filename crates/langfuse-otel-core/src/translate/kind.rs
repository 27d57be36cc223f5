//! Observation type inference and observation naming (server: `ObservationTypeMapper`,
//! `extractName`).
//!
//! Mappers run in priority order; the first that recognizes the span wins, `Span` otherwise:
//! Python SDK ≤ 3.3 fix → explicit `langfuse.observation.type` → OpenInference →
//! `gen_ai.operation.name` → Genkit → Vercel AI SDK → GenAI tool call → Flue → LiveKit → model
//! fallback.

use super::SpanContext;
use crate::keys;
use crate::record::ObservationType;
use crate::value::AttrValue;

/// Attributes whose presence marks a Python SDK ≤ 3.3 `span` as a generation.
const PYTHON_SDK_GENERATION_KEYS: [&str; 7] = [
    keys::LANGFUSE_OBSERVATION_MODEL_NAME,
    keys::LANGFUSE_OBSERVATION_COST_DETAILS,
    keys::LANGFUSE_OBSERVATION_USAGE_DETAILS,
    keys::LANGFUSE_OBSERVATION_COMPLETION_START_TIME,
    keys::LANGFUSE_OBSERVATION_MODEL_PARAMETERS,
    keys::LANGFUSE_OBSERVATION_PROMPT_NAME,
    keys::LANGFUSE_OBSERVATION_PROMPT_VERSION,
];

/// Model keys the Vercel generation-like mapper accepts.
const VERCEL_MODEL_KEYS: [&str; 4] = [
    keys::LANGFUSE_OBSERVATION_MODEL_NAME,
    keys::AI_MODEL_ID,
    keys::GEN_AI_REQUEST_MODEL,
    keys::GEN_AI_RESPONSE_MODEL,
];

/// Model keys of the model fallback mapper (not `ai.model.id`, not `model_name`).
const FALLBACK_MODEL_KEYS: [&str; 5] = [
    keys::LANGFUSE_OBSERVATION_MODEL_NAME,
    keys::GEN_AI_REQUEST_MODEL,
    keys::GEN_AI_RESPONSE_MODEL,
    keys::LLM_MODEL_NAME,
    keys::MODEL,
];

/// Vercel AI SDK operations and the type they map to (when a model is present).
const VERCEL_MODEL_OPERATIONS: [(&str, ObservationType); 6] = [
    ("ai.generateText.doGenerate", ObservationType::Generation),
    ("ai.streamText.doStream", ObservationType::Generation),
    ("ai.generateObject.doGenerate", ObservationType::Generation),
    ("ai.streamObject.doStream", ObservationType::Generation),
    ("ai.embed.doEmbed", ObservationType::Embedding),
    ("ai.embedMany.doEmbed", ObservationType::Embedding),
];

/// The observation type of a span: the first convention that recognizes it wins; `Span` by
/// default.
///
/// In repair mode (`repair`) the GenAI operation mapper also knows the operations the server does
/// not map yet (see [`current_genai_operation`]), and a span naming an agent skill
/// (`gen_ai.skill.name`, the `execute_tool` refinements for skills) is a tool call.
pub fn observation_type(cx: &SpanContext<'_, '_>, repair: bool) -> ObservationType {
    python_sdk_fix(cx)
        .or_else(|| explicit(cx))
        .or_else(|| openinference(cx))
        .or_else(|| genai_operation(cx))
        .or_else(|| repair.then(|| current_genai_operation(cx)).flatten())
        .or_else(|| genkit(cx))
        .or_else(|| vercel_model_operation(cx))
        .or_else(|| vercel_tool_call(cx))
        .or_else(|| genai_tool(cx))
        .or_else(|| {
            (repair && meaningful(cx, keys::GEN_AI_SKILL_NAME)).then_some(ObservationType::Tool)
        })
        .or_else(|| flue(cx))
        .or_else(|| livekit(cx))
        .or_else(|| model_fallback(cx))
        .unwrap_or(ObservationType::Span)
}

fn meaningful(cx: &SpanContext<'_, '_>, key: &str) -> bool {
    cx.attr(key).is_some_and(AttrValue::is_meaningful)
}

/// Whether a scope version is absent or at most 3.3 (major.minor comparison).
fn version_at_most_3_3(version: Option<&str>) -> bool {
    let Some(v) = version else { return true };
    let mut parts = v.trim_start_matches('v').split('.');
    let num = |p: Option<&str>| -> Option<u64> {
        p.map(|s| {
            s.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|s| s.parse().ok())
    };
    match (num(parts.next()), num(parts.next())) {
        (Some(major), minor) => (major, minor.unwrap_or(0)) <= (3, 3),
        (None, _) => false,
    }
}

fn python_sdk_fix(cx: &SpanContext<'_, '_>) -> Option<ObservationType> {
    let attrs = cx.attrs();
    (attrs.get_str(keys::LANGFUSE_OBSERVATION_TYPE) == Some("span")
        && cx.scope_name() == keys::SCOPE_LANGFUSE_SDK
        && cx.resource.attributes.get_str(keys::TELEMETRY_SDK_LANGUAGE) == Some("python")
        && version_at_most_3_3(cx.scope.version.as_deref())
        && PYTHON_SDK_GENERATION_KEYS.iter().any(|k| attrs.contains(k)))
    .then_some(ObservationType::Generation)
}

fn explicit(cx: &SpanContext<'_, '_>) -> Option<ObservationType> {
    let value = cx.attrs().get_str(keys::LANGFUSE_OBSERVATION_TYPE)?;
    ObservationType::ALL
        .into_iter()
        .find(|t| t.as_str() == value)
}

fn openinference(cx: &SpanContext<'_, '_>) -> Option<ObservationType> {
    Some(match cx.attrs().get_str(keys::OPENINFERENCE_SPAN_KIND)? {
        "LLM" => ObservationType::Generation,
        "CHAIN" => ObservationType::Chain,
        "RETRIEVER" => ObservationType::Retriever,
        "EMBEDDING" => ObservationType::Embedding,
        "AGENT" => ObservationType::Agent,
        "TOOL" => ObservationType::Tool,
        "GUARDRAIL" => ObservationType::Guardrail,
        "EVALUATOR" => ObservationType::Evaluator,
        _ => return None,
    })
}

fn genai_operation(cx: &SpanContext<'_, '_>) -> Option<ObservationType> {
    Some(match cx.attrs().get_str(keys::GEN_AI_OPERATION_NAME)? {
        "chat" | "completion" | "text_completion" | "generate_content" | "generate" => {
            ObservationType::Generation
        }
        "embeddings" => ObservationType::Embedding,
        "invoke_agent" | "create_agent" => ObservationType::Agent,
        "execute_tool" => ObservationType::Tool,
        _ => return None,
    })
}

/// Operations of the current GenAI conventions the server does not map (repair mode):
///
/// | `gen_ai.operation.name` | type | why |
/// |---|---|---|
/// | `fetch_response` | generation | retrieves a background model response, with its usage |
/// | `handle_conversation_turn` | agent | a framework runner's entry point (ADK / OpenAI Agents `Runner.run`) running an agent for one turn |
/// | `plan` | agent | an agent's planning step |
/// | `invoke_workflow` | chain | a workflow of steps and agents |
/// | `retrieval`, `search_memory` | retriever | a search over a data source or memory |
/// | `create_memory_store`, `delete_memory_store`, `create_memory`, `update_memory`, `upsert_memory`, `delete_memory` | span | storage bookkeeping, no model call |
fn current_genai_operation(cx: &SpanContext<'_, '_>) -> Option<ObservationType> {
    Some(match cx.attrs().get_str(keys::GEN_AI_OPERATION_NAME)? {
        "fetch_response" => ObservationType::Generation,
        "handle_conversation_turn" | "plan" => ObservationType::Agent,
        "invoke_workflow" => ObservationType::Chain,
        "retrieval" | "search_memory" => ObservationType::Retriever,
        "create_memory_store"
        | "delete_memory_store"
        | "create_memory"
        | "update_memory"
        | "upsert_memory"
        | "delete_memory" => ObservationType::Span,
        _ => return None,
    })
}

fn genkit(cx: &SpanContext<'_, '_>) -> Option<ObservationType> {
    Some(match cx.attrs().get_str(keys::GENKIT_METADATA_SUBTYPE)? {
        "model" | "background-model" => ObservationType::Generation,
        "embedder" => ObservationType::Embedding,
        "tool" | "tool.v2" => ObservationType::Tool,
        "retriever" => ObservationType::Retriever,
        "evaluator" => ObservationType::Evaluator,
        _ => return None,
    })
}

/// `operation.name` starts with `op`, or `ai.operationId` equals it.
fn vercel_operation_is(cx: &SpanContext<'_, '_>, op: &str) -> bool {
    let attrs = cx.attrs();
    attrs
        .get_str(keys::OPERATION_NAME)
        .is_some_and(|n| n.starts_with(op))
        || attrs.get_str(keys::AI_OPERATION_ID) == Some(op)
}

fn vercel_model_operation(cx: &SpanContext<'_, '_>) -> Option<ObservationType> {
    if !VERCEL_MODEL_KEYS.iter().any(|k| meaningful(cx, k)) {
        return None;
    }
    VERCEL_MODEL_OPERATIONS
        .iter()
        .find(|(op, _)| vercel_operation_is(cx, op))
        .map(|(_, t)| *t)
}

fn vercel_tool_call(cx: &SpanContext<'_, '_>) -> Option<ObservationType> {
    let attrs = cx.attrs();
    let is_ai = |k: &str| attrs.get_str(k).is_some_and(|v| v.starts_with("ai."));
    if !(is_ai(keys::OPERATION_NAME) || is_ai(keys::AI_OPERATION_ID)) {
        return None;
    }
    vercel_operation_is(cx, "ai.toolCall").then_some(ObservationType::Tool)
}

fn genai_tool(cx: &SpanContext<'_, '_>) -> Option<ObservationType> {
    (meaningful(cx, keys::GEN_AI_TOOL_NAME) || meaningful(cx, keys::GEN_AI_TOOL_CALL_ID))
        .then_some(ObservationType::Tool)
}

fn flue(cx: &SpanContext<'_, '_>) -> Option<ObservationType> {
    if meaningful(cx, keys::FLUE_TOOL_NAME) || meaningful(cx, keys::FLUE_TOOL_CALL_ID) {
        Some(ObservationType::Tool)
    } else if meaningful(cx, keys::FLUE_TASK_ID) || meaningful(cx, keys::FLUE_TASK_AGENT) {
        Some(ObservationType::Agent)
    } else {
        None
    }
}

fn livekit(cx: &SpanContext<'_, '_>) -> Option<ObservationType> {
    if cx.scope_name() != keys::SCOPE_LIVEKIT_AGENTS {
        return None;
    }
    match cx.span.name.as_ref() {
        "agent_turn" | "start_agent_activity" => Some(ObservationType::Agent),
        "function_tool" => Some(ObservationType::Tool),
        _ => None,
    }
}

fn model_fallback(cx: &SpanContext<'_, '_>) -> Option<ObservationType> {
    FALLBACK_MODEL_KEYS
        .iter()
        .any(|k| meaningful(cx, k))
        .then_some(ObservationType::Generation)
}

/// The observation name of a span (`gen_ai.tool.name`, `genkit:name`, `logfire.msg`,
/// `ai.toolCall.name`, the AI SDK operation id, else the span name).
pub fn observation_name(cx: &SpanContext<'_, '_>) -> String {
    let attrs = cx.attrs();
    if let Some(v) = attrs.truthy(keys::GEN_AI_TOOL_NAME) {
        return v.to_json_string().into_owned();
    }
    if let Some(v) = attrs.get(keys::GENKIT_NAME) {
        return v.to_js_string().into_owned();
    }
    if let Some(v) = attrs.truthy(keys::LOGFIRE_MSG) {
        return v.to_json_string().into_owned();
    }
    if let Some(v) = attrs.get(keys::AI_TOOL_CALL_NAME) {
        return v.to_js_string().into_owned();
    }
    if let Some(op) = attrs.get(keys::AI_OPERATION_ID) {
        let op = op.to_js_string();
        return match attrs.truthy(keys::AI_TELEMETRY_FUNCTION_ID) {
            Some(f) => format!("{}:{op}", f.to_js_string()),
            None => op.into_owned(),
        };
    }
    cx.span.name.to_string()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::span::{Attributes, Resource, Scope, Span};

    fn span(attrs: &[(&'static str, AttrValue<'static>)]) -> Span<'static> {
        Span {
            name: Cow::Borrowed("op"),
            attributes: Attributes::from_pairs(
                attrs.iter().map(|(k, v)| (Cow::Borrowed(*k), v.clone())),
            ),
            ..Span::default()
        }
    }

    fn kind_of(scope: &Scope<'_>, res: &Resource<'_>, s: &Span<'_>) -> ObservationType {
        kind_in(scope, res, s, false)
    }

    fn kind_in(
        scope: &Scope<'_>,
        res: &Resource<'_>,
        s: &Span<'_>,
        repair: bool,
    ) -> ObservationType {
        observation_type(
            &SpanContext {
                resource: res,
                scope,
                span: s,
            },
            repair,
        )
    }

    fn repaired_kind(attrs: &[(&'static str, AttrValue<'static>)]) -> ObservationType {
        kind_in(&Scope::default(), &Resource::default(), &span(attrs), true)
    }

    fn kind(attrs: &[(&'static str, AttrValue<'static>)]) -> ObservationType {
        kind_of(&Scope::default(), &Resource::default(), &span(attrs))
    }

    fn s(v: &'static str) -> AttrValue<'static> {
        AttrValue::str(v)
    }

    #[test]
    fn python_sdk_v3_span_with_generation_attributes_is_generation() {
        let res = Resource {
            attributes: Attributes::from_pairs([(
                Cow::Borrowed(keys::TELEMETRY_SDK_LANGUAGE),
                s("python"),
            )]),
        };
        let scope = Scope {
            name: Cow::Borrowed(keys::SCOPE_LANGFUSE_SDK),
            version: Some(Cow::Borrowed("3.3.0")),
            ..Scope::default()
        };
        let sp = span(&[
            (keys::LANGFUSE_OBSERVATION_TYPE, s("span")),
            (keys::LANGFUSE_OBSERVATION_MODEL_NAME, s("gpt-4o")),
        ]);
        assert_eq!(kind_of(&scope, &res, &sp), ObservationType::Generation);
        let newer = Scope {
            version: Some(Cow::Borrowed("3.4.0")),
            ..scope
        };
        assert_eq!(kind_of(&newer, &res, &sp), ObservationType::Span);
    }

    #[test]
    fn explicit_type_is_lowercase_only() {
        assert_eq!(
            kind(&[(keys::LANGFUSE_OBSERVATION_TYPE, s("agent"))]),
            ObservationType::Agent
        );
        assert_eq!(
            kind(&[(keys::LANGFUSE_OBSERVATION_TYPE, s("GENERATION"))]),
            ObservationType::Span
        );
    }

    #[test]
    fn openinference_kinds_are_uppercase_only() {
        assert_eq!(
            kind(&[(keys::OPENINFERENCE_SPAN_KIND, s("LLM"))]),
            ObservationType::Generation
        );
        assert_eq!(
            kind(&[(keys::OPENINFERENCE_SPAN_KIND, s("llm"))]),
            ObservationType::Span
        );
    }

    #[test]
    fn genai_operation_names_map() {
        assert_eq!(
            kind(&[(keys::GEN_AI_OPERATION_NAME, s("execute_tool"))]),
            ObservationType::Tool
        );
        assert_eq!(
            kind(&[(keys::GEN_AI_OPERATION_NAME, s("retrieval"))]),
            ObservationType::Span
        );
    }

    #[test]
    fn current_genai_operations_map_in_repair_mode_only() {
        let cases = [
            ("fetch_response", ObservationType::Generation),
            ("handle_conversation_turn", ObservationType::Agent),
            ("plan", ObservationType::Agent),
            ("invoke_workflow", ObservationType::Chain),
            ("retrieval", ObservationType::Retriever),
            ("search_memory", ObservationType::Retriever),
            ("upsert_memory", ObservationType::Span),
        ];
        for (op, want) in cases {
            let attrs = [(keys::GEN_AI_OPERATION_NAME, s(op))];
            assert_eq!(repaired_kind(&attrs), want, "{op}");
            assert_eq!(kind(&attrs), ObservationType::Span, "{op} (server)");
        }
    }

    #[test]
    fn memory_operations_stay_spans_even_with_a_model() {
        let attrs = [
            (keys::GEN_AI_OPERATION_NAME, s("create_memory")),
            (keys::GEN_AI_REQUEST_MODEL, s("text-embedding-3-small")),
        ];
        assert_eq!(repaired_kind(&attrs), ObservationType::Span);
        assert_eq!(kind(&attrs), ObservationType::Generation);
    }

    #[test]
    fn skill_loading_execute_tool_refinements_are_tools() {
        let attrs = [(keys::GEN_AI_SKILL_NAME, s("refund-policy"))];
        assert_eq!(repaired_kind(&attrs), ObservationType::Tool);
        assert_eq!(kind(&attrs), ObservationType::Span);
        let load = [
            (keys::GEN_AI_OPERATION_NAME, s("execute_tool")),
            (keys::GEN_AI_SKILL_NAME, s("refund-policy")),
        ];
        assert_eq!(repaired_kind(&load), ObservationType::Tool);
    }

    #[test]
    fn genkit_subtypes_map() {
        assert_eq!(
            kind(&[(keys::GENKIT_METADATA_SUBTYPE, s("embedder"))]),
            ObservationType::Embedding
        );
    }

    #[test]
    fn vercel_operations_need_a_model() {
        assert_eq!(
            kind(&[
                (keys::OPERATION_NAME, s("ai.embed.doEmbed my-fn")),
                (keys::AI_MODEL_ID, s("m"))
            ]),
            ObservationType::Embedding
        );
        assert_eq!(
            kind(&[(keys::OPERATION_NAME, s("ai.generateText.doGenerate"))]),
            ObservationType::Span
        );
        assert_eq!(
            kind(&[(keys::AI_OPERATION_ID, s("ai.toolCall"))]),
            ObservationType::Tool
        );
    }

    #[test]
    fn genai_tool_and_flue_and_model_fallback() {
        assert_eq!(
            kind(&[(keys::GEN_AI_TOOL_CALL_ID, s("c1"))]),
            ObservationType::Tool
        );
        assert_eq!(
            kind(&[(keys::FLUE_TASK_ID, s("t"))]),
            ObservationType::Agent
        );
        assert_eq!(
            kind(&[(keys::MODEL, s("gpt"))]),
            ObservationType::Generation
        );
        assert_eq!(kind(&[(keys::MODEL, s(""))]), ObservationType::Span);
        assert_eq!(
            kind(&[(keys::AI_MODEL_ID, s("gpt"))]),
            ObservationType::Span
        );
    }

    #[test]
    fn livekit_spans_need_the_livekit_scope() {
        let scope = Scope {
            name: Cow::Borrowed(keys::SCOPE_LIVEKIT_AGENTS),
            ..Scope::default()
        };
        let mut sp = span(&[]);
        sp.name = Cow::Borrowed("function_tool");
        assert_eq!(
            kind_of(&scope, &Resource::default(), &sp),
            ObservationType::Tool
        );
        assert_eq!(
            kind_of(&Scope::default(), &Resource::default(), &sp),
            ObservationType::Span
        );
    }

    #[test]
    fn name_prefers_tool_name_then_logfire_then_operation_id() {
        let res = Resource::default();
        let scope = Scope::default();
        let sp = span(&[
            (keys::AI_OPERATION_ID, s("ai.generateText")),
            (keys::AI_TELEMETRY_FUNCTION_ID, s("fn")),
        ]);
        let cx = SpanContext {
            resource: &res,
            scope: &scope,
            span: &sp,
        };
        assert_eq!(observation_name(&cx), "fn:ai.generateText");
        let sp = span(&[
            (keys::LOGFIRE_MSG, s("msg")),
            (keys::GEN_AI_TOOL_NAME, s("tool")),
        ]);
        let cx = SpanContext {
            resource: &res,
            scope: &scope,
            span: &sp,
        };
        assert_eq!(observation_name(&cx), "tool");
    }
}
