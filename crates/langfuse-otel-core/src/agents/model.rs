//! What the per-agent rules produce: items (a prompt, a model request, a tool call, facts)
//! with the ids that tie them to their turn; and the helpers the rules share.

use serde_json::{Map, Value};

use crate::span::{Attributes, Scope, Span};
use crate::value::AttrValue;

/// What the per-agent rules see besides the record or span: its resource and scope.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Resource attributes.
    pub resource: &'a Attributes<'static>,
    /// Instrumentation scope.
    pub scope: &'a Scope<'static>,
}

/// One piece of a turn, derived from one log record or span, with the ids that tie it to its
/// turn. Built by the per-agent rules, grouped by [`TurnAssembler`](super::TurnAssembler).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The CLI's session or conversation id, when the record or span names it.
    pub conversation: Option<String>,
    /// Ids shared with other items of the same turn only (namespaced, e.g. `trace:<hex>`,
    /// `prompt:<uuid>`, `turn:<uuid>`).
    pub links: Vec<String>,
    /// When it happened (Unix milliseconds).
    pub time_ms: i64,
    /// What it says about the turn.
    pub part: Part,
    /// The span it came from (kept for its ids and times, and for
    /// [`AssembleOptions::keep_agent_spans`](super::AssembleOptions::keep_agent_spans)).
    pub span: Option<Box<Span<'static>>>,
}

/// What an [`Item`] says about its turn.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Part {
    /// The user's prompt: it starts a turn.
    Prompt(Prompt),
    /// The agent's own span for the whole turn (its ids become the turn's; what it says about
    /// the prompt fills in what the prompt event does not).
    TurnSpan(Prompt),
    /// The start of a model request whose usage comes in a later item (paired in order).
    Request(Request),
    /// A model request with its outcome.
    Generation(Generation),
    /// The assistant's text for a model request (`key` = the request id).
    Response {
        /// The request id it answers.
        key: Option<String>,
        /// The text.
        text: String,
    },
    /// A tool call, or part of what is known about one.
    Tool(Tool),
    /// Facts for the turn's metadata.
    Facts(Map<String, Value>),
    /// A span without LLM work (kept only with [`AssembleOptions::keep_agent_spans`](super::AssembleOptions::keep_agent_spans)).
    Internal,
}

/// The user's prompt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prompt {
    /// The text, when the CLI logs it.
    pub text: Option<String>,
    /// The user, when the CLI names one.
    pub user_id: Option<String>,
    /// The CLI's id of this prompt.
    pub prompt_id: Option<String>,
    /// Facts for the turn's metadata.
    pub facts: Map<String, Value>,
}

/// The start of a model request (Codex, Gemini CLI: the usage is in a later event).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// An id shared with the request's span, when there is one.
    pub key: Option<String>,
    /// When the request started (Unix milliseconds).
    pub start_ms: Option<i64>,
    /// The model asked for.
    pub model: Option<String>,
    /// Facts for the generation's metadata.
    pub metadata: Map<String, Value>,
}

/// A model request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Generation {
    /// The request id (shared by the events and span of the request), when known.
    pub key: Option<String>,
    /// The model.
    pub model: Option<String>,
    /// Usage, in Langfuse's usage keys (`input` without cached tokens, `input_cache_read`,
    /// `input_cache_creation`, `output`, `output_reasoning`, `input_tool`, `total`).
    pub usage: Vec<(&'static str, f64)>,
    /// The cost in USD, when the CLI computes one.
    pub cost_usd: Option<f64>,
    /// Start (Unix milliseconds).
    pub start_ms: Option<i64>,
    /// End (Unix milliseconds).
    pub end_ms: Option<i64>,
    /// Time to first token after the start, in milliseconds.
    pub ttft_ms: Option<f64>,
    /// What the model answered, when logged.
    pub output: Option<Value>,
    /// The error, when the request failed.
    pub error: Option<String>,
    /// Facts for the generation's metadata.
    pub metadata: Map<String, Value>,
}

/// A tool call (or part of what is known about it: decision, result, span).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tool {
    /// The call id, when known.
    pub key: Option<String>,
    /// The tool's name.
    pub name: Option<String>,
    /// The arguments, when logged.
    pub arguments: Option<Value>,
    /// The result, when logged.
    pub result: Option<Value>,
    /// Start (Unix milliseconds).
    pub start_ms: Option<i64>,
    /// End (Unix milliseconds).
    pub end_ms: Option<i64>,
    /// Whether it succeeded, when known.
    pub success: Option<bool>,
    /// The error, when it failed.
    pub error: Option<String>,
    /// Facts for the tool's metadata (decision, by whom, sizes…).
    pub metadata: Map<String, Value>,
}

// ---- helpers shared by the per-agent rules ----

/// A number, also when the CLI sends it as a string (`"duration_ms": "12"`).
pub(crate) fn number(attrs: &Attributes<'_>, key: &str) -> Option<f64> {
    attrs
        .get(key)
        .filter(|v| !matches!(v, AttrValue::Bool(_) | AttrValue::Array(_)))
        .and_then(AttrValue::to_js_number)
        .filter(|n| n.is_finite())
}

/// A boolean, also when sent as a string (`"true"`, `"True"`).
pub(crate) fn boolean(attrs: &Attributes<'_>, key: &str) -> Option<bool> {
    match attrs.get(key)? {
        AttrValue::Bool(b) => Some(*b),
        AttrValue::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
        AttrValue::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
        AttrValue::Number(n) => Some(*n != 0.0),
        _ => None,
    }
}

/// A non-empty string (an empty `AnyValue`, which decodes as `{}`, is absent).
pub(crate) fn text(attrs: &Attributes<'_>, key: &str) -> Option<String> {
    attrs
        .get_str(key)
        .filter(|s| !s.is_empty() && *s != "{}")
        .map(str::to_owned)
}

/// A JSON value for a text that may hold JSON (tool arguments): parsed when it does.
pub(crate) fn json_or_text(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
        _ => Value::String(text.to_owned()),
    }
}

/// Copies the attributes `keys` that are present into `map` (as JSON values; numbers sent as
/// strings stay as sent).
pub(crate) fn copy_facts(map: &mut Map<String, Value>, attrs: &Attributes<'_>, keys: &[&str]) {
    for key in keys {
        if let Some(v) = attrs.get(key).filter(|v| v.as_str() != Some("{}")) {
            map.insert((*key).to_owned(), v.to_json());
        }
    }
}

/// The user, from the first of the attributes CLIs use for one.
pub(crate) fn user_id(attrs: &Attributes<'_>) -> Option<String> {
    [
        "user.email",
        "user.account_uuid",
        "user.account_id",
        "user.id",
    ]
    .iter()
    .find_map(|k| text(attrs, k))
}

/// A span's start and end (Unix milliseconds).
pub(crate) fn span_times(span: &Span<'_>) -> (Option<i64>, Option<i64>) {
    (span.start_time_unix_ms, span.end_time_unix_ms)
}

/// `end - duration`, when both are known.
pub(crate) fn start_from(end_ms: i64, duration_ms: Option<f64>) -> Option<i64> {
    duration_ms.map(|d| end_ms - d.round() as i64)
}

/// Pushes a usage entry when the count is known.
pub(crate) fn usage_entry(usage: &mut Vec<(&'static str, f64)>, key: &'static str, n: Option<f64>) {
    if let Some(n) = n {
        usage.push((key, n.max(0.0)));
    }
}

/// 64-bit FNV-1a of `parts` joined by NUL, with a seed.
fn fnv(seed: u64, parts: &[&str]) -> u64 {
    let mut h = seed;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            // A NUL byte between parts.
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in part.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// A span id (16 hex digits, never all zero) derived from `parts`: the same parts give the
/// same id after a restart.
pub(crate) fn derived_span_id(parts: &[&str]) -> String {
    format!("{:016x}", fnv(0xcbf2_9ce4_8422_2325, parts).max(1))
}

/// A trace id (32 hex digits) derived from `parts`.
pub(crate) fn derived_trace_id(parts: &[&str]) -> String {
    format!(
        "{:016x}{:016x}",
        fnv(0x8422_2325_cbf2_9ce4, parts),
        fnv(0xcbf2_9ce4_8422_2325, parts).max(1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn numbers_sent_as_strings_are_numbers() {
        let attrs = Attributes::from_pairs([
            (Cow::Borrowed("a"), AttrValue::str("12")),
            (Cow::Borrowed("b"), AttrValue::Number(3.5)),
            (Cow::Borrowed("c"), AttrValue::str("twelve")),
            (Cow::Borrowed("d"), AttrValue::Bool(true)),
            (Cow::Borrowed("e"), AttrValue::str("True")),
        ]);
        assert_eq!(number(&attrs, "a"), Some(12.0));
        assert_eq!(number(&attrs, "b"), Some(3.5));
        assert_eq!(number(&attrs, "c"), None);
        assert_eq!(number(&attrs, "d"), None);
        assert_eq!(boolean(&attrs, "d"), Some(true));
        assert_eq!(boolean(&attrs, "e"), Some(true));
        assert_eq!(boolean(&attrs, "a"), None);
    }

    #[test]
    fn derived_ids_are_stable_and_well_formed() {
        let a = derived_trace_id(&["claude-code", "s", "p"]);
        assert_eq!(a, derived_trace_id(&["claude-code", "s", "p"]));
        assert_ne!(a, derived_trace_id(&["claude-code", "sp", ""]));
        assert_eq!(a.len(), 32);
        assert_eq!(derived_span_id(&["x"]).len(), 16);
    }
}
