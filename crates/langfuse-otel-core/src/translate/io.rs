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
///
/// In repair mode (`repair`):
///
/// * `gen_ai.prompt.name`, `gen_ai.prompt.version` and `gen_ai.prompt.variable.*` (prompt
///   template identity, not content) are not read as indexed Traceloop prompt keys; the server,
///   matching on the `gen_ai.prompt` prefix, makes `{"name": …, "version": …}` the input.
/// * Structured content on the `gen_ai.client.inference.operation.details` event (the
///   convention requires `AnyValue` maps there, which the server receives as
///   `{"kvlistValue":…}` text) is read as the messages it encodes.
pub fn input_output(
    cx: &SpanContext<'_, '_>,
    target: IoTarget,
    repair: bool,
) -> (Option<Value>, Option<Value>) {
    chain(cx.attrs(), &cx.span.events, cx.scope_name(), target, repair)
}

/// `gen_ai.prompt.name`, `gen_ai.prompt.version`, `gen_ai.prompt.variable.<key>`.
fn is_prompt_template_key(key: &str) -> bool {
    key == keys::GEN_AI_PROMPT_NAME
        || key == keys::GEN_AI_PROMPT_VERSION
        || key.starts_with(keys::GEN_AI_PROMPT_VARIABLE_PREFIX)
}

fn has_prompt_template_keys(attrs: &Attributes<'_>) -> bool {
    attrs.contains(keys::GEN_AI_PROMPT_NAME)
        || attrs.contains(keys::GEN_AI_PROMPT_VERSION)
        || attrs.has_prefix(keys::GEN_AI_PROMPT_VARIABLE_PREFIX)
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
    repair: bool,
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
    if let Some(found) = events_stages(events, scope, repair) {
        return found;
    }
    if let Some(found) = vertex_stage(attrs) {
        return found;
    }
    if let Some(found) = pair(
        attrs,
        keys::LOGFIRE_PROMPT,
        keys::LOGFIRE_ALL_MESSAGES_EVENTS,
    ) {
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
            // Repair: prompt template identity is not prompt content (only this stage reads
            // `gen_ai.prompt*` keys, so leaving them out here is leaving them out of the chain).
            if repair && i == keys::GEN_AI_PROMPT && has_prompt_template_keys(attrs) {
                let content = Attributes::from_pairs(
                    attrs
                        .iter()
                        .filter(|(k, _)| !is_prompt_template_key(k))
                        .map(|(k, v)| (Cow::Borrowed(k), v.clone())),
                );
                if content.has_prefix(i) || content.has_prefix(o) {
                    return (
                        Some(rebuild::rebuild(&content, i)),
                        Some(rebuild::rebuild(&content, o)),
                    );
                }
                continue;
            }
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
    let o = pick(
        keys::LANGFUSE_TRACE_OUTPUT,
        keys::LANGFUSE_OBSERVATION_OUTPUT,
    );
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
            Value::Object(mut obj) if obj.get(member).is_some_and(|m| !m.is_null()) => {
                obj.shift_remove(member).unwrap_or(Value::Null)
            }
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
        &[
            keys::AI_PROMPT_MESSAGES,
            keys::AI_PROMPT,
            keys::AI_TOOL_CALL_ARGS,
        ],
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

/// Stage 4: Flue; JSON text of an object or array is parsed, other text kept.
fn flue_stage(attrs: &Attributes<'_>) -> Option<(Side, Side)> {
    let parse = |v: Option<&AttrValue<'_>>| -> Side {
        v.map(|v| match v {
            AttrValue::Str(s) => match json_parse(s) {
                Some(parsed @ (Value::Object(_) | Value::Array(_))) => parsed,
                _ => v.to_json(),
            },
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

/// An event's attributes with structured `AnyValue` maps and arrays of maps (which arrive as
/// the JSON text of their wrapper, `{"kvlistValue":{"values":[…]}}`) turned into the JSON text of
/// the value they encode, as span attributes carry content.
fn structured_event_attributes<'a>(event: &SpanEvent<'a>) -> Attributes<'a> {
    Attributes::from_pairs(event.attributes.iter().map(|(k, v)| {
        let plain = match v {
            AttrValue::Str(s) if s.starts_with("{\"kvlistValue\"") => json_parse(s)
                .map(|w| AttrValue::Str(Cow::Owned(js_json_stringify(&any_value_json(&w))))),
            AttrValue::Array(items) if items.iter().any(is_wrapped_map) => {
                let values: Vec<Value> = items
                    .iter()
                    .map(|item| match item {
                        AttrValue::Str(s) if is_wrapped_map(item) => {
                            json_parse(s).map_or(Value::Null, |w| any_value_json(&w))
                        }
                        other => other.to_json(),
                    })
                    .collect();
                Some(AttrValue::Str(Cow::Owned(js_json_stringify(
                    &Value::Array(values),
                ))))
            }
            _ => None,
        };
        (k.clone(), plain.unwrap_or_else(|| v.clone()))
    }))
}

fn is_wrapped_map(v: &AttrValue<'_>) -> bool {
    v.as_str()
        .is_some_and(|s| s.starts_with("{\"kvlistValue\""))
}

/// The plain JSON of an OTLP/JSON `AnyValue` (`{"stringValue": …}`, `{"kvlistValue": …}`, …).
fn any_value_json(wrapper: &Value) -> Value {
    let Some(obj) = wrapper.as_object() else {
        return wrapper.clone();
    };
    let Some((kind, inner)) = obj.iter().next() else {
        return Value::Null;
    };
    match kind.as_str() {
        "stringValue" | "boolValue" | "bytesValue" => inner.clone(),
        "intValue" | "doubleValue" => match inner {
            Value::String(s) => s
                .parse::<f64>()
                .ok()
                .map_or_else(|| inner.clone(), crate::value::js_number),
            other => other.clone(),
        },
        "arrayValue" => Value::Array(
            inner
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().map(any_value_json).collect())
                .unwrap_or_default(),
        ),
        "kvlistValue" => {
            let mut m = Map::new();
            for kv in inner
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(key) = kv.get("key").and_then(Value::as_str) {
                    let value = kv.get("value").map_or(Value::Null, any_value_json);
                    m.insert(key.to_owned(), value);
                }
            }
            Value::Object(m)
        }
        _ => wrapper.clone(),
    }
}

/// Stages 5–7: span events (inference details, message events, legacy content events).
fn events_stages(events: &[SpanEvent<'_>], scope: &str, repair: bool) -> Option<(Side, Side)> {
    if events.is_empty() {
        return None;
    }
    if let Some(details) = events
        .iter()
        .find(|e| e.name == keys::EVENT_GEN_AI_INFERENCE_DETAILS)
        && let Some(found) = gen_ai_messages(&if repair {
            structured_event_attributes(details)
        } else {
            event_attributes(details)
        })
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
    let completion = events
        .iter()
        .find(|e| e.name == "gen_ai.content.completion");
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    // The event's attributes re-run through the chain; the raw object when that finds nothing.
    let side = |event: Option<&SpanEvent<'_>>, pick_output: bool| -> Value {
        let Some(event) = event else {
            return Value::Object(Map::new());
        };
        let attrs = event_attributes(event);
        let (i, o) = chain(&attrs, &[], scope, IoTarget::Observation, repair);
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
    let is_choice =
        |e: &Value| e.get("event.name").and_then(Value::as_str) == Some("gen_ai.choice");
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::span::{Resource, Scope, Span};

    fn s(v: &'static str) -> AttrValue<'static> {
        AttrValue::str(v)
    }

    fn span(
        attrs: Vec<(&'static str, AttrValue<'static>)>,
        events: Vec<SpanEvent<'static>>,
    ) -> Span<'static> {
        Span {
            attributes: Attributes::from_pairs(
                attrs.into_iter().map(|(k, v)| (Cow::Borrowed(k), v)),
            ),
            events,
            ..Span::default()
        }
    }

    fn event(
        name: &'static str,
        attrs: Vec<(&'static str, AttrValue<'static>)>,
    ) -> SpanEvent<'static> {
        SpanEvent {
            name: Cow::Borrowed(name),
            time_unix_ms: None,
            attributes: attrs
                .into_iter()
                .map(|(k, v)| (Cow::Borrowed(k), v))
                .collect(),
        }
    }

    fn run_in(scope: &'static str, span: &Span<'static>, target: IoTarget) -> (Side, Side) {
        let resource = Resource::default();
        let scope = Scope {
            name: Cow::Borrowed(scope),
            ..Scope::default()
        };
        let cx = SpanContext {
            resource: &resource,
            scope: &scope,
            span,
        };
        input_output(&cx, target, false)
    }

    fn run(attrs: Vec<(&'static str, AttrValue<'static>)>) -> (Side, Side) {
        run_in("app", &span(attrs, vec![]), IoTarget::Observation)
    }

    #[test]
    fn first_stage_with_a_value_supplies_both_sides() {
        let got = run(vec![
            ("input.value", s("in")),
            ("gen_ai.output.messages", s("[]")),
        ]);
        assert_eq!(got, (Some(json!("in")), None));
    }

    #[test]
    fn nothing_found_is_null_on_both_sides() {
        assert_eq!(
            run(vec![("x", s("y"))]),
            (Some(Value::Null), Some(Value::Null))
        );
    }

    #[test]
    fn langfuse_attributes_yield_even_when_empty() {
        let got = run(vec![
            ("langfuse.observation.input", s("")),
            ("input.value", s("other")),
        ]);
        assert_eq!(got, (Some(json!("")), None));
    }

    #[test]
    fn trace_target_prefers_truthy_trace_attributes() {
        let sp = span(
            vec![
                ("langfuse.trace.input", s("")),
                ("langfuse.trace.output", s("t-out")),
                ("langfuse.observation.input", s("o-in")),
                ("langfuse.observation.output", s("o-out")),
            ],
            vec![],
        );
        assert_eq!(
            run_in("app", &sp, IoTarget::Trace),
            (Some(json!("o-in")), Some(json!("t-out")))
        );
        assert_eq!(
            run_in("app", &sp, IoTarget::Observation),
            (Some(json!("o-in")), Some(json!("o-out")))
        );
    }

    #[test]
    fn genkit_scope_parses_messages_and_message() {
        let sp = span(
            vec![
                (
                    "genkit:input",
                    s(r#"{"messages":[{"role":"user"}],"config":{}}"#),
                ),
                ("genkit:output", s(r#"{"message":{"role":"model"}}"#)),
            ],
            vec![],
        );
        assert_eq!(
            run_in("genkit-tracer", &sp, IoTarget::Observation),
            (
                Some(json!([{"role": "user"}])),
                Some(json!({"role": "model"}))
            )
        );
        let empty = span(vec![], vec![]);
        assert_eq!(
            run_in("genkit-tracer", &empty, IoTarget::Observation),
            (Some(Value::Null), Some(Value::Null))
        );
    }

    #[test]
    fn vercel_scope_combines_text_and_tool_calls() {
        let sp = span(
            vec![
                ("ai.prompt", s("p")),
                ("ai.response.text", s("t")),
                ("ai.response.toolCalls", s("[]")),
            ],
            vec![],
        );
        assert_eq!(
            run_in("ai", &sp, IoTarget::Observation),
            (
                Some(json!("p")),
                Some(json!(
                    r#"{"role":"assistant","content":"t","tool_calls":"[]"}"#
                ))
            )
        );
    }

    #[test]
    fn vercel_scope_fills_missing_sides_from_gen_ai_messages() {
        let sp = span(
            vec![("ai.prompt", s("p")), ("gen_ai.output.messages", s("o"))],
            vec![],
        );
        assert_eq!(
            run_in("ai", &sp, IoTarget::Observation),
            (Some(json!("p")), Some(json!("o")))
        );
    }

    #[test]
    fn vercel_keys_outside_the_ai_scope_are_ignored() {
        assert_eq!(
            run(vec![("ai.prompt", s("p"))]),
            (Some(Value::Null), Some(Value::Null))
        );
    }

    #[test]
    fn flue_scope_parses_json_text() {
        let sp = span(
            vec![
                ("flue.tool.arguments", s(r#"{"a":1}"#)),
                ("flue.tool.result", s("plain")),
            ],
            vec![],
        );
        assert_eq!(
            run_in("@flue/opentelemetry", &sp, IoTarget::Observation),
            (Some(json!({"a": 1})), Some(json!("plain")))
        );
        let number_text = span(vec![("flue.task.prompt", s("42"))], vec![]);
        assert_eq!(
            run_in("@flue/opentelemetry", &number_text, IoTarget::Observation),
            (Some(json!("42")), None)
        );
    }

    #[test]
    fn inference_details_event_uses_gen_ai_messages() {
        let sp = span(
            vec![],
            vec![event(
                "gen_ai.client.inference.operation.details",
                vec![
                    ("gen_ai.system_instructions", s("Be nice.")),
                    (
                        "gen_ai.input.messages",
                        s(r#"[{"role":"user","content":"hi"}]"#),
                    ),
                    ("gen_ai.output.messages", s("[]")),
                ],
            )],
        );
        assert_eq!(
            run_in("app", &sp, IoTarget::Observation),
            (
                Some(json!(
                    r#"[{"role":"system","content":"Be nice."},{"role":"user","content":"hi"}]"#
                )),
                Some(json!("[]"))
            )
        );
    }

    #[test]
    fn message_events_become_role_messages_and_choices() {
        let sp = span(
            vec![("gen_ai.input.messages", s("ignored"))],
            vec![
                event("gen_ai.user.message", vec![("content", s("hi"))]),
                event("gen_ai.choice", vec![("index", AttrValue::Number(0.0))]),
                event("gen_ai.choice", vec![("index", AttrValue::Number(1.0))]),
            ],
        );
        assert_eq!(
            run_in("app", &sp, IoTarget::Observation),
            (
                Some(json!([{"role": "user", "content": "hi"}])),
                Some(json!([{"index": 0}, {"index": 1}]))
            )
        );
    }

    #[test]
    fn legacy_content_events_rerun_the_chain_or_keep_raw_attributes() {
        let sp = span(
            vec![],
            vec![
                event(
                    "gen_ai.content.prompt",
                    vec![("gen_ai.prompt", s("user: hi"))],
                ),
                event("gen_ai.content.completion", vec![("other", s("x"))]),
            ],
        );
        assert_eq!(
            run_in("app", &sp, IoTarget::Observation),
            (Some(json!("user: hi")), Some(json!({"other": "x"})))
        );
        let only_prompt = span(
            vec![],
            vec![event(
                "gen_ai.content.prompt",
                vec![("gen_ai.prompt", s("p"))],
            )],
        );
        assert_eq!(
            run_in("app", &only_prompt, IoTarget::Observation),
            (Some(json!("p")), Some(json!({})))
        );
    }

    #[test]
    fn vertex_empty_request_defers_to_tool_attributes() {
        let got = run(vec![
            ("gcp.vertex.agent.llm_request", s("{}")),
            ("gcp.vertex.agent.llm_response", s("{}")),
            ("gcp.vertex.agent.tool_call_args", s("args")),
        ]);
        assert_eq!(got, (Some(json!("args")), None));
    }

    #[test]
    fn livekit_input_uses_first_present_and_output_first_truthy() {
        let got = run(vec![
            ("lk.user_transcript", s("said")),
            ("lk.function_tool.output", s("")),
            ("lk.response.text", s("reply")),
        ]);
        assert_eq!(got, (Some(json!("said")), Some(json!("reply"))));
    }

    #[test]
    fn logfire_events_split_choice_from_inputs() {
        let got = run(vec![(
            "events",
            s(
                r#"[{"event.name":"gen_ai.user.message","content":"hi"},{"event.name":"gen_ai.choice","index":0}]"#,
            ),
        )]);
        assert_eq!(
            got,
            (
                Some(json!([{"event.name": "gen_ai.user.message", "content": "hi"}])),
                Some(json!({"event.name": "gen_ai.choice", "index": 0}))
            )
        );
    }

    #[test]
    fn plain_pairs_follow_their_precedence() {
        let got = run(vec![
            ("traceloop.entity.input", s("tl")),
            ("mlflow.spanOutputs", s("ml")),
            ("input.value", s("oi")),
        ]);
        assert_eq!(got, (None, Some(json!("ml"))));
        assert_eq!(
            run(vec![("input", s("i")), ("tool_arguments", s("t"))]),
            (Some(json!("i")), None)
        );
    }

    #[test]
    fn pydantic_ai_scope_prepends_system_instructions() {
        let sp = span(
            vec![
                (
                    "pydantic_ai.all_messages",
                    s(r#"[{"role":"user","parts":[]}]"#),
                ),
                (
                    "gen_ai.system_instructions",
                    s(r#"[{"type":"text","content":"A"},{"type":"text","content":"B"}]"#),
                ),
                ("final_result", s("done")),
            ],
            vec![],
        );
        assert_eq!(
            run_in("pydantic-ai", &sp, IoTarget::Observation),
            (
                Some(json!(
                    r#"[{"role":"system","content":"A\nB"},{"role":"user","parts":[]}]"#
                )),
                Some(json!("done"))
            )
        );
    }

    #[test]
    fn indexed_prompt_keys_are_rebuilt() {
        let got = run(vec![
            ("gen_ai.prompt.0.content", s("q")),
            ("gen_ai.completion.content", s("a")),
        ]);
        assert_eq!(
            got,
            (
                Some(json!([{"content": "q"}])),
                Some(json!({"content": "a"}))
            )
        );
    }

    #[test]
    fn indexed_openinference_messages_are_rebuilt() {
        let got = run(vec![("llm.output_messages.0.message.content", s("a"))]);
        assert_eq!(
            got,
            (
                Some(json!({})),
                Some(json!([{"message": {"content": "a"}}]))
            )
        );
    }

    #[test]
    fn system_instructions_skipped_when_a_system_message_exists() {
        let msgs = r#"[{"role": "system", "content": "x"}]"#;
        let got = run(vec![
            ("gen_ai.system_instructions", s("y")),
            ("gen_ai.input.messages", s(msgs)),
        ]);
        assert_eq!(got, (Some(json!(msgs)), None));
    }

    #[test]
    fn gen_ai_tool_call_attributes_are_the_last_resort() {
        let got = run(vec![
            ("gen_ai.tool.call.arguments", s("{}")),
            ("gen_ai.tool.call.result", s("r")),
        ]);
        assert_eq!(got, (Some(json!("{}")), Some(json!("r"))));
    }

    fn run_repaired(span: &Span<'static>) -> (Side, Side) {
        let (resource, scope) = (Resource::default(), Scope::default());
        let cx = SpanContext {
            resource: &resource,
            scope: &scope,
            span,
        };
        input_output(&cx, IoTarget::Observation, true)
    }

    #[test]
    fn gen_ai_prompt_name_and_version_are_not_prompt_content_in_repair_mode() {
        let sp = span(
            vec![
                ("gen_ai.prompt.name", s("support-answer")),
                ("gen_ai.prompt.version", s("4")),
                ("gen_ai.prompt.variable.city", s("Paris")),
                ("gen_ai.input.messages", s("[]")),
            ],
            vec![],
        );
        // The server reads them as indexed Traceloop prompt keys.
        assert_eq!(
            run_in("app", &sp, IoTarget::Observation),
            (
                Some(
                    json!({"name": "support-answer", "version": "4", "variable": {"city": "Paris"}})
                ),
                Some(json!({}))
            )
        );
        assert_eq!(run_repaired(&sp), (Some(json!("[]")), None));
    }

    #[test]
    fn structured_content_on_the_inference_details_event_is_read_in_repair_mode() {
        let user = r#"{"kvlistValue":{"values":[{"key":"role","value":{"stringValue":"user"}},{"key":"parts","value":{"arrayValue":{"values":[{"kvlistValue":{"values":[{"key":"type","value":{"stringValue":"text"}},{"key":"content","value":{"stringValue":"hi"}}]}}]}}}]}}"#;
        let answer = r#"{"kvlistValue":{"values":[{"key":"role","value":{"stringValue":"assistant"}},{"key":"index","value":{"intValue":"0"}}]}}"#;
        let sp = span(
            vec![],
            vec![event(
                "gen_ai.client.inference.operation.details",
                vec![
                    ("gen_ai.input.messages", AttrValue::Array(vec![s(user)])),
                    ("gen_ai.output.messages", AttrValue::Array(vec![s(answer)])),
                ],
            )],
        );
        assert_eq!(
            run_repaired(&sp),
            (
                Some(json!(
                    r#"[{"role":"user","parts":[{"type":"text","content":"hi"}]}]"#
                )),
                Some(json!(r#"[{"role":"assistant","index":0}]"#))
            )
        );
        // The server keeps the wrapper text.
        assert_eq!(
            run_in("app", &sp, IoTarget::Observation).0,
            Some(json!([user]))
        );
    }
}
