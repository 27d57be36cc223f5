//! Codex CLI: log events (`event.name` `codex.*`, body empty) and `tracing` spans (hundreds per
//! turn, most without LLM work).
//!
//! | event / span | becomes |
//! |---|---|
//! | `codex.user_prompt` (`prompt`, `conversation.id`) | the turn's prompt and session |
//! | `codex.conversation_starts` (`provider_name`, `approval_policy`, `sandbox_policy`, …) | turn metadata |
//! | `codex.api_request` (`duration_ms` to the response headers, `http.response.status_code`) | the start of a generation (paired in order with the next usage event); level ERROR when the status is ≥ 400 |
//! | `codex.sse_event` `response.completed` with `input_token_count` (incl. cached), `cached_token_count`, `cache_write_token_count`, `output_token_count` (incl. reasoning), `reasoning_token_count`, `tool_token_count` (= input + output), `ttft_ms` | a generation's usage (the twin `response.completed` record without counts is ignored) |
//! | `codex.tool_decision` (`call_id`, `decision`, `source`) | the tool's decision |
//! | `codex.tool_result` (`call_id`, `tool_name`, `arguments`, `output`, `success`, `duration_ms`) | a tool call |
//! | span `turn/start` (`turn.id`) | the turn's ids |
//! | span `run_sampling_request` / `handle_responses` with `gen_ai.usage.*` | a request's start / usage on the span side: enriches the log generations in order, counted only when the logs have none |
//! | spans with `call_id` and `tool_name` (`exec`, `exec_command`) | enrich the tool call |
//! | span `session_task.turn` (`model`, `codex.turn.reasoning_effort`) | turn metadata (its turn totals are not added: they repeat the requests') |
//! | every other span | internal |
//!
//! Turn links: the trace id (the prompt, request and outer tool events carry the turn's trace),
//! `turn.id`/`turn_id` (on the turn's spans and on the nested tool's separate trace). Usage
//! events carry neither: they join the turn of their conversation by time.

use serde_json::Map;

use super::model::{
    Context, Generation, Item, Part, Prompt, Request, Tool, boolean, copy_facts, json_or_text,
    number, span_times, start_from, text, usage_entry, user_id,
};
use crate::log::LogRecord;
use crate::span::{Attributes, Span};

fn links(attrs: &Attributes<'_>, trace_id: Option<&str>) -> Vec<String> {
    let mut links = Vec::new();
    if let Some(t) = trace_id {
        links.push(format!("trace:{t}"));
    }
    if let Some(turn) = text(attrs, "turn.id").or_else(|| text(attrs, "turn_id")) {
        links.push(format!("turn:{turn}"));
    }
    links
}

/// Codex's counts are inclusive: `input` includes the cached tokens, `output` the reasoning
/// tokens. Langfuse's keys are exclusive, so the parts are subtracted.
fn usage(
    input: Option<f64>,
    cached: Option<f64>,
    cache_write: Option<f64>,
    output: Option<f64>,
    reasoning: Option<f64>,
    total: Option<f64>,
) -> Vec<(&'static str, f64)> {
    let mut usage = Vec::new();
    let minus = |a: Option<f64>, b: Option<f64>| a.map(|a| a - b.unwrap_or(0.0));
    usage_entry(
        &mut usage,
        "input",
        minus(minus(input, cached), cache_write),
    );
    usage_entry(&mut usage, "input_cache_read", cached);
    usage_entry(&mut usage, "input_cache_creation", cache_write);
    usage_entry(&mut usage, "output", minus(output, reasoning));
    usage_entry(&mut usage, "output_reasoning", reasoning);
    usage_entry(&mut usage, "total", total);
    usage
}

/// The turn item of one Codex log record (`None`: not part of a turn).
pub fn from_log(_cx: &Context<'_>, record: &LogRecord) -> Option<Item> {
    let attrs = &record.attributes;
    let time_ms = record.time_ms()?;
    let part = match text(attrs, "event.name")?.as_str() {
        "codex.user_prompt" => {
            let mut facts = Map::new();
            copy_facts(
                &mut facts,
                attrs,
                &["app.version", "originator", "terminal.type", "model"],
            );
            Part::Prompt(Prompt {
                text: text(attrs, "prompt"),
                user_id: user_id(attrs),
                prompt_id: None,
                facts,
            })
        }
        "codex.conversation_starts" => {
            let mut facts = Map::new();
            copy_facts(
                &mut facts,
                attrs,
                &[
                    "provider_name",
                    "approval_policy",
                    "sandbox_policy",
                    "reasoning_effort",
                    "reasoning_summary",
                    "model",
                    "app.version",
                ],
            );
            Part::Facts(facts)
        }
        "codex.api_request" => {
            let status = number(attrs, "http.response.status_code");
            let mut metadata = Map::new();
            copy_facts(
                &mut metadata,
                attrs,
                &["endpoint", "attempt", "http.response.status_code"],
            );
            let error = text(attrs, "error.message")
                .or_else(|| status.filter(|s| *s >= 400.0).map(|s| format!("HTTP {s}")));
            match error {
                Some(error) => Part::Generation(Generation {
                    model: text(attrs, "model"),
                    start_ms: start_from(time_ms, number(attrs, "duration_ms")),
                    end_ms: Some(time_ms),
                    error: Some(error),
                    metadata,
                    ..Generation::default()
                }),
                None => Part::Request(Request {
                    key: None,
                    start_ms: start_from(time_ms, number(attrs, "duration_ms")),
                    model: text(attrs, "model"),
                    metadata,
                }),
            }
        }
        "codex.sse_event" => {
            let kind = text(attrs, "event.kind").unwrap_or_default();
            if kind == "response.failed" {
                Part::Generation(Generation {
                    model: text(attrs, "model"),
                    end_ms: Some(time_ms),
                    error: Some(
                        text(attrs, "error.message").unwrap_or_else(|| "response failed".into()),
                    ),
                    ..Generation::default()
                })
            } else if kind == "response.completed" && attrs.contains("input_token_count") {
                let input = number(attrs, "input_token_count");
                let output = number(attrs, "output_token_count");
                // `tool_token_count` is the request's total (input + output) in the versions
                // seen; any other value is kept under its own name, never added.
                let tool = number(attrs, "tool_token_count");
                let total = match (input, output, tool) {
                    (Some(i), Some(o), Some(t)) if (i + o - t).abs() < 0.5 => Some(t),
                    _ => None,
                };
                let mut usage = usage(
                    input,
                    number(attrs, "cached_token_count"),
                    number(attrs, "cache_write_token_count"),
                    output,
                    number(attrs, "reasoning_token_count"),
                    total,
                );
                if total.is_none() {
                    usage_entry(&mut usage, "tool", tool);
                }
                let mut metadata = Map::new();
                copy_facts(&mut metadata, attrs, &["model_reasoning_effort"]);
                Part::Generation(Generation {
                    model: text(attrs, "model"),
                    usage,
                    end_ms: Some(time_ms),
                    ttft_ms: number(attrs, "ttft_ms"),
                    metadata,
                    ..Generation::default()
                })
            } else {
                return None;
            }
        }
        "codex.tool_decision" => {
            let mut metadata = Map::new();
            if let Some(d) = text(attrs, "decision") {
                metadata.insert("decision".into(), d.into());
            }
            if let Some(s) = text(attrs, "source") {
                metadata.insert("decision_source".into(), s.into());
            }
            Part::Tool(Tool {
                key: text(attrs, "call_id"),
                name: text(attrs, "tool_name"),
                metadata,
                ..Tool::default()
            })
        }
        "codex.tool_result" => {
            let success = boolean(attrs, "success");
            let output = text(attrs, "output");
            let mut metadata = Map::new();
            copy_facts(
                &mut metadata,
                attrs,
                &[
                    "call_id",
                    "tool_namespace",
                    "mcp_server",
                    "output_truncated",
                    "agent_name",
                ],
            );
            Part::Tool(Tool {
                key: text(attrs, "call_id"),
                name: text(attrs, "tool_name"),
                arguments: text(attrs, "arguments").map(|t| json_or_text(&t)),
                start_ms: start_from(time_ms, number(attrs, "duration_ms")),
                end_ms: Some(time_ms),
                success,
                error: (success == Some(false))
                    .then(|| output.clone().unwrap_or_else(|| "tool failed".to_owned())),
                result: output.map(serde_json::Value::String),
                metadata,
            })
        }
        _ => return None,
    };
    Some(Item {
        conversation: text(attrs, "conversation.id"),
        links: links(attrs, record.trace_id.as_deref()),
        time_ms,
        part,
        span: None,
    })
}

/// The turn item of one Codex span.
pub fn from_span(_cx: &Context<'_>, span: &Span<'static>) -> Option<Item> {
    let attrs = &span.attributes;
    let (start_ms, end_ms) = span_times(span);
    let time_ms = start_ms.or(end_ms)?;
    let part = match span.name.as_ref() {
        "turn/start" => Part::TurnSpan(Prompt::default()),
        "session_task.turn" => {
            let mut facts = Map::new();
            copy_facts(&mut facts, attrs, &["model", "codex.turn.reasoning_effort"]);
            Part::Facts(facts)
        }
        "run_sampling_request" => {
            let mut facts = Map::new();
            if let Some(cwd) = text(attrs, "cwd") {
                facts.insert("cwd".into(), cwd.into());
                // (The request itself is described by its events; the span only adds cwd.)
            }
            Part::Request(Request {
                key: None,
                start_ms,
                model: text(attrs, "model"),
                metadata: facts,
            })
        }
        "handle_responses" if attrs.contains("gen_ai.usage.input_tokens") => {
            let input = number(attrs, "gen_ai.usage.input_tokens");
            let output = number(attrs, "gen_ai.usage.output_tokens");
            Part::Generation(Generation {
                usage: usage(
                    input,
                    number(attrs, "gen_ai.usage.cache_read.input_tokens"),
                    number(attrs, "gen_ai.usage.cache_write.input_tokens"),
                    output,
                    number(attrs, "codex.usage.reasoning_output_tokens"),
                    number(attrs, "codex.usage.total_tokens"),
                ),
                end_ms,
                ..Generation::default()
            })
        }
        _ if attrs.contains("call_id") && attrs.contains("tool_name") => Part::Tool(Tool {
            key: text(attrs, "call_id"),
            name: text(attrs, "tool_name"),
            start_ms,
            end_ms,
            metadata: {
                let mut m = Map::new();
                copy_facts(&mut m, attrs, &["tool_source"]);
                m
            },
            ..Tool::default()
        }),
        _ => Part::Internal,
    };
    Some(Item {
        conversation: text(attrs, "conversation.id"),
        links: links(attrs, Some(&span.trace_id)),
        time_ms,
        part,
        span: Some(Box::new(span.clone())),
    })
}
