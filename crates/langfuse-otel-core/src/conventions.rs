//! Signals of the current GenAI conventions that the Langfuse server does not read (yet), as
//! small pure functions: the translator's repair mode uses them, and so can a span processor
//! that adds the `langfuse.*` attribute the server does read.
//!
//! | convention | derived value | `langfuse.*` attribute the server reads |
//! |---|---|---|
//! | `gen_ai.response.time_to_first_chunk` (seconds after the span start) | completion start time | `langfuse.observation.completion_start_time` |
//! | `gen_ai.tool.call.outcome = error`, or `error.type` (`gen_ai.tool.error.type`) on a GenAI span, without span status | level `ERROR`, status message from `error.type` / `error.message` | `langfuse.observation.level`, `langfuse.observation.status_message` |
//! | `langfuse.observation.skills_available` (Python SDK 5.2) | the list of `{name, version?}` | (the attribute itself) |
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use opentelemetry::KeyValue;
//! use opentelemetry::trace::Status;
//! use langfuse_otel_core::conventions::{completion_start_from_ttft, tool_failure_level};
//! use langfuse_otel_core::record::Level;
//!
//! let start = UNIX_EPOCH + Duration::from_millis(1_767_258_000_000);
//! let chat = [KeyValue::new("gen_ai.response.time_to_first_chunk", 0.25)];
//! assert_eq!(
//!     completion_start_from_ttft(start, &chat).as_deref(),
//!     Some("2026-01-01T09:00:00.250Z")
//! );
//!
//! let tool = [
//!     KeyValue::new("gen_ai.operation.name", "execute_tool"),
//!     KeyValue::new("error.type", "TimeoutError"),
//! ];
//! let failure = tool_failure_level(&tool, &Status::Unset).unwrap();
//! assert_eq!(failure.level, Level::Error);
//! assert_eq!(failure.status_message.as_deref(), Some("TimeoutError"));
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use opentelemetry::trace::Status;
use serde_json::{Map, Value};

use crate::keys;
use crate::record::Level;
use crate::span::Attributes;
use crate::time::format_iso_millis;
use crate::value::{AttrValue, json_parse};

/// Attribute look-up by key over any attribute source (the translator's [`Attributes`], an
/// `opentelemetry` key-value slice).
pub(crate) trait Lookup {
    /// The value of `key` (the last one for repeated keys), if present.
    fn lookup(&self, key: &str) -> Option<AttrValue<'_>>;
}

impl Lookup for Attributes<'_> {
    fn lookup(&self, key: &str) -> Option<AttrValue<'_>> {
        self.get(key).cloned()
    }
}

impl Lookup for [KeyValue] {
    fn lookup(&self, key: &str) -> Option<AttrValue<'_>> {
        self.iter()
            .rev()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| crate::otlp::sdk_value(&kv.value))
    }
}

/// Nanoseconds since the epoch of a `SystemTime` (`None` before the epoch or past `u64`).
fn unix_nanos(t: SystemTime) -> Option<u64> {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
}

/// Latest time `new Date()` represents, in ms (±8.64e15).
const MAX_DATE_MS: i128 = 8_640_000_000_000_000;

/// The completion start in Unix ms: span start plus `gen_ai.response.time_to_first_chunk`
/// seconds (a finite, non-negative number; a numeric string is read as a number).
pub(crate) fn ttft_completion_start_ms(
    start_unix_nanos: u64,
    attrs: &(impl Lookup + ?Sized),
) -> Option<i64> {
    let seconds = attrs
        .lookup(keys::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)?
        .to_js_number()
        .filter(|s| s.is_finite() && *s >= 0.0)?;
    // Whole nanoseconds keep the sum exact; a day's worth of seconds is far inside i128.
    let offset_nanos = (seconds * 1e9).round();
    if offset_nanos > 1e21 {
        return None;
    }
    let at_nanos = i128::from(start_unix_nanos) + offset_nanos as i128;
    let ms = at_nanos / 1_000_000;
    // Bounded above: the value fits i64.
    (ms <= MAX_DATE_MS).then_some(ms as i64)
}

/// The completion start time (ISO-8601 UTC, milliseconds) a streamed call reports through
/// `gen_ai.response.time_to_first_chunk`, for the attribute
/// `langfuse.observation.completion_start_time`.
///
/// `None` when the span has no usable time to first chunk, or already carries a completion start
/// the server reads (`langfuse.observation.completion_start_time`, the AI SDK's
/// `ai.response.msToFirstChunk` / `ai.stream.msToFirstChunk`).
pub fn completion_start_from_ttft(
    start_time: SystemTime,
    attributes: &[KeyValue],
) -> Option<String> {
    let server_reads = [
        keys::LANGFUSE_OBSERVATION_COMPLETION_START_TIME,
        keys::AI_RESPONSE_MS_TO_FIRST_CHUNK,
        keys::AI_STREAM_MS_TO_FIRST_CHUNK,
    ];
    if server_reads.iter().any(|k| attributes.lookup(k).is_some()) {
        return None;
    }
    ttft_completion_start_ms(unix_nanos(start_time)?, attributes).map(format_iso_millis)
}

/// Whether the span is a GenAI operation or tool call (where `error.type` means the call failed;
/// on other spans, an HTTP server's 4xx for example, it need not).
fn is_gen_ai_span(attrs: &(impl Lookup + ?Sized)) -> bool {
    [
        keys::GEN_AI_OPERATION_NAME,
        keys::GEN_AI_TOOL_NAME,
        keys::GEN_AI_TOOL_CALL_ID,
    ]
    .iter()
    .any(|k| attrs.lookup(k).is_some_and(|v| v.is_truthy()))
}

/// A failure the span reports through attributes: `Some(status message)` when
/// `gen_ai.tool.call.outcome` is `error` (or `failed` / `failure`, any case) or a GenAI span
/// carries `error.type` (or rig's `gen_ai.tool.error.type`). The message is
/// `"<error type>: <error.message>"`, or whichever of the two is present.
pub(crate) fn reported_failure(attrs: &(impl Lookup + ?Sized)) -> Option<Option<String>> {
    let text = |key: &str| {
        attrs
            .lookup(key)
            .filter(AttrValue::is_truthy)
            .map(|v| v.to_json_string().into_owned())
    };
    let outcome_error = attrs
        .lookup(keys::GEN_AI_TOOL_CALL_OUTCOME)
        .and_then(|v| {
            v.as_str().map(|s| {
                let s = s.trim();
                ["error", "failed", "failure"]
                    .iter()
                    .any(|f| s.eq_ignore_ascii_case(f))
            })
        })
        .unwrap_or(false);
    let error_type = text(keys::ERROR_TYPE).or_else(|| text(keys::GEN_AI_TOOL_ERROR_TYPE));
    let failed = outcome_error || (error_type.is_some() && is_gen_ai_span(attrs));
    if !failed {
        return None;
    }
    let message = text(keys::ERROR_MESSAGE);
    Some(match (error_type, message) {
        (Some(t), Some(m)) => Some(format!("{t}: {m}")),
        (t, m) => t.or(m),
    })
}

/// Level and status message a failed call reports without setting the span status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailureLevel {
    /// Always [`Level::Error`].
    pub level: Level,
    /// The status message (for `langfuse.observation.status_message`), when the span reports
    /// one and has no explicit `langfuse.observation.status_message`.
    pub status_message: Option<String>,
}

/// The `ERROR` level of a span that reports a failure through `gen_ai.tool.call.outcome = error`
/// or (on a GenAI span) `error.type`, but whose status is unset: the server would file it at
/// `DEFAULT`.
///
/// `None` when nothing failed, when the status is set (`Error` already gives `ERROR`; an
/// explicit `Ok` is the instrumentation's word), or when the span has an explicit
/// `langfuse.observation.level`.
pub fn tool_failure_level(attributes: &[KeyValue], status: &Status) -> Option<FailureLevel> {
    if !matches!(status, Status::Unset)
        || attributes
            .lookup(keys::LANGFUSE_OBSERVATION_LEVEL)
            .is_some()
    {
        return None;
    }
    let message = reported_failure(attributes)?;
    let explicit_message = attributes
        .lookup(keys::LANGFUSE_OBSERVATION_STATUS_MESSAGE)
        .is_some();
    Some(FailureLevel {
        level: Level::Error,
        status_message: message.filter(|_| !explicit_message),
    })
}

/// One skill a model call could use: Langfuse's `{name, version?}` (`version` an integer).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SkillRef {
    /// Skill name.
    pub name: String,
    /// Skill version, when known.
    pub version: Option<i64>,
}

impl SkillRef {
    /// A skill reference.
    pub fn new(name: impl Into<String>, version: Option<i64>) -> Self {
        SkillRef {
            name: name.into(),
            version,
        }
    }
}

/// The value of `langfuse.observation.skills_available` for a list of skills: compact JSON,
/// `[{"name":"refunds","version":2},{"name":"tone"}]`, as the Python SDK writes it.
///
/// ```
/// use langfuse_otel_core::conventions::{SkillRef, parse_skills_available, skills_available_json};
/// let skills = [SkillRef::new("refunds", Some(2)), SkillRef::new("tone", None)];
/// let text = skills_available_json(&skills);
/// assert_eq!(text, r#"[{"name":"refunds","version":2},{"name":"tone"}]"#);
/// assert_eq!(parse_skills_available(&text).unwrap(), skills);
/// ```
pub fn skills_available_json(skills: &[SkillRef]) -> String {
    let items: Vec<Value> = skills.iter().map(skill_json).collect();
    Value::Array(items).to_string()
}

fn skill_json(skill: &SkillRef) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(skill.name.clone()));
    if let Some(v) = skill.version {
        m.insert("version".into(), Value::from(v));
    }
    Value::Object(m)
}

/// Reads a `langfuse.observation.skills_available` value: a JSON array of `{name, version?}`
/// objects; the legacy field names `skillName` / `skillVersion` are accepted, an integral
/// version may be a number or a decimal string. Entries without a non-empty name, and versions
/// that are not integers, are left out. `None` when the text is not a JSON array.
pub fn parse_skills_available(text: &str) -> Option<Vec<SkillRef>> {
    let Value::Array(items) = json_parse(text)? else {
        return None;
    };
    Some(items.iter().filter_map(parse_skill).collect())
}

fn parse_skill(item: &Value) -> Option<SkillRef> {
    let obj = item.as_object()?;
    let field = |a: &str, b: &str| obj.get(a).filter(|v| !v.is_null()).or_else(|| obj.get(b));
    let name = field("name", "skillName")?
        .as_str()
        .filter(|n| !n.is_empty())?;
    let version = field("version", "skillVersion").and_then(|v| match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    });
    Some(SkillRef::new(name, version))
}

/// The skills a span reports in `langfuse.observation.skills_available`, normalized to the
/// compact Langfuse shape (`None` when absent or not a JSON array of skills).
pub(crate) fn skills_available(attrs: &(impl Lookup + ?Sized)) -> Option<Vec<SkillRef>> {
    let value = attrs.lookup(keys::LANGFUSE_OBSERVATION_SKILLS_AVAILABLE)?;
    match &value {
        AttrValue::Str(s) => parse_skills_available(s),
        // An array attribute of JSON objects (SDKs that cannot store maps).
        AttrValue::Array(items) => Some(
            items
                .iter()
                .filter_map(|i| i.as_str().and_then(json_parse))
                .filter_map(|v| parse_skill(&v))
                .collect(),
        ),
        _ => None,
    }
}

/// The skills as a JSON array value (for records).
pub(crate) fn skills_value(skills: &[SkillRef]) -> Value {
    Value::Array(skills.iter().map(skill_json).collect())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn time_to_first_chunk_is_seconds_after_the_span_start() {
        let attrs = [KeyValue::new(
            keys::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
            1.5,
        )];
        assert_eq!(
            completion_start_from_ttft(at(1_767_258_000_000), &attrs).as_deref(),
            Some("2026-01-01T09:00:01.500Z")
        );
    }

    #[test]
    fn time_to_first_chunk_yields_to_a_completion_start_the_server_reads() {
        for key in [
            keys::LANGFUSE_OBSERVATION_COMPLETION_START_TIME,
            keys::AI_RESPONSE_MS_TO_FIRST_CHUNK,
        ] {
            let attrs = [
                KeyValue::new(keys::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, 1.5),
                KeyValue::new(key, "x"),
            ];
            assert_eq!(completion_start_from_ttft(at(0), &attrs), None, "{key}");
        }
    }

    #[test]
    fn negative_or_non_numeric_time_to_first_chunk_is_ignored() {
        for v in [
            opentelemetry::Value::F64(-1.0),
            opentelemetry::Value::F64(f64::NAN),
            opentelemetry::Value::from("soon"),
        ] {
            let attrs = [KeyValue::new(keys::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, v)];
            assert_eq!(completion_start_from_ttft(at(0), &attrs), None);
        }
    }

    #[test]
    fn tool_call_outcome_error_without_status_is_an_error_level() {
        let attrs = [KeyValue::new(keys::GEN_AI_TOOL_CALL_OUTCOME, "error")];
        let f = tool_failure_level(&attrs, &Status::Unset).unwrap();
        assert_eq!((f.level, f.status_message), (Level::Error, None));
    }

    #[test]
    fn error_type_and_message_make_the_status_message() {
        let attrs = [
            KeyValue::new(keys::GEN_AI_TOOL_NAME, "search"),
            KeyValue::new(keys::ERROR_TYPE, "TimeoutError"),
            KeyValue::new(keys::ERROR_MESSAGE, "no answer in 5 s"),
        ];
        let f = tool_failure_level(&attrs, &Status::Unset).unwrap();
        assert_eq!(
            f.status_message.as_deref(),
            Some("TimeoutError: no answer in 5 s")
        );
    }

    #[test]
    fn rig_tool_error_type_and_failed_outcome_count_as_failures() {
        let attrs = [
            KeyValue::new(keys::GEN_AI_TOOL_CALL_OUTCOME, "Failed"),
            KeyValue::new(keys::GEN_AI_TOOL_ERROR_TYPE, "ToolCallError"),
        ];
        let f = tool_failure_level(&attrs, &Status::Unset).unwrap();
        assert_eq!(f.status_message.as_deref(), Some("ToolCallError"));
        let success = [KeyValue::new(keys::GEN_AI_TOOL_CALL_OUTCOME, "success")];
        assert_eq!(tool_failure_level(&success, &Status::Unset), None);
    }

    #[test]
    fn error_type_outside_gen_ai_spans_is_not_a_failure() {
        let attrs = [KeyValue::new(keys::ERROR_TYPE, "404")];
        assert_eq!(tool_failure_level(&attrs, &Status::Unset), None);
    }

    #[test]
    fn a_set_status_or_explicit_level_wins_over_the_reported_failure() {
        let attrs = [KeyValue::new(keys::GEN_AI_TOOL_CALL_OUTCOME, "error")];
        assert_eq!(tool_failure_level(&attrs, &Status::Ok), None);
        assert_eq!(tool_failure_level(&attrs, &Status::error("x")), None);
        let explicit = [
            KeyValue::new(keys::GEN_AI_TOOL_CALL_OUTCOME, "error"),
            KeyValue::new(keys::LANGFUSE_OBSERVATION_LEVEL, "WARNING"),
        ];
        assert_eq!(tool_failure_level(&explicit, &Status::Unset), None);
    }

    #[test]
    fn skills_available_accepts_legacy_field_names() {
        let got = parse_skills_available(
            r#"[{"skillName":"a","skillVersion":"3"},{"name":"b","version":2.0},{"version":1},{"name":"c","version":"x"}]"#,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                SkillRef::new("a", Some(3)),
                SkillRef::new("b", Some(2)),
                SkillRef::new("c", None)
            ]
        );
        assert_eq!(parse_skills_available(r#"{"name":"a"}"#), None);
    }
}
