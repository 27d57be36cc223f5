//! One turn's items → canonical spans (`langfuse.*` attributes): the root, a generation per
//! model request, a tool per tool call, and (optionally) the agent's other spans.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::{Map, Value};

use super::agent::Agent;
use super::model::{Generation, Item, Part, Prompt, Tool, derived_span_id};
use crate::keys;
use crate::span::{
    Attributes, Resource, ResourceSpans, Scope, ScopeSpans, Span, SpanBatch, StatusCode,
};
use crate::time::format_iso_millis;
use crate::value::AttrValue;

/// Scope attribute naming the agent a turn came from.
pub(crate) const AGENT_SCOPE_NAME: &str = "langfuse-otel.agents";

/// What the turn's trace is.
pub(crate) struct TurnIds {
    pub trace_id: String,
    pub root_span_id: String,
}

/// What was sent of a turn before (a follow-up leaves it out).
#[derive(Debug, Default)]
pub(crate) struct Prior {
    /// Observation ids sent (the root included).
    pub sent: HashSet<String>,
    /// Request ids of the generations sent.
    pub gen_keys: HashSet<String>,
    /// Generations sent.
    pub gens: usize,
    /// Call ids of the tools sent.
    pub tool_keys: HashSet<String>,
}

/// A built turn: its spans, and the ids of the observations in them.
pub(crate) struct Built {
    pub batch: SpanBatch<'static>,
    pub ids: Vec<String>,
    pub gen_keys: Vec<String>,
    pub gens: usize,
    pub tool_keys: Vec<String>,
}

struct GenEntry<'a> {
    generation: Generation,
    span: Option<&'a Span<'static>>,
}

struct ToolEntry<'a> {
    tool: Tool,
    span: Option<&'a Span<'static>>,
    claimed_by_event: bool,
}

/// Builds the spans of a turn. `prior` is what was sent of it before (a follow-up leaves it
/// out, the root included; a request or tool call sent before is never sent again).
#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    agent: Agent,
    ids: &TurnIds,
    conversation: Option<&str>,
    items: &[&Item],
    resource: &[(String, AttrValue<'static>)],
    keep_agent_spans: bool,
    prior: &Prior,
) -> Built {
    let emitted = &prior.sent;
    let mut items: Vec<&Item> = items.to_vec();
    items.sort_by_key(|i| i.time_ms);

    // --- the prompt and the turn's own span ---
    let mut prompt = Prompt::default();
    let mut prompt_time: Option<i64> = None;
    let mut turn_span: Option<&Span<'static>> = None;
    let mut facts = Map::new();
    for item in &items {
        match &item.part {
            Part::Prompt(p) if prompt_time.is_none() => {
                prompt_time = Some(item.time_ms);
                fill_prompt(&mut prompt, p);
            }
            Part::TurnSpan(p) => {
                turn_span = turn_span.or(item.span.as_deref());
                fill_prompt(&mut prompt, p);
            }
            Part::Facts(f) => extend_missing(&mut facts, f),
            _ => {}
        }
    }
    extend_missing(&mut facts, &prompt.facts);

    // --- generations: events first, spans enrich them ---
    let mut log_gens = generations(items.iter().filter(|i| i.span.is_none()).copied());
    let span_gens = generations(items.iter().filter(|i| i.span.is_some()).copied());
    let log_had_any = !log_gens.is_empty();
    let mut matched = vec![false; log_gens.len()];
    for s in span_gens {
        let by_key = s.generation.key.as_ref().and_then(|k| {
            log_gens
                .iter()
                .position(|g| g.generation.key.as_ref() == Some(k))
        });
        let by_order = || {
            (s.generation.key.is_none() || log_gens.iter().all(|g| g.generation.key.is_none()))
                .then(|| (0..log_gens.len()).find(|&i| !matched[i]))
                .flatten()
        };
        match by_key.or_else(by_order) {
            Some(i) => {
                matched[i] = true;
                enrich_generation(&mut log_gens[i], s);
            }
            None if !log_had_any || s.generation.key.is_some() => {
                matched.push(true);
                log_gens.push(s);
            }
            // A span the events may describe without a shared id: never counted twice.
            None => {}
        }
    }
    // The assistant's text per request.
    let mut final_text: Option<(i64, String)> = None;
    for item in &items {
        if let Part::Response { key, text } = &item.part {
            if let Some(g) = log_gens
                .iter_mut()
                .find(|g| key.is_some() && g.generation.key == *key)
            {
                g.generation.output = Some(Value::String(text.clone()));
            }
            if final_text.as_ref().is_none_or(|(t, _)| item.time_ms >= *t) {
                final_text = Some((item.time_ms, text.clone()));
            }
        }
    }
    if final_text.is_none() {
        final_text = log_gens
            .iter()
            .filter_map(|g| {
                let out = g.generation.output.as_ref()?.as_str()?;
                Some((g.generation.end_ms.unwrap_or(0), out.to_owned()))
            })
            .max_by_key(|(t, _)| *t);
    }

    // --- tools ---
    let tools = tools(&items);

    // --- spans out ---
    let root_start = items
        .iter()
        .map(|i| i.time_ms)
        .chain(turn_span.and_then(|s| s.start_time_unix_ms))
        .chain(log_gens.iter().filter_map(|g| g.generation.start_ms))
        .chain(tools.iter().filter_map(|t| t.tool.start_ms))
        .min()
        .unwrap_or(0);
    let root_end = items
        .iter()
        .map(|i| i.time_ms)
        .chain(turn_span.and_then(|s| s.end_time_unix_ms))
        .chain(log_gens.iter().filter_map(|g| g.generation.end_ms))
        .chain(tools.iter().filter_map(|t| t.tool.end_ms))
        .max()
        .unwrap_or(root_start)
        .max(root_start);

    let mut models: Vec<String> = Vec::new();
    for g in &log_gens {
        if let Some(m) = &g.generation.model
            && !models.contains(m)
        {
            models.push(m.clone());
        }
    }
    if !models.is_empty() {
        facts.insert(
            "models".into(),
            Value::Array(models.iter().cloned().map(Value::String).collect()),
        );
    }
    facts.insert("agent".into(), Value::String(agent.name().to_owned()));

    let mut out: Vec<Span<'static>> = Vec::new();
    let mut out_ids: Vec<String> = Vec::new();
    let name = format!("{} turn", agent.name());
    if !emitted.contains(&ids.root_span_id) {
        let mut a: Vec<(&'static str, AttrValue<'static>)> = vec![
            (keys::LANGFUSE_OBSERVATION_TYPE, AttrValue::str("agent")),
            (
                keys::LANGFUSE_TRACE_NAME,
                AttrValue::Str(name.clone().into()),
            ),
            (
                keys::LANGFUSE_TRACE_TAGS,
                AttrValue::Array(vec![AttrValue::str(agent.name())]),
            ),
            (
                keys::LANGFUSE_TRACE_METADATA,
                AttrValue::Str(Value::Object(facts.clone()).to_string().into()),
            ),
            (
                keys::LANGFUSE_OBSERVATION_METADATA,
                AttrValue::Str(Value::Object(facts).to_string().into()),
            ),
        ];
        if let Some(c) = conversation {
            a.push((
                keys::LANGFUSE_SESSION_ID,
                AttrValue::Str(c.to_owned().into()),
            ));
        }
        if let Some(u) = &prompt.user_id {
            a.push((keys::LANGFUSE_USER_ID, AttrValue::Str(u.clone().into())));
        }
        if let Some(t) = &prompt.text {
            a.push((keys::LANGFUSE_TRACE_INPUT, AttrValue::Str(t.clone().into())));
            a.push((
                keys::LANGFUSE_OBSERVATION_INPUT,
                AttrValue::Str(t.clone().into()),
            ));
        }
        if let Some((_, t)) = &final_text {
            a.push((
                keys::LANGFUSE_TRACE_OUTPUT,
                AttrValue::Str(t.clone().into()),
            ));
            a.push((
                keys::LANGFUSE_OBSERVATION_OUTPUT,
                AttrValue::Str(t.clone().into()),
            ));
        }
        out.push(span(
            ids,
            &ids.root_span_id,
            None,
            name,
            times(None, Some(root_start), Some(root_end)),
            a,
            None,
        ));
        out_ids.push(ids.root_span_id.clone());
    }

    let mut gen_keys = Vec::new();
    let mut gens = 0;
    for (n, g) in log_gens.iter().enumerate() {
        let gen_ = &g.generation;
        let known = match &gen_.key {
            Some(k) => prior.gen_keys.contains(k),
            // Without a request id, a follow-up cannot tell a new request from one sent.
            None => prior.gens > 0,
        };
        if known {
            continue;
        }
        let id = g.span.map_or_else(
            || {
                let ordinal = n.to_string();
                let key = gen_.key.as_deref().unwrap_or(&ordinal);
                derived_span_id(&[&ids.trace_id, "generation", key])
            },
            |s| s.span_id.to_string(),
        );
        if emitted.contains(&id) {
            continue;
        }
        let mut a: Vec<(&'static str, AttrValue<'static>)> = vec![(
            keys::LANGFUSE_OBSERVATION_TYPE,
            AttrValue::str("generation"),
        )];
        if let Some(m) = &gen_.model {
            a.push((
                keys::LANGFUSE_OBSERVATION_MODEL_NAME,
                AttrValue::Str(m.clone().into()),
            ));
        }
        if !gen_.usage.is_empty() {
            let usage: Map<String, Value> = gen_
                .usage
                .iter()
                .map(|(k, v)| ((*k).to_owned(), crate::value::js_number(*v)))
                .collect();
            a.push((
                keys::LANGFUSE_OBSERVATION_USAGE_DETAILS,
                AttrValue::Str(Value::Object(usage).to_string().into()),
            ));
        }
        if let Some(c) = gen_.cost_usd {
            a.push((
                keys::LANGFUSE_OBSERVATION_COST_DETAILS,
                AttrValue::Str(
                    serde_json::json!({ "total": crate::value::js_number(c) })
                        .to_string()
                        .into(),
                ),
            ));
        }
        if let (Some(start), Some(ttft)) = (gen_.start_ms, gen_.ttft_ms) {
            a.push((
                keys::LANGFUSE_OBSERVATION_COMPLETION_START_TIME,
                AttrValue::Str(format_iso_millis(start + ttft.round() as i64).into()),
            ));
        }
        if let Some(o) = &gen_.output {
            a.push((keys::LANGFUSE_OBSERVATION_OUTPUT, io_value(o)));
        }
        let mut metadata = gen_.metadata.clone();
        if let Some(k) = &gen_.key {
            metadata.entry("request_key").or_insert(k.clone().into());
        }
        push_metadata(&mut a, metadata);
        push_error(&mut a, gen_.error.as_deref());
        let name = gen_
            .model
            .clone()
            .unwrap_or_else(|| "generation".to_owned());
        out.push(span(
            ids,
            &id,
            Some(&ids.root_span_id),
            name,
            times(g.span, gen_.start_ms.or(gen_.end_ms), gen_.end_ms),
            a,
            gen_.error.as_deref(),
        ));
        out_ids.push(id);
        gens += 1;
        gen_keys.extend(gen_.key.clone());
    }

    let mut tool_keys = Vec::new();
    for (n, t) in tools.iter().enumerate() {
        let tool = &t.tool;
        if tool
            .key
            .as_ref()
            .is_some_and(|k| prior.tool_keys.contains(k))
        {
            continue;
        }
        let id = t.span.map_or_else(
            || {
                let ordinal = n.to_string();
                let key = tool.key.as_deref().unwrap_or(&ordinal);
                derived_span_id(&[&ids.trace_id, "tool", key])
            },
            |s| s.span_id.to_string(),
        );
        if emitted.contains(&id) {
            continue;
        }
        let mut a: Vec<(&'static str, AttrValue<'static>)> =
            vec![(keys::LANGFUSE_OBSERVATION_TYPE, AttrValue::str("tool"))];
        if let Some(args) = &tool.arguments {
            a.push((keys::LANGFUSE_OBSERVATION_INPUT, io_value(args)));
        }
        if let Some(r) = &tool.result {
            a.push((keys::LANGFUSE_OBSERVATION_OUTPUT, io_value(r)));
        }
        let mut metadata = tool.metadata.clone();
        if let Some(s) = tool.success {
            metadata.insert("success".into(), Value::Bool(s));
        }
        if let Some(k) = &tool.key {
            metadata.entry("call_id").or_insert(k.clone().into());
        }
        push_metadata(&mut a, metadata);
        push_error(&mut a, tool.error.as_deref());
        let name = tool.name.clone().unwrap_or_else(|| "tool".to_owned());
        out.push(span(
            ids,
            &id,
            Some(&ids.root_span_id),
            name,
            times(t.span, tool.start_ms.or(tool.end_ms), tool.end_ms),
            a,
            tool.error.as_deref(),
        ));
        out_ids.push(id);
        tool_keys.extend(tool.key.clone());
    }

    if keep_agent_spans {
        // The agent's other spans, in the turn's trace: a parent that is not in the turn
        // becomes the root.
        let used: HashSet<&str> = log_gens
            .iter()
            .filter_map(|g| g.span.map(|s| s.span_id.as_ref()))
            .chain(
                tools
                    .iter()
                    .filter_map(|t| t.span.map(|s| s.span_id.as_ref())),
            )
            .chain(turn_span.map(|s| s.span_id.as_ref()))
            .collect();
        let internal: Vec<&Span<'static>> = items
            .iter()
            .filter_map(|i| i.span.as_deref())
            .filter(|s| !used.contains(s.span_id.as_ref()))
            .collect();
        let mut known: HashSet<String> = out_ids.iter().cloned().collect();
        known.extend(emitted.iter().cloned());
        known.insert(ids.root_span_id.clone());
        known.extend(used.iter().map(|s| (*s).to_owned()));
        known.extend(internal.iter().map(|s| s.span_id.to_string()));
        for s in internal {
            if emitted.contains(s.span_id.as_ref()) {
                continue;
            }
            let mut copy = s.clone();
            copy.trace_id = Cow::Owned(ids.trace_id.clone());
            let parent_known = copy.parent_id().is_some_and(|p| known.contains(p));
            if !parent_known || copy.parent_id() == Some(&ids.root_span_id) {
                copy.parent_span_id = Some(Cow::Owned(ids.root_span_id.clone()));
            }
            if copy.span_id == ids.root_span_id {
                continue;
            }
            let mut pairs: Vec<(Cow<'static, str>, AttrValue<'static>)> = copy
                .attributes
                .iter()
                .filter(|(k, _)| !is_turn_level(k))
                .map(|(k, v)| (Cow::Owned(k.to_owned()), v.clone()))
                .collect();
            pairs.push((
                Cow::Borrowed(keys::LANGFUSE_OBSERVATION_TYPE),
                AttrValue::str("span"),
            ));
            copy.attributes = Attributes::from_pairs(pairs);
            out_ids.push(copy.span_id.to_string());
            out.push(copy);
        }
    }

    let mut resource_attrs: Vec<(Cow<'static, str>, AttrValue<'static>)> = resource
        .iter()
        .map(|(k, v)| (Cow::Owned(k.clone()), v.clone()))
        .collect();
    if !resource_attrs.iter().any(|(k, _)| k == "service.name") {
        resource_attrs.push((Cow::Borrowed("service.name"), AttrValue::str(agent.name())));
    }
    let batch = SpanBatch {
        resource_spans: vec![ResourceSpans {
            resource: Resource {
                attributes: Attributes::from_pairs(resource_attrs),
            },
            scope_spans: vec![ScopeSpans {
                scope: Scope {
                    name: Cow::Borrowed(AGENT_SCOPE_NAME),
                    version: Some(Cow::Borrowed(env!("CARGO_PKG_VERSION"))),
                    attributes: Attributes::from_pairs([(
                        Cow::Borrowed("langfuse.agent"),
                        AttrValue::str(agent.name()),
                    )]),
                },
                spans: out,
            }],
        }],
    };
    Built {
        batch,
        ids: out_ids,
        gen_keys,
        gens,
        tool_keys,
    }
}

/// Attributes of the agent's spans that the translator would read as trace fields or usage:
/// the turn's root carries them, a kept span must not repeat them.
fn is_turn_level(key: &str) -> bool {
    key.starts_with("gen_ai.usage.")
        || key.starts_with("langfuse.")
        || matches!(
            key,
            keys::USER_ID | keys::SESSION_ID | keys::GEN_AI_CONVERSATION_ID | keys::TAG_TAGS
        )
}

fn fill_prompt(into: &mut Prompt, from: &Prompt) {
    if into.text.is_none() {
        into.text.clone_from(&from.text);
    }
    if into.user_id.is_none() {
        into.user_id.clone_from(&from.user_id);
    }
    if into.prompt_id.is_none() {
        into.prompt_id.clone_from(&from.prompt_id);
    }
    extend_missing(&mut into.facts, &from.facts);
}

fn extend_missing(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        into.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

/// Generations of one side (events or spans), each paired in order with that side's request
/// starts.
fn generations<'a>(items: impl Iterator<Item = &'a Item>) -> Vec<GenEntry<'a>> {
    let mut gens = Vec::new();
    let mut requests = Vec::new();
    for item in items {
        match &item.part {
            Part::Generation(g) => gens.push(GenEntry {
                generation: g.clone(),
                span: item.span.as_deref(),
            }),
            Part::Request(r) => requests.push((item.time_ms, r)),
            _ => {}
        }
    }
    gens.sort_by_key(|g| g.generation.end_ms.or(g.generation.start_ms));
    requests.sort_by_key(|(t, r)| r.start_ms.unwrap_or(*t));
    for (g, (_, r)) in gens.iter_mut().zip(requests) {
        let g = &mut g.generation;
        if g.start_ms.is_none() {
            g.start_ms = r.start_ms;
        }
        if g.key.is_none() {
            g.key.clone_from(&r.key);
        }
        if g.model.is_none() {
            g.model.clone_from(&r.model);
        }
        extend_missing(&mut g.metadata, &r.metadata);
    }
    gens
}

/// A span describing a request the events describe: its ids and exact times are taken, its
/// counts never added.
fn enrich_generation<'a>(into: &mut GenEntry<'a>, from: GenEntry<'a>) {
    let g = &mut into.generation;
    let s = from.generation;
    if from.span.is_some() && into.span.is_none() {
        into.span = from.span;
    }
    if s.start_ms.is_some() && from.span.is_some() {
        g.start_ms = s.start_ms;
        g.end_ms = s.end_ms.or(g.end_ms);
    }
    if g.model.is_none() {
        g.model = s.model;
    }
    if g.ttft_ms.is_none() {
        g.ttft_ms = s.ttft_ms;
    }
    if g.output.is_none() {
        g.output = s.output;
    }
    if g.error.is_none() {
        g.error = s.error;
    }
    if g.key.is_none() {
        g.key = s.key;
    }
    extend_missing(&mut g.metadata, &s.metadata);
}

/// Tool calls: parts with a call id merge by it; a part without one (Gemini's event) joins
/// the first call of the same name not yet described by an event.
fn tools<'a>(items: &[&'a Item]) -> Vec<ToolEntry<'a>> {
    let mut entries: Vec<ToolEntry<'a>> = Vec::new();
    let mut unkeyed = Vec::new();
    for item in items {
        let Part::Tool(t) = &item.part else { continue };
        match &t.key {
            Some(k) => match entries.iter_mut().find(|e| e.tool.key.as_ref() == Some(k)) {
                Some(e) => merge_tool(e, t, item.span.as_deref()),
                None => entries.push(ToolEntry {
                    tool: t.clone(),
                    span: item.span.as_deref(),
                    claimed_by_event: item.span.is_none(),
                }),
            },
            None => unkeyed.push((t, item.span.as_deref())),
        }
    }
    for (t, span) in unkeyed {
        match entries
            .iter_mut()
            .find(|e| !e.claimed_by_event && e.tool.name == t.name)
        {
            Some(e) => {
                e.claimed_by_event = true;
                merge_tool(e, t, span);
            }
            None => entries.push(ToolEntry {
                tool: t.clone(),
                span,
                claimed_by_event: span.is_none(),
            }),
        }
    }
    entries.sort_by_key(|e| e.tool.start_ms.or(e.tool.end_ms));
    entries
}

fn merge_tool<'a>(e: &mut ToolEntry<'a>, t: &Tool, span: Option<&'a Span<'static>>) {
    let into = &mut e.tool;
    if span.is_some() {
        if e.span.is_none() {
            e.span = span;
        }
        // The span's times are exact.
        if t.start_ms.is_some() {
            into.start_ms = t.start_ms;
            into.end_ms = t.end_ms.or(into.end_ms);
        }
    } else {
        e.claimed_by_event = true;
        if into.start_ms.is_none() {
            into.start_ms = t.start_ms;
        }
        if into.end_ms.is_none() {
            into.end_ms = t.end_ms;
        }
    }
    if into.name.is_none() {
        into.name.clone_from(&t.name);
    }
    if into.key.is_none() {
        into.key.clone_from(&t.key);
    }
    // Events' arguments (the exact input) win over a span's.
    if into.arguments.is_none() || (span.is_none() && t.arguments.is_some()) {
        into.arguments = t.arguments.clone().or(into.arguments.take());
    }
    if into.result.is_none() {
        into.result.clone_from(&t.result);
    }
    if span.is_none() && t.success.is_some() {
        into.success = t.success;
        into.error.clone_from(&t.error);
    } else if into.success.is_none() {
        into.success = t.success;
        if into.error.is_none() {
            into.error.clone_from(&t.error);
        }
    }
    extend_missing(&mut into.metadata, &t.metadata);
}

fn io_value(v: &Value) -> AttrValue<'static> {
    match v {
        Value::String(s) => AttrValue::Str(s.clone().into()),
        other => AttrValue::Str(other.to_string().into()),
    }
}

fn push_metadata(a: &mut Vec<(&'static str, AttrValue<'static>)>, metadata: Map<String, Value>) {
    if !metadata.is_empty() {
        a.push((
            keys::LANGFUSE_OBSERVATION_METADATA,
            AttrValue::Str(Value::Object(metadata).to_string().into()),
        ));
    }
}

fn push_error(a: &mut Vec<(&'static str, AttrValue<'static>)>, error: Option<&str>) {
    if let Some(e) = error {
        a.push((keys::LANGFUSE_OBSERVATION_LEVEL, AttrValue::str("ERROR")));
        a.push((
            keys::LANGFUSE_OBSERVATION_STATUS_MESSAGE,
            AttrValue::Str(e.to_owned().into()),
        ));
    }
}

/// Start and end in nanoseconds: a source span's exact times when they are the ones meant
/// (same milliseconds), else the given milliseconds.
fn times(source: Option<&Span<'static>>, start_ms: Option<i64>, end_ms: Option<i64>) -> (u64, u64) {
    let ns = |ms: Option<i64>| ms.map_or(0, |m| u64::try_from(m).unwrap_or(0) * 1_000_000);
    match source {
        Some(s) if s.start_time_unix_ms == start_ms && s.end_time_unix_ms == end_ms => {
            let start = s.start_time_unix_nano.unwrap_or_else(|| ns(start_ms));
            let end = s.end_time_unix_nano.unwrap_or_else(|| ns(end_ms));
            (start, end.max(start))
        }
        _ => {
            let start = ns(start_ms);
            (start, ns(end_ms).max(start))
        }
    }
}

fn span(
    ids: &TurnIds,
    id: &str,
    parent: Option<&str>,
    name: String,
    (start, end): (u64, u64),
    attrs: Vec<(&'static str, AttrValue<'static>)>,
    error: Option<&str>,
) -> Span<'static> {
    let ms = |ns: u64| i64::try_from(ns / 1_000_000).ok().filter(|m| *m > 0);
    Span {
        trace_id: Cow::Owned(ids.trace_id.clone()),
        span_id: Cow::Owned(id.to_owned()),
        parent_span_id: parent.map(|p| Cow::Owned(p.to_owned())),
        name: Cow::Owned(name),
        start_time_unix_ms: ms(start),
        end_time_unix_ms: ms(end),
        start_time_unix_nano: (start != 0).then_some(start),
        end_time_unix_nano: (end != 0).then_some(end),
        status_code: if error.is_some() {
            StatusCode::Error
        } else {
            StatusCode::Unset
        },
        status_message: error.map(|e| Cow::Owned(e.to_owned())),
        attributes: Attributes::from_pairs(attrs.into_iter().map(|(k, v)| (Cow::Borrowed(k), v))),
        events: Vec::new(),
    }
}
