//! Claude Code: log events `claude_code.<event>` (always), spans `claude_code.*` (with
//! `CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1`).
//!
//! | event / span | becomes |
//! |---|---|
//! | `user_prompt` (`prompt`, `prompt.id`, `user.*`) | the turn's prompt, user, session (`session.id`) |
//! | `api_request` (`model`, `input_tokens`, `output_tokens`, `cache_read_tokens`, `cache_creation_tokens`, `cost_usd`, `duration_ms`, `ttft_ms`, `request_id`) | a generation |
//! | `api_error` (`model`, `error`, `status_code`, `duration_ms`, `request_id`) | a generation with level ERROR |
//! | `assistant_response` (`response`, `request_id`) | the generation's output; the last one is the turn's output |
//! | `tool_decision` (`decision`, `source`, `tool_use_id`) | the tool's decision (metadata) |
//! | `tool_result` (`tool_name`, `tool_use_id`, `success`, `duration_ms`, `tool_input`, `error`) | a tool call |
//! | span `claude_code.interaction` | the turn's ids and times |
//! | span `claude_code.llm_request` (`request_id`) | enriches the generation of that request (times, stop reason); its token counts are the same request's and are not added again |
//! | span `claude_code.tool` (`tool_use_id`) | enriches the tool call (times, command) |
//! | other spans (`tool.execution`, `tool.blocked_on_user`) | internal |
//!
//! Turn links: `prompt.id` (every event from the prompt on), the trace id (events and spans of a
//! turn share the interaction's trace when spans are on).

use serde_json::{Map, Value};

use super::model::{
    Context, Generation, Item, Part, Prompt, Tool, boolean, copy_facts, json_or_text, number,
    span_times, start_from, text, usage_entry, user_id,
};
use crate::log::LogRecord;
use crate::span::{Attributes, Span};

/// The event's name without the `claude_code.` prefix (from `event.name`, else the body).
fn event_name(record: &LogRecord) -> Option<String> {
    text(&record.attributes, "event.name")
        .or_else(|| record.body.as_ref()?.as_str().map(str::to_owned))
        .map(|n| n.strip_prefix("claude_code.").unwrap_or(&n).to_owned())
}

fn links(attrs: &Attributes<'_>, trace_id: Option<&str>) -> Vec<String> {
    let mut links = Vec::new();
    if let Some(p) = text(attrs, "prompt.id") {
        links.push(format!("prompt:{p}"));
    }
    if let Some(t) = trace_id {
        links.push(format!("trace:{t}"));
    }
    links
}

/// The usage of one request, from the plain counts Claude Code puts on both the event and the
/// span (`input_tokens` excludes the cache; `gen_ai.usage.input_tokens` of the span includes
/// it and is not read).
fn usage(attrs: &Attributes<'_>) -> Vec<(&'static str, f64)> {
    let mut usage = Vec::new();
    usage_entry(&mut usage, "input", number(attrs, "input_tokens"));
    usage_entry(&mut usage, "output", number(attrs, "output_tokens"));
    usage_entry(
        &mut usage,
        "input_cache_read",
        number(attrs, "cache_read_tokens"),
    );
    usage_entry(
        &mut usage,
        "input_cache_creation",
        number(attrs, "cache_creation_tokens"),
    );
    usage
}

fn request_facts(attrs: &Attributes<'_>) -> Map<String, Value> {
    let mut m = Map::new();
    copy_facts(
        &mut m,
        attrs,
        &[
            "request_id",
            "speed",
            "effort",
            "query_source",
            "stop_reason",
            "attempt",
            "status_code",
            "gen_ai.response.finish_reasons",
        ],
    );
    m
}

/// The turn item of one Claude Code log record (`None`: not part of a turn).
pub fn from_log(cx: &Context<'_>, record: &LogRecord) -> Option<Item> {
    let attrs = &record.attributes;
    let time_ms = record.time_ms()?;
    let part = match event_name(record)?.as_str() {
        "user_prompt" => {
            let mut facts = Map::new();
            copy_facts(&mut facts, cx.resource, &["service.version"]);
            copy_facts(
                &mut facts,
                attrs,
                &["terminal.type", "anthropic.provider", "organization.id"],
            );
            Part::Prompt(Prompt {
                text: text(attrs, "prompt").or_else(|| text(attrs, "prompt_text")),
                user_id: user_id(attrs),
                prompt_id: text(attrs, "prompt.id"),
                facts,
            })
        }
        "api_request" => Part::Generation(Generation {
            key: text(attrs, "request_id"),
            model: text(attrs, "model"),
            usage: usage(attrs),
            cost_usd: number(attrs, "cost_usd"),
            start_ms: start_from(time_ms, number(attrs, "duration_ms")),
            end_ms: Some(time_ms),
            ttft_ms: number(attrs, "ttft_ms"),
            metadata: request_facts(attrs),
            ..Generation::default()
        }),
        "api_error" => Part::Generation(Generation {
            key: text(attrs, "request_id"),
            model: text(attrs, "model"),
            start_ms: start_from(time_ms, number(attrs, "duration_ms")),
            end_ms: Some(time_ms),
            error: Some(text(attrs, "error").unwrap_or_else(|| "API error".to_owned())),
            metadata: request_facts(attrs),
            ..Generation::default()
        }),
        "assistant_response" => Part::Response {
            key: text(attrs, "request_id"),
            text: text(attrs, "response")?,
        },
        "tool_decision" => {
            let mut metadata = Map::new();
            if let Some(d) = text(attrs, "decision") {
                metadata.insert("decision".into(), d.into());
            }
            if let Some(s) = text(attrs, "source") {
                metadata.insert("decision_source".into(), s.into());
            }
            copy_facts(&mut metadata, attrs, &["tool_source", "permission_mode"]);
            Part::Tool(Tool {
                key: text(attrs, "tool_use_id"),
                name: text(attrs, "tool_name"),
                arguments: text(attrs, "tool_parameters").map(|t| json_or_text(&t)),
                metadata,
                ..Tool::default()
            })
        }
        "tool_result" => {
            let success = boolean(attrs, "success");
            let mut metadata = Map::new();
            copy_facts(
                &mut metadata,
                attrs,
                &[
                    "tool_use_id",
                    "tool_result_size_bytes",
                    "tool_input_size_bytes",
                    "decision_type",
                    "decision_source",
                    "mcp_server_scope",
                ],
            );
            Part::Tool(Tool {
                key: text(attrs, "tool_use_id"),
                name: text(attrs, "tool_name"),
                arguments: text(attrs, "tool_input")
                    .or_else(|| text(attrs, "tool_parameters"))
                    .map(|t| json_or_text(&t)),
                start_ms: start_from(time_ms, number(attrs, "duration_ms")),
                end_ms: Some(time_ms),
                success,
                error: (success == Some(false))
                    .then(|| text(attrs, "error").unwrap_or_else(|| "tool failed".to_owned())),
                metadata,
                ..Tool::default()
            })
        }
        _ => return None,
    };
    Some(Item {
        conversation: text(attrs, "session.id"),
        links: links(attrs, record.trace_id.as_deref()),
        time_ms,
        part,
        span: None,
    })
}

/// The turn item of one Claude Code span.
pub fn from_span(_cx: &Context<'_>, span: &Span<'static>) -> Option<Item> {
    let attrs = &span.attributes;
    let (start_ms, end_ms) = span_times(span);
    let time_ms = start_ms.or(end_ms)?;
    let part = match span.name.as_ref() {
        "claude_code.interaction" => Part::TurnSpan(Prompt {
            text: text(attrs, "user_prompt"),
            user_id: user_id(attrs),
            ..Prompt::default()
        }),
        "claude_code.llm_request" => Part::Generation(Generation {
            key: text(attrs, "request_id").or_else(|| text(attrs, "gen_ai.response.id")),
            model: text(attrs, "gen_ai.response.model")
                .or_else(|| text(attrs, "model"))
                .or_else(|| text(attrs, "gen_ai.request.model")),
            usage: usage(attrs),
            start_ms,
            end_ms,
            ttft_ms: number(attrs, "ttft_ms"),
            error: (boolean(attrs, "success") == Some(false))
                .then(|| text(attrs, "error").unwrap_or_else(|| "request failed".to_owned())),
            metadata: request_facts(attrs),
            ..Generation::default()
        }),
        "claude_code.tool" => {
            let mut metadata = Map::new();
            copy_facts(
                &mut metadata,
                attrs,
                &["full_command", "bash_command_class", "bash_argv0"],
            );
            Part::Tool(Tool {
                key: text(attrs, "tool_use_id").or_else(|| text(attrs, "gen_ai.tool.call.id")),
                name: text(attrs, "gen_ai.tool.name").or_else(|| text(attrs, "tool_name")),
                start_ms,
                end_ms,
                metadata,
                ..Tool::default()
            })
        }
        _ => Part::Internal,
    };
    Some(Item {
        conversation: text(attrs, "session.id").or_else(|| text(attrs, "gen_ai.conversation.id")),
        links: vec![format!("trace:{}", span.trace_id)],
        time_ms,
        part,
        span: Some(Box::new(span.clone())),
    })
}
