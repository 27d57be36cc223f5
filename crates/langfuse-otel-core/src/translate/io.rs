//! Input and output: one ordered chain of conventions (server: `extractInputAndOutput`).
//!
//! The first stage that finds something returns both sides from that same stage; values are
//! passed through as received except where a convention is parsed (Genkit, Flue, span events,
//! indexed keys, system instructions).

mod rebuild;
mod tools;

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::SpanContext;
use crate::keys;
use crate::record::Metadata;
use crate::span::{Attributes, SpanEvent};
use crate::value::{AttrValue, js_json_stringify, json_is_truthy, json_parse};

/// Which record the input/output is derived for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoTarget {
    /// The observation of the span.
    Observation,
    /// The trace of a root span (`langfuse.trace.input`/`output` first).
    Trace,
}

/// Scope of Genkit's tracer.
const SCOPE_GENKIT: &str = "genkit-tracer";
/// Scope of Flue's OpenTelemetry integration.
const SCOPE_FLUE: &str = "@flue/opentelemetry";
/// Scope of Pydantic AI.
const SCOPE_PYDANTIC_AI: &str = "pydantic-ai";

/// One side: `None` = undefined, `Some(Value::Null)` = null.
type Side = Option<Value>;

/// Input and output of a span. `None` means undefined (the key is omitted), `Some(Value::Null)`
/// means `null`.
pub fn input_output(cx: &SpanContext<'_, '_>, target: IoTarget) -> (Option<Value>, Option<Value>) {
    chain(cx.attrs(), &cx.span.events, cx.scope_name(), target)
}

/// Moves tool definitions found in the metadata into the input (server:
/// `normalizeToolMetadataForObservation`).
pub fn move_tool_definitions(metadata: &mut Metadata, input: &mut Option<Option<Value>>) {
    tools::move_tool_definitions(metadata, input);
}

fn json(v: Option<&AttrValue<'_>>) -> Side {
    v.map(AttrValue::to_json)
}

fn truthy(v: Option<&AttrValue<'_>>) -> bool {
    v.is_some_and(AttrValue::is_truthy)
}

/// A plain stage: both keys read; the stage yields when either value is truthy.
fn pair(attrs: &Attributes<'_>, input_key: &str, output_key: &str) -> Option<(Side, Side)> {
    let (i, o) = (attrs.get(input_key), attrs.get(output_key));
    (truthy(i) || truthy(o)).then(|| (json(i), json(o)))
}

/// `a ?? b ?? …` over attribute keys.
fn first_present<'v, 'a>(attrs: &'v Attributes<'a>, keys: &[&str]) -> Option<&'v AttrValue<'a>> {
    keys.iter().find_map(|k| attrs.get(k))
}

/// The whole chain over one attribute set (span attributes, or a legacy event's attributes).
fn chain(
    attrs: &Attributes<'_>,
    events: &[SpanEvent<'_>],
    scope: &str,
    target: IoTarget,
) -> (Side, Side) {
    if let Some(found) = langfuse_stage(attrs, target) {
        return found;
    }
    match scope {
        SCOPE_GENKIT => return genkit_stage(attrs),
        keys::SCOPE_VERCEL_AI => return vercel_stage(attrs),
        SCOPE_FLUE => {
            if let Some(found) = flue_stage(attrs) {
                return found;
            }
        }
        _ => {}
    }
    if let Some(found) = events_stages(events, scope) {
        return found;
    }
    if let Some(found) = vertex_stage(attrs) {
        return found;
    }
    if let Some(found) = pair(attrs, keys::LOGFIRE_PROMPT, keys::LOGFIRE_ALL_MESSAGES_EVENTS) {
        return found;
    }
    if let Some(found) = livekit_stage(attrs) {
        return found;
    }
    if let Some(found) = logfire_events_stage(attrs) {
        return found;
    }
    for (i, o) in [
        (keys::MLFLOW_SPAN_INPUTS, keys::MLFLOW_SPAN_OUTPUTS),
        (keys::TRACELOOP_ENTITY_INPUT, keys::TRACELOOP_ENTITY_OUTPUT),
        (keys::INPUT_VALUE, keys::OUTPUT_VALUE),
        (keys::INPUT, keys::OUTPUT),
    ] {
        if let Some(found) = pair(attrs, i, o) {
            return found;
        }
    }
    if scope == SCOPE_PYDANTIC_AI {
        let i = attrs
            .get(keys::PYDANTIC_AI_ALL_MESSAGES)
            .map_or(Value::Null, |v| with_system_instructions(attrs, v));
        let o = json(attrs.get(keys::FINAL_RESULT)).unwrap_or(Value::Null);
        if json_is_truthy(&i) || json_is_truthy(&o) {
            return (Some(i), Some(o));
        }
    }
    if let Some(found) = pair(attrs, keys::TOOL_ARGUMENTS, keys::TOOL_RESPONSE) {
        return found;
    }
    for (i, o) in [
        (keys::GEN_AI_PROMPT, keys::GEN_AI_COMPLETION),
        (keys::LLM_INPUT_MESSAGES, keys::LLM_OUTPUT_MESSAGES),
    ] {
        if attrs.has_prefix(i) || attrs.has_prefix(o) {
            return (
                Some(rebuild::rebuild(attrs, i)),
                Some(rebuild::rebuild(attrs, o)),
            );
        }
    }
    if let Some(found) = gen_ai_messages(attrs) {
        return found;
    }
    (Some(Value::Null), Some(Value::Null))
}

/// Stage 1: explicit Langfuse attributes (yield when present, whatever the value).
fn langfuse_stage(attrs: &Attributes<'_>, target: IoTarget) -> Option<(Side, Side)> {
    let pick = |trace_key: &str, observation_key: &str| match target {
        IoTarget::Trace => attrs
            .truthy(trace_key)
            .or_else(|| attrs.get(observation_key)),
        IoTarget::Observation => attrs.get(observation_key),
    };
    let i = pick(keys::LANGFUSE_TRACE_INPUT, keys::LANGFUSE_OBSERVATION_INPUT);
    let o = pick(keys::LANGFUSE_TRACE_OUTPUT, keys::LANGFUSE_OBSERVATION_OUTPUT);
    (i.is_some() || o.is_some()).then(|| (json(i), json(o)))
}

/// Stage 2: Genkit JSON (`.messages` of the input, `.message` of the output); always returns.
fn genkit_stage(attrs: &Attributes<'_>) -> (Side, Side) {
    let side = |key: &str, member: &str| -> Value {
        let Some(v) = attrs.get(key) else {
            return Value::Null;
        };
        let parsed = match v {
            AttrValue::Str(s) => json_parse(s).unwrap_or_else(|| v.to_json()),
            other => other.to_json(),
        };
        match parsed {
            Value::Object(mut obj) => match obj.shift_remove(member) {
                Some(inner) if !inner.is_null() => inner,
                _ => Value::Object(obj),
            },
            other => other,
        }
    };
    (
        Some(side(keys::GENKIT_INPUT, "messages")),
        Some(side(keys::GENKIT_OUTPUT, "message")),
    )
}

/// Stage 3: Vercel AI SDK; missing sides come from the GenAI conventions; always returns.
fn vercel_stage(attrs: &Attributes<'_>) -> (Side, Side) {
    let mut input = json(first_present(
        attrs,
        &[keys::AI_PROMPT_MESSAGES, keys::AI_PROMPT, keys::AI_TOOL_CALL_ARGS],
    ));
    let text = attrs.get(keys::AI_RESPONSE_TEXT);
    let tool_calls = attrs.get(keys::AI_RESPONSE_TOOL_CALLS);
    let mut output = match (text, tool_calls) {
        (Some(text), Some(calls)) => {
            let mut m = Map::new();
            m.insert("role".into(), Value::String("assistant".into()));
            m.insert("content".into(), text.to_json());
            m.insert("tool_calls".into(), calls.to_json());
            Some(Value::String(js_json_stringify(&Value::Object(m))))
        }
        (Some(text), _) if text.is_truthy() => Some(text.to_json()),
        _ => json(first_present(
            attrs,
            &[
                keys::AI_RESULT_TEXT,
                keys::AI_TOOL_CALL_RESULT,
                keys::AI_RESPONSE_OBJECT,
                keys::AI_RESULT_OBJECT,
                keys::AI_RESPONSE_TOOL_CALLS,
                keys::AI_RESULT_TOOL_CALLS,
            ],
        )),
    };
    if (input.is_none() || output.is_none())
        && let Some((gi, go)) = gen_ai_messages(attrs)
    {
        input = input.or(gi);
        output = output.or(go);
    }
    (input, output)
}

/// Stage 4: Flue; JSON text is parsed.
fn flue_stage(attrs: &Attributes<'_>) -> Option<(Side, Side)> {
    let parse = |v: Option<&AttrValue<'_>>| -> Side {
        v.map(|v| match v {
            AttrValue::Str(s) => json_parse(s).unwrap_or_else(|| v.to_json()),
            other => other.to_json(),
        })
    };
    let i = first_present(attrs, keys::FLUE_INPUT_KEYS);
    let o = first_present(attrs, keys::FLUE_OUTPUT_KEYS);
    (i.is_some() || o.is_some()).then(|| (parse(i), parse(o)))
}

/// The attributes of an event as a JSON object, in event order (last duplicate wins).
fn event_object(event: &SpanEvent<'_>, role: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(role) = role {
        m.insert("role".into(), Value::String(role.to_owned()));
    }
    for (k, v) in &event.attributes {
        m.insert(k.to_string(), v.to_json());
    }
    m
}

fn event_attributes<'a>(event: &SpanEvent<'a>) -> Attributes<'a> {
    Attributes::from_pairs(event.attributes.iter().cloned())
}

/// Stages 5–7: span events (inference details, message events, legacy content events).
fn events_stages(events: &[SpanEvent<'_>], scope: &str) -> Option<(Side, Side)> {
    if events.is_empty() {
        return None;
    }
    if let Some(details) = events
        .iter()
        .find(|e| e.name == keys::EVENT_GEN_AI_INFERENCE_DETAILS)
        && let Some(found) = gen_ai_messages(&event_attributes(details))
    {
        return Some(found);
    }

    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for event in events {
        let role = match event.name.as_ref() {
            "gen_ai.system.message" => "system",
            "gen_ai.user.message" => "user",
            "gen_ai.assistant.message" => "assistant",
            "gen_ai.tool.message" => "tool",
            "gen_ai.choice" => {
                outputs.push(Value::Object(event_object(event, None)));
                continue;
            }
            _ => continue,
        };
        inputs.push(Value::Object(event_object(event, Some(role))));
    }
    if !inputs.is_empty() || !outputs.is_empty() {
        let input = if inputs.is_empty() {
            Value::Null
        } else {
            Value::Array(inputs)
        };
        let output = match outputs.len() {
            0 => Value::Null,
            1 => outputs.pop().unwrap_or(Value::Null),
            _ => Value::Array(outputs),
        };
        return Some((Some(input), Some(output)));
    }

    let prompt = events.iter().find(|e| e.name == "gen_ai.content.prompt");
    let completion = events.iter().find(|e| e.name == "gen_ai.content.completion");
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    // The event's attributes re-run through the chain; the raw object when that finds nothing.
    let side = |event: Option<&SpanEvent<'_>>, pick_output: bool| -> Value {
        let Some(event) = event else {
            return Value::Object(Map::new());
        };
        let attrs = event_attributes(event);
        let (i, o) = chain(&attrs, &[], scope, IoTarget::Observation);
        let found = if pick_output { o } else { i };
        match found {
            Some(v) if json_is_truthy(&v) => v,
            _ => Value::Object(event_object(event, None)),
        }
    };
    Some((Some(side(prompt, false)), Some(side(completion, true))))
}

/// Stage 8: Google ADK; a `"{}"` or empty request/response defers to the tool attributes.
fn vertex_stage(attrs: &Attributes<'_>) -> Option<(Side, Side)> {
    let side = |main: &str, tool: &str| {
        let v = attrs.get(main);
        if v.is_some_and(|v| v.is_truthy() && v.as_str() != Some("{}")) {
            v
        } else {
            attrs.get(tool)
        }
    };
    let i = side(keys::VERTEX_LLM_REQUEST, keys::VERTEX_TOOL_CALL_ARGS);
    let o = side(keys::VERTEX_LLM_RESPONSE, keys::VERTEX_TOOL_RESPONSE);
    (truthy(i) || truthy(o)).then(|| (json(i), json(o)))
}

/// Stage 10: LiveKit.
fn livekit_stage(attrs: &Attributes<'_>) -> Option<(Side, Side)> {
    let i = first_present(attrs, keys::LIVEKIT_INPUT_KEYS);
    let o = match attrs.get(keys::LIVEKIT_FUNCTION_TOOL_OUTPUT) {
        Some(v) if v.is_truthy() => Some(v),
        _ => attrs.get(keys::LIVEKIT_RESPONSE_TEXT),
    };
    (truthy(i) || truthy(o)).then(|| (json(i), json(o)))
}

/// Stage 11: Logfire's `events` attribute: the `gen_ai.choice` element is the output.
fn logfire_events_stage(attrs: &Attributes<'_>) -> Option<(Side, Side)> {
    let items: Vec<Value> = match attrs.get(keys::LOGFIRE_EVENTS)? {
        AttrValue::Str(s) => match json_parse(s) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        AttrValue::Array(items) => items.iter().map(AttrValue::to_json).collect(),
        _ => return None,
    };
    let is_choice = |e: &Value| e.get("event.name").and_then(Value::as_str) == Some("gen_ai.choice");
    let choice = items.iter().find(|e| is_choice(e)).cloned();
    let inputs: Vec<Value> = items.into_iter().filter(|e| !is_choice(e)).collect();
    if choice.is_none() && inputs.is_empty() {
        return None;
    }
    let input = if inputs.is_empty() {
        Value::Null
    } else {
        Value::Array(inputs)
    };
    Some((Some(input), Some(choice.unwrap_or(Value::Null))))
}

/// Helper G: `gen_ai.input.messages`/`gen_ai.output.messages` (system instructions prepended),
/// else `gen_ai.tool.call.arguments`/`result`.
fn gen_ai_messages(attrs: &Attributes<'_>) -> Option<(Side, Side)> {
    let i = attrs.get(keys::GEN_AI_INPUT_MESSAGES);
    let o = attrs.get(keys::GEN_AI_OUTPUT_MESSAGES);
    if truthy(i) || truthy(o) {
        return Some((i.map(|v| with_system_instructions(attrs, v)), json(o)));
    }
    pair(
        attrs,
        keys::GEN_AI_TOOL_CALL_ARGUMENTS,
        keys::GEN_AI_TOOL_CALL_RESULT,
    )
}

/// `gen_ai.system_instructions` prepended as a system message to a message array that has
/// none; the result is JSON text again when the messages were.
fn with_system_instructions(attrs: &Attributes<'_>, messages: &AttrValue<'_>) -> Value {
    let Some(instructions) = attrs.truthy(keys::GEN_AI_SYSTEM_INSTRUCTIONS) else {
        return messages.to_json();
    };
    let (mut items, was_text) = match messages {
        AttrValue::Str(s) => match json_parse(s) {
            Some(Value::Array(items)) => (items, true),
            _ => return messages.to_json(),
        },
        AttrValue::Array(items) => (items.iter().map(AttrValue::to_json).collect(), false),
        _ => return messages.to_json(),
    };
    let has_system = items
        .iter()
        .any(|m| m.get("role").and_then(Value::as_str) == Some("system"));
    if has_system {
        return messages.to_json();
    }
    let mut system = Map::new();
    system.insert("role".into(), Value::String("system".into()));
    system.insert("content".into(), instruction_text(instructions));
    items.insert(0, Value::Object(system));
    let out = Value::Array(items);
    if was_text {
        Value::String(js_json_stringify(&out))
    } else {
        out
    }
}

/// The instruction text: a JSON array of parts is joined from their `content` with newlines.
fn instruction_text(instructions: &AttrValue<'_>) -> Value {
    let parts: Cow<'_, [Value]> = match instructions {
        AttrValue::Str(s) => match json_parse(s) {
            Some(Value::Array(parts)) => Cow::Owned(parts),
            _ => return Value::String(s.to_string()),
        },
        AttrValue::Array(items) => Cow::Owned(items.iter().map(AttrValue::to_json).collect()),
        other => return other.to_json(),
    };
    let mut text = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        // `Array.join` renders undefined/null as "" and strings verbatim.
        match part.get("content") {
            Some(Value::String(s)) => text.push_str(s),
            None | Some(Value::Null) => {}
            Some(other) => text.push_str(&js_json_stringify(other)),
        }
    }
    Value::String(text)
}
