//! Gemini CLI: log events (`event.name` `gemini_cli.*`), spans `llm_call`, `tool_call`,
//! `schedule_tool_calls` (each model call its own trace; no turn span).
//!
//! | event / span | becomes |
//! |---|---|
//! | `gemini_cli.user_prompt` (`prompt`, `prompt_id`, `session.id`) | the turn's prompt and session |
//! | `gemini_cli.config` (`model`, `approval_mode`, `sandbox_enabled`, …), `gemini_cli.model_routing` | turn metadata |
//! | `gemini_cli.api_request` (`model`, `role`) | the start of a generation (paired in order with the next response) |
//! | `gemini_cli.api_response` (`input_token_count` incl. cached, `cached_content_token_count`, `output_token_count`, `thoughts_token_count`, `tool_token_count`, `total_token_count`, `duration_ms`, `response_text`) | a generation |
//! | `gemini_cli.api_error` (`model`, `error`, `duration_ms`) | a generation with level ERROR |
//! | `gemini_cli.tool_call` (`function_name`, `function_args`, `success`, `decision`, `duration_ms`, `error`) | a tool call |
//! | span `llm_call` | enriches the generation of its trace (the request event carries that trace) |
//! | span `tool_call` (`gen_ai.tool.call_id`, `gen_ai.input.messages`, `gen_ai.output.messages`) | enriches the tool call: call id, result |
//! | other spans (`schedule_tool_calls`), `gen_ai.client.inference.operation.details` events | internal / ignored (they repeat the above) |
//!
//! Turn links: only trace ids (a request event and its `llm_call` span). In headless mode
//! `prompt_id` equals the session id, so it does not tell turns apart: the other items join
//! the turn of their session by time.

use serde_json::{Map, Value};

use super::model::{
    Context, Generation, Item, Part, Prompt, Request, Tool, boolean, copy_facts, json_or_text,
    number, span_times, start_from, text, usage_entry, user_id,
};
use crate::log::LogRecord;
use crate::span::{Span, StatusCode};

fn links(trace_id: Option<&str>) -> Vec<String> {
    trace_id
        .map(|t| vec![format!("trace:{t}")])
        .unwrap_or_default()
}

/// The text parts of a `generateContent` response (or of the array of streamed chunks).
fn response_text(raw: &str) -> Option<String> {
    let value: Value = serde_json::from_str(raw).ok()?;
    let chunks = match value {
        Value::Array(chunks) => chunks,
        other => vec![other],
    };
    let mut out = String::new();
    for chunk in &chunks {
        for candidate in chunk["candidates"].as_array().into_iter().flatten() {
            for part in candidate["content"]["parts"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(t) = part["text"].as_str()
                    && part["thought"] != Value::Bool(true)
                {
                    out.push_str(t);
                }
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The turn item of one Gemini CLI log record (`None`: not part of a turn).
pub fn from_log(_cx: &Context<'_>, record: &LogRecord) -> Option<Item> {
    let attrs = &record.attributes;
    let time_ms = record.time_ms()?;
    let part = match text(attrs, "event.name")?.as_str() {
        "gemini_cli.user_prompt" => {
            let mut facts = Map::new();
            copy_facts(&mut facts, attrs, &["auth_type", "interactive"]);
            Part::Prompt(Prompt {
                text: text(attrs, "prompt"),
                user_id: user_id(attrs),
                prompt_id: text(attrs, "prompt_id"),
                facts,
            })
        }
        "gemini_cli.config" => {
            let mut facts = Map::new();
            copy_facts(
                &mut facts,
                attrs,
                &[
                    "model",
                    "approval_mode",
                    "sandbox_enabled",
                    "output_format",
                    "worktree_active",
                    "mcp_servers_count",
                    "extensions_count",
                ],
            );
            Part::Facts(facts)
        }
        "gemini_cli.model_routing" => {
            let mut facts = Map::new();
            copy_facts(
                &mut facts,
                attrs,
                &["decision_model", "decision_source", "routing_latency_ms"],
            );
            let mut outer = Map::new();
            outer.insert("model_routing".into(), Value::Object(facts));
            Part::Facts(outer)
        }
        "gemini_cli.api_request" => {
            let mut metadata = Map::new();
            copy_facts(&mut metadata, attrs, &["role"]);
            Part::Request(Request {
                key: record.trace_id.clone(),
                start_ms: Some(time_ms),
                model: text(attrs, "model"),
                metadata,
            })
        }
        "gemini_cli.api_response" => {
            let input = number(attrs, "input_token_count");
            let cached = number(attrs, "cached_content_token_count");
            let mut usage = Vec::new();
            usage_entry(
                &mut usage,
                "input",
                input.map(|i| i - cached.unwrap_or(0.0)),
            );
            usage_entry(&mut usage, "input_cache_read", cached);
            usage_entry(&mut usage, "output", number(attrs, "output_token_count"));
            usage_entry(
                &mut usage,
                "output_reasoning",
                number(attrs, "thoughts_token_count"),
            );
            usage_entry(&mut usage, "input_tool", number(attrs, "tool_token_count"));
            usage_entry(&mut usage, "total", number(attrs, "total_token_count"));
            let mut metadata = Map::new();
            copy_facts(
                &mut metadata,
                attrs,
                &["role", "status_code", "finish_reasons"],
            );
            Part::Generation(Generation {
                key: record.trace_id.clone(),
                model: text(attrs, "model"),
                usage,
                start_ms: start_from(time_ms, number(attrs, "duration_ms")),
                end_ms: Some(time_ms),
                output: text(attrs, "response_text")
                    .and_then(|r| response_text(&r))
                    .map(Value::String),
                metadata,
                ..Generation::default()
            })
        }
        "gemini_cli.api_error" => {
            let mut metadata = Map::new();
            copy_facts(&mut metadata, attrs, &["role", "status_code", "error_type"]);
            Part::Generation(Generation {
                key: record.trace_id.clone(),
                model: text(attrs, "model"),
                start_ms: start_from(time_ms, number(attrs, "duration_ms")),
                end_ms: Some(time_ms),
                error: Some(text(attrs, "error").unwrap_or_else(|| "API error".to_owned())),
                metadata,
                ..Generation::default()
            })
        }
        "gemini_cli.tool_call" => {
            let success = boolean(attrs, "success");
            let mut metadata = Map::new();
            copy_facts(
                &mut metadata,
                attrs,
                &[
                    "tool_type",
                    "content_length",
                    "mcp_server_name",
                    "error_type",
                ],
            );
            if let Some(d) = text(attrs, "decision") {
                metadata.insert("decision".into(), d.into());
            }
            Part::Tool(Tool {
                key: None,
                name: text(attrs, "function_name"),
                arguments: text(attrs, "function_args").map(|t| json_or_text(&t)),
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
        links: links(record.trace_id.as_deref()),
        time_ms,
        part,
        span: None,
    })
}

/// The turn item of one Gemini CLI span.
pub fn from_span(cx: &Context<'_>, span: &Span<'static>) -> Option<Item> {
    let attrs = &span.attributes;
    let (start_ms, end_ms) = span_times(span);
    let time_ms = start_ms.or(end_ms)?;
    let failed = span.status_code == StatusCode::Error;
    let part = match span.name.as_ref() {
        "llm_call" => {
            let mut usage = Vec::new();
            usage_entry(
                &mut usage,
                "input",
                number(attrs, "gen_ai.usage.input_tokens"),
            );
            usage_entry(
                &mut usage,
                "output",
                number(attrs, "gen_ai.usage.output_tokens"),
            );
            Part::Generation(Generation {
                key: Some(span.trace_id.to_string()),
                model: text(attrs, "gen_ai.response.model")
                    .or_else(|| text(attrs, "gen_ai.request.model")),
                usage,
                start_ms,
                end_ms,
                error: failed.then(|| {
                    span.status_message
                        .as_deref()
                        .unwrap_or("request failed")
                        .to_owned()
                }),
                ..Generation::default()
            })
        }
        "tool_call" => {
            let input = text(attrs, "gen_ai.input.messages").map(|t| json_or_text(&t));
            Part::Tool(Tool {
                key: text(attrs, "gen_ai.tool.call_id"),
                name: text(attrs, "gen_ai.tool.name"),
                arguments: input.as_ref().and_then(|i| i.get("args").cloned()),
                result: text(attrs, "gen_ai.output.messages").map(|t| json_or_text(&t)),
                start_ms,
                end_ms,
                success: Some(!failed),
                error: failed.then(|| {
                    span.status_message
                        .as_deref()
                        .unwrap_or("tool failed")
                        .to_owned()
                }),
                metadata: Map::new(),
            })
        }
        _ => Part::Internal,
    };
    Some(Item {
        conversation: text(attrs, "gen_ai.conversation.id")
            .or_else(|| text(cx.resource, "session.id")),
        links: links(Some(&span.trace_id)),
        time_ms,
        part,
        span: Some(Box::new(span.clone())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_chunks_are_joined() {
        let raw = r#"[{"candidates":[{"content":{"parts":[{"text":"The directory contains "}]}}]},
                      {"candidates":[{"content":{"parts":[{"text":"a.txt."},{"text":"hidden","thought":true}]}}]}]"#;
        assert_eq!(
            response_text(raw).as_deref(),
            Some("The directory contains a.txt.")
        );
        assert_eq!(response_text("not json"), None);
    }
}
