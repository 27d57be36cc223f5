//! Generation fields: model, model parameters, usage, cost, completion start time and prompt
//! link (server: `extractModelName`, `extractModelParameters`, `extractUsageDetails`,
//! `extractCostDetails`, `extractCompletionStartTime`, prompt linking, and the ingestion schema's
//! validation of these fields).
//!
//! # Repairs ([`Compatibility::Repair`], the default)
//!
//! The server silently drops an observation whose generation fields fail its schema. In repair
//! mode we keep the observation and fix the field instead:
//!
//! | input (conformance case) | server | we |
//! |---|---|---|
//! | completion start without zone, `2026-01-01T09:00:00.420` (`completion-start-time-rejected-forms`, span `naive`) | drops the observation | reads it as UTC, appends `Z` |
//! | completion start with a space, `2026-01-01 09:00:00.420` (same case, span `space`) | drops the observation | replaces the space with `T`, appends `Z` |
//! | completion start as an epoch-ms number (same case, span `epoch-ms`) | drops the observation | formats it as ISO-8601 UTC |
//! | prompt version as a numeric string `"3"` (`prompt-link-invalid-forms`, span `answer-string-version`) | drops the observation | uses the integer |
//! | prompt name without a version (same case, span `answer-no-version`) | drops the observation | drops the prompt link, keeps the observation |

mod aggregate;
mod usage;

use serde_json::{Map, Value};

use super::compatibility::Compatibility;
use super::context::SpanContext;
use crate::conventions::ttft_completion_start_ms;
use crate::keys;
use crate::record::ObservationType;
use crate::time::{format_iso_millis, parse_date_lenient, parse_iso_with_offset};
use crate::value::{AttrValue, js_number, json_is_truthy, json_parse};

use self::aggregate::is_aggregate_operation;
#[cfg(test)]
use self::usage::normalize_usage;

/// The generation fields of a generation-like observation, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationFields {
    /// Model name.
    pub model: Option<String>,
    /// Model parameters (sanitized: strings and numbers); `None` is `null`.
    pub model_parameters: Option<Map<String, Value>>,
    /// Usage details (normalized); `None` or empty → omitted.
    pub usage_details: Option<Map<String, Value>>,
    /// Cost details (normalized); `None` or empty → omitted.
    pub cost_details: Option<Map<String, Value>>,
    /// Completion start time as an ISO-8601 string with offset.
    pub completion_start_time: Option<String>,
    /// Prompt name.
    pub prompt_name: Option<String>,
    /// Prompt version.
    pub prompt_version: Option<i64>,
}

/// Why the server's schema would reject the generation fields, with the fields as derived.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The fields as derived (invalid ones left out or as close as representable).
    pub fields: Box<GenerationFields>,
    /// The schema's error messages.
    pub errors: Vec<String>,
}

/// Derives and validates the generation fields of a span of a generation-like type.
pub fn generation_fields(
    cx: &SpanContext<'_, '_>,
    kind: ObservationType,
    compatibility: Compatibility,
    start_unix_ms: i64,
) -> Result<GenerationFields, Rejection> {
    let repair = compatibility == Compatibility::Repair;
    let mut errors = Vec::new();
    let completion_start_time = completion_start_time(cx, start_unix_ms, repair, &mut errors);
    let (prompt_name, prompt_version) = if kind == ObservationType::Generation {
        prompt_link(cx, repair, &mut errors)
    } else {
        (None, None)
    };
    let fields = GenerationFields {
        model: model(cx, repair),
        model_parameters: match model_parameters(cx, repair) {
            Value::Object(m) => Some(m),
            Value::Null => None,
            other => {
                // Only the server mode gets here: repair mode skips non-record candidates.
                errors.push(format!(
                    "body.modelParameters: Invalid input: expected record, received {}",
                    js_type_name(&other)
                ));
                None
            }
        },
        usage_details: usage::usage_details(cx, repair),
        cost_details: usage::cost_details(cx, repair),
        completion_start_time,
        prompt_name,
        prompt_version,
    };
    if errors.is_empty() {
        Ok(fields)
    } else {
        Err(Rejection {
            fields: Box::new(fields),
            errors,
        })
    }
}

/// Model keys in precedence order: response model beats request model.
const MODEL_KEYS: [&str; 7] = [
    keys::LANGFUSE_OBSERVATION_MODEL_NAME,
    keys::GEN_AI_RESPONSE_MODEL,
    keys::AI_MODEL_ID,
    keys::GEN_AI_REQUEST_MODEL,
    keys::LLM_RESPONSE_MODEL,
    keys::LLM_MODEL_NAME,
    keys::MODEL,
];

/// The model name: first truthy model key, then Genkit's model span name.
pub fn model(cx: &SpanContext<'_, '_>, repair: bool) -> Option<String> {
    if is_aggregate_operation(cx, repair) {
        return None;
    }
    let attrs = cx.attrs();
    MODEL_KEYS
        .iter()
        .find_map(|k| attrs.truthy(k))
        .or_else(|| {
            (attrs.get_str(keys::GENKIT_METADATA_SUBTYPE) == Some("model"))
                .then(|| attrs.truthy(keys::GENKIT_NAME))
                .flatten()
        })
        .map(|v| v.to_json_string().into_owned())
}

/// Strings and numbers kept; everything else JSON-stringified.
fn sanitize_json(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(_) | Value::Number(_) => (k, v),
            other => {
                let s = crate::value::js_json_stringify(&other);
                (k, Value::String(s))
            }
        })
        .collect()
}

fn sanitize_attr(v: &AttrValue<'_>) -> Value {
    match v {
        AttrValue::Str(s) => Value::String(s.to_string()),
        AttrValue::Number(n) => big_integer(*n).unwrap_or_else(|| js_number(*n)),
        other => Value::String(other.to_json_string().into_owned()),
    }
}

/// Integral doubles in `[2^63, 2^64)` as the JSON integer the server's text reads back as.
fn big_integer(n: f64) -> Option<Value> {
    (n.fract() == 0.0 && (2f64.powi(63)..2f64.powi(64)).contains(&n))
        // JavaScript prints the shortest digits (…776000); reading those back gives this u64.
        .then(|| crate::value::js_number_to_string(n).parse::<u64>().ok())
        .flatten()
        .map(|u| Value::Number(serde_json::Number::from(u)))
}

/// A truthy attribute parsed as JSON (`None` when absent or not JSON).
fn json_attr(cx: &SpanContext<'_, '_>, key: &str) -> Option<Value> {
    let v = cx.attrs().truthy(key)?;
    json_parse(&v.to_js_string())
}

/// `String(v)` of an attribute, or `null` when absent.
fn ai_param(cx: &SpanContext<'_, '_>, keys_in_order: &[&str]) -> Value {
    keys_in_order
        .iter()
        .find_map(|k| cx.attr(k))
        .map_or(Value::Null, |v| {
            Value::String(v.to_js_string().into_owned())
        })
}

/// `typeof` of a JSON value, as the schema's messages name it.
fn js_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The server's `sanitizeModelParams`: objects and arrays (by index) become records of strings
/// and numbers; any other value is returned as it is.
fn sanitize_params(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(sanitize_json(m)),
        Value::Array(items) => Value::Object(sanitize_json(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
        )),
        other => other,
    }
}

/// `sanitizeModelParams(JSON.parse(value))` of a truthy attribute; `None` when it is absent,
/// falsy or not JSON (the server's `catch` falls through).
fn parsed_params(cx: &SpanContext<'_, '_>, key: &str) -> Option<Value> {
    let v = cx.attrs().truthy(key)?;
    json_parse(&v.to_js_string()).map(sanitize_params)
}

/// Object spread `{...value}` into `m`: a record's entries, a string's characters by index;
/// other values add nothing.
fn spread_into(m: &mut Map<String, Value>, value: Value) {
    match value {
        Value::Object(entries) => m.extend(entries),
        Value::String(s) => {
            for (i, c) in s.chars().enumerate() {
                m.insert(i.to_string(), Value::String(c.to_string()));
            }
        }
        _ => {}
    }
}

/// Model parameters, sanitized (server: `extractModelParameters`). The first source that
/// yields a value wins, whatever its shape: `null` is a `null` field, and a value that is not a
/// record (the JSON text `42`, say) makes the server's schema drop the observation. In repair
/// mode such values are skipped and the next source is tried.
pub fn model_parameters(cx: &SpanContext<'_, '_>, repair: bool) -> Value {
    let usable = |v: &Value| !repair || matches!(v, Value::Object(_) | Value::Null);
    let explicit = parsed_params(cx, keys::LANGFUSE_OBSERVATION_MODEL_PARAMETERS);
    let scope = cx.scope_name();
    if scope == keys::SCOPE_VERCEL_AI {
        let provider = json_attr(cx, "ai.response.providerMetadata");
        let tier = provider
            .as_ref()
            .and_then(|p| p.get("openai"))
            .and_then(|o| o.get("serviceTier"))
            .filter(|v| !v.is_null())
            .map(|v| match v {
                Value::String(s) => Value::String(s.clone()),
                other => Value::String(crate::value::js_json_stringify(other)),
            });
        let mut m = Map::new();
        m.insert("maxSteps".into(), ai_param(cx, &["ai.settings.maxSteps"]));
        m.insert("toolChoice".into(), ai_param(cx, &["ai.prompt.toolChoice"]));
        m.insert(
            "maxTokens".into(),
            ai_param(cx, &["gen_ai.request.max_tokens"]),
        );
        m.insert(
            "finishReason".into(),
            ai_param(
                cx,
                &["gen_ai.response.finish_reasons", "gen_ai.finishReason"],
            ),
        );
        m.insert(
            "system".into(),
            ai_param(cx, &["gen_ai.system", "ai.model.provider"]),
        );
        m.insert(
            "maxRetries".into(),
            ai_param(cx, &["ai.settings.maxRetries"]),
        );
        m.insert("mode".into(), ai_param(cx, &["ai.settings.mode"]));
        m.insert(
            "temperature".into(),
            ai_param(cx, &["gen_ai.request.temperature"]),
        );
        m.insert(
            "service_tier".into(),
            tier.unwrap_or_else(|| ai_param(cx, &["gen_ai.request.service_tier"])),
        );
        if let Some(explicit) = explicit {
            spread_into(&mut m, explicit);
        }
        return Value::Object(m);
    }
    if let Some(explicit) = explicit.filter(|e| json_is_truthy(e) && usable(e)) {
        return explicit;
    }
    if scope == keys::SCOPE_GENKIT_TRACER {
        let config = json_attr(cx, keys::GENKIT_INPUT)
            .and_then(|i| i.get("config").cloned())
            .or_else(|| {
                json_attr(cx, keys::GENKIT_OUTPUT)
                    .and_then(|o| o.get("request").and_then(|r| r.get("config")).cloned())
            });
        if let Some(config) = config
            .filter(json_is_truthy)
            .map(sanitize_params)
            .filter(|c| usable(c))
        {
            return config;
        }
    }
    for key in [keys::LLM_INVOCATION_PARAMETERS, keys::MODEL_CONFIG] {
        if let Some(params) = parsed_params(cx, key).filter(|p| usable(p)) {
            return params;
        }
    }
    let mut m = Map::new();
    for prefix in ["gen_ai.request.", "llm.invocation_parameters."] {
        for (k, v) in cx.attrs().with_prefix(prefix) {
            let name = &k[prefix.len()..];
            if name != "model" {
                m.insert(name.to_owned(), sanitize_attr(v));
            }
        }
    }
    Value::Object(m)
}

/// Whether the schema accepts the text as an ISO-8601 date-time with offset.
fn is_schema_datetime(text: &str) -> bool {
    text.as_bytes().get(10) == Some(&b'T')
        && !text.ends_with('z')
        && parse_iso_with_offset(text).is_some()
}

/// The completion start time candidate before schema validation.
enum StartCandidate {
    Text(String),
    EpochMs(f64),
}

fn completion_start_time(
    cx: &SpanContext<'_, '_>,
    start_unix_ms: i64,
    repair: bool,
    errors: &mut Vec<String>,
) -> Option<String> {
    let attrs = cx.attrs();
    let candidate = match attrs.get(keys::LANGFUSE_OBSERVATION_COMPLETION_START_TIME) {
        Some(AttrValue::Str(s)) if parse_date_lenient(s).is_some() => {
            Some(StartCandidate::Text(s.to_string()))
        }
        Some(AttrValue::Str(s)) => match json_parse(s) {
            Some(Value::String(inner)) if parse_date_lenient(&inner).is_some() => {
                Some(StartCandidate::Text(inner))
            }
            _ => None,
        },
        Some(AttrValue::Number(n)) if n.is_finite() && n.abs() <= 8.64e15 => {
            Some(StartCandidate::EpochMs(*n))
        }
        _ => None,
    };
    let text = match candidate {
        Some(StartCandidate::Text(t)) => t,
        Some(StartCandidate::EpochMs(ms)) => {
            if repair {
                // Guarded above: |ms| ≤ 8.64e15 fits i64.
                return Some(format_iso_millis(ms.trunc() as i64));
            }
            errors.push(
                "body.completionStartTime: Invalid input: expected string, received number".into(),
            );
            return None;
        }
        None => {
            return ms_to_first_chunk(cx, start_unix_ms).or_else(|| {
                // Repair: the server does not read the GenAI convention's time to first chunk.
                let start_nanos = cx.span.start_time_unix_nano.or_else(|| {
                    u64::try_from(start_unix_ms)
                        .ok()
                        .and_then(|ms| ms.checked_mul(1_000_000))
                })?;
                repair
                    .then(|| ttft_completion_start_ms(start_nanos, cx.attrs()))
                    .flatten()
                    .map(format_iso_millis)
            });
        }
    };
    if is_schema_datetime(&text) {
        return Some(text);
    }
    if !repair {
        errors.push("body.completionStartTime: Invalid ISO datetime".into());
        return Some(text);
    }
    Some(repair_datetime(&text))
}

/// A date-time without a zone (or with a space separator) as UTC ISO-8601 with `Z`.
fn repair_datetime(text: &str) -> String {
    let b = text.as_bytes();
    let local_form = b.len() > 10 && matches!(b[10], b' ' | b't' | b'T');
    if local_form && parse_iso_with_offset(text).is_none() {
        let mut out = String::with_capacity(text.len() + 1);
        out.push_str(&text[..10]);
        out.push('T');
        out.push_str(&text[11..]);
        out.push('Z');
        if is_schema_datetime(&out) {
            return out;
        }
    }
    parse_date_lenient(text).map_or_else(|| text.to_owned(), format_iso_millis)
}

fn ms_to_first_chunk(cx: &SpanContext<'_, '_>, start_unix_ms: i64) -> Option<String> {
    let attrs = cx.attrs();
    let v = attrs
        .get(keys::AI_RESPONSE_MS_TO_FIRST_CHUNK)
        .or_else(|| attrs.get(keys::AI_STREAM_MS_TO_FIRST_CHUNK))?;
    if !v.is_truthy() {
        return None;
    }
    let ms = v.to_js_number()?.ceil();
    let at = start_unix_ms as f64 + ms;
    // new Date(x).toISOString() throws outside the Date range; the server then yields null.
    (at.is_finite() && at.abs() <= 8.64e15).then(|| format_iso_millis(at as i64))
}

/// The prompt link (generations only), validated like the schema: an integer version, and name
/// and version both set or both unset.
fn prompt_link(
    cx: &SpanContext<'_, '_>,
    repair: bool,
    errors: &mut Vec<String>,
) -> (Option<String>, Option<i64>) {
    let attrs = cx.attrs();
    let ai_prompt = || {
        attrs
            .truthy(keys::AI_TELEMETRY_METADATA_LANGFUSE_PROMPT)
            .and_then(|v| json_parse(&v.to_js_string()))
            .filter(Value::is_object)
    };
    let name_value = attrs
        .get(keys::LANGFUSE_OBSERVATION_PROMPT_NAME)
        .or_else(|| attrs.get(keys::LANGFUSE_PROMPT_NAME))
        .map(|v| v.to_json())
        .or_else(|| ai_prompt().and_then(|p| p.get("name").cloned()))
        .filter(|v| !v.is_null());
    let version_value = attrs
        .get(keys::LANGFUSE_OBSERVATION_PROMPT_VERSION)
        .or_else(|| attrs.get(keys::LANGFUSE_PROMPT_VERSION))
        .map(|v| v.to_json())
        .or_else(|| ai_prompt().and_then(|p| p.get("version").cloned()))
        .filter(|v| !v.is_null());

    if repair
        && name_value.is_none()
        && version_value.is_none()
        && let Some((name, version)) = semconv_prompt_link(cx)
    {
        return (Some(name), Some(version));
    }

    let mut invalid = false;
    let name = match name_value {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            invalid = true;
            errors_push(
                errors,
                repair,
                "body.promptName: Invalid input: expected string",
            );
            repair.then(|| crate::value::js_json_stringify(&other))
        }
    };
    let version = match version_value {
        None => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Some(i),
            None => {
                invalid = true;
                errors_push(
                    errors,
                    repair,
                    "body.promptVersion: Invalid input: expected int, received number",
                );
                None
            }
        },
        Some(Value::String(s)) => {
            errors_push(
                errors,
                repair,
                "body.promptVersion: Invalid input: expected number, received string",
            );
            invalid = !repair;
            let parsed = s.trim().parse::<i64>().ok();
            if parsed.is_none() {
                invalid = true;
            }
            parsed.filter(|_| repair)
        }
        Some(_) => {
            invalid = true;
            errors_push(
                errors,
                repair,
                "body.promptVersion: Invalid input: expected number",
            );
            None
        }
    };
    let _ = invalid;
    match (name, version) {
        (Some(n), Some(v)) => (Some(n), Some(v)),
        (None, None) => (None, None),
        (n, v) => {
            if repair {
                (None, None)
            } else {
                if errors.is_empty() {
                    errors.push("body: Invalid input".into());
                }
                (n, v)
            }
        }
    }
}

/// The prompt link of the GenAI conventions (repair mode, when no Langfuse prompt attribute is
/// set): `gen_ai.prompt.name` with `gen_ai.prompt.version`, a string there but an integer in
/// Langfuse, so the link is made only when the version reads as an integer.
fn semconv_prompt_link(cx: &SpanContext<'_, '_>) -> Option<(String, i64)> {
    let attrs = cx.attrs();
    let name = attrs
        .get_str(keys::GEN_AI_PROMPT_NAME)
        .filter(|n| !n.is_empty())?;
    let version = match attrs.get(keys::GEN_AI_PROMPT_VERSION)? {
        AttrValue::Str(s) => s.trim().parse::<i64>().ok()?,
        AttrValue::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => *n as i64,
        _ => return None,
    };
    Some((name.to_owned(), version))
}

fn errors_push(errors: &mut Vec<String>, repair: bool, message: &str) {
    if !repair {
        errors.push(message.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::span::{Attributes, Span};
    use crate::translate::context::in_default_context;

    fn fields(
        attrs: &[(&'static str, AttrValue<'static>)],
        compat: Compatibility,
    ) -> Result<GenerationFields, Rejection> {
        let span = Span {
            attributes: Attributes::from_pairs(
                attrs.iter().map(|(k, v)| (Cow::Borrowed(*k), v.clone())),
            ),
            ..Span::default()
        };
        in_default_context(&span, |cx| {
            generation_fields(cx, ObservationType::Generation, compat, 1_767_258_000_000)
        })
    }

    fn cst(v: AttrValue<'static>, compat: Compatibility) -> Result<GenerationFields, Rejection> {
        fields(
            &[(keys::LANGFUSE_OBSERVATION_COMPLETION_START_TIME, v)],
            compat,
        )
    }

    #[test]
    fn completion_start_time_without_zone_is_rejected_or_repaired() {
        let v = AttrValue::str("2026-01-01T09:00:00.420");
        assert!(cst(v.clone(), Compatibility::Server).is_err());
        let ok = cst(v, Compatibility::Repair).expect("repaired");
        assert_eq!(
            ok.completion_start_time.as_deref(),
            Some("2026-01-01T09:00:00.420Z")
        );
    }

    #[test]
    fn completion_start_time_with_space_is_rejected_or_repaired() {
        let v = AttrValue::str("2026-01-01 09:00:00.420");
        assert!(cst(v.clone(), Compatibility::Server).is_err());
        let ok = cst(v, Compatibility::Repair).expect("repaired");
        assert_eq!(
            ok.completion_start_time.as_deref(),
            Some("2026-01-01T09:00:00.420Z")
        );
    }

    #[test]
    fn completion_start_time_epoch_ms_is_rejected_or_repaired() {
        let v = AttrValue::Number(1_767_258_000_420.0);
        assert!(cst(v.clone(), Compatibility::Server).is_err());
        let ok = cst(v, Compatibility::Repair).expect("repaired");
        assert_eq!(
            ok.completion_start_time.as_deref(),
            Some("2026-01-01T09:00:00.420Z")
        );
    }

    #[test]
    fn completion_start_time_json_quoted_is_unquoted() {
        let v = AttrValue::str("\"2026-01-01T09:00:00.420123Z\"");
        let ok = cst(v, Compatibility::Server).expect("valid");
        assert_eq!(
            ok.completion_start_time.as_deref(),
            Some("2026-01-01T09:00:00.420123Z")
        );
    }

    #[test]
    fn time_to_first_chunk_gives_the_completion_start_in_repair_mode_only() {
        let attrs = [(
            keys::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
            AttrValue::Number(0.4205),
        )];
        let server = fields(&attrs, Compatibility::Server).expect("valid");
        assert_eq!(server.completion_start_time, None);
        let repaired = fields(&attrs, Compatibility::Repair).expect("valid");
        assert_eq!(
            repaired.completion_start_time.as_deref(),
            Some("2026-01-01T09:00:00.420Z")
        );
    }

    #[test]
    fn explicit_completion_start_beats_time_to_first_chunk() {
        let attrs = [
            (
                keys::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
                AttrValue::Number(2.0),
            ),
            (
                keys::LANGFUSE_OBSERVATION_COMPLETION_START_TIME,
                AttrValue::str("2026-01-01T09:00:00.100Z"),
            ),
        ];
        let ok = fields(&attrs, Compatibility::Repair).expect("valid");
        assert_eq!(
            ok.completion_start_time.as_deref(),
            Some("2026-01-01T09:00:00.100Z")
        );
    }

    #[test]
    fn prompt_version_string_is_rejected_or_repaired() {
        let attrs = [
            (keys::LANGFUSE_OBSERVATION_PROMPT_NAME, AttrValue::str("p")),
            (
                keys::LANGFUSE_OBSERVATION_PROMPT_VERSION,
                AttrValue::str("3"),
            ),
        ];
        assert!(fields(&attrs, Compatibility::Server).is_err());
        let ok = fields(&attrs, Compatibility::Repair).expect("repaired");
        assert_eq!(
            (ok.prompt_name.as_deref(), ok.prompt_version),
            (Some("p"), Some(3))
        );
    }

    #[test]
    fn prompt_name_without_version_is_rejected_or_unlinked() {
        let attrs = [(keys::LANGFUSE_OBSERVATION_PROMPT_NAME, AttrValue::str("p"))];
        assert!(fields(&attrs, Compatibility::Server).is_err());
        let ok = fields(&attrs, Compatibility::Repair).expect("repaired");
        assert_eq!((ok.prompt_name, ok.prompt_version), (None, None));
    }

    #[test]
    fn gen_ai_prompt_name_and_string_version_link_the_prompt_in_repair_mode() {
        let attrs = [
            (keys::GEN_AI_PROMPT_NAME, AttrValue::str("support-answer")),
            (keys::GEN_AI_PROMPT_VERSION, AttrValue::str("4")),
        ];
        let ok = fields(&attrs, Compatibility::Repair).expect("valid");
        assert_eq!(
            (ok.prompt_name.as_deref(), ok.prompt_version),
            (Some("support-answer"), Some(4))
        );
        let server = fields(&attrs, Compatibility::Server).expect("valid");
        assert_eq!((server.prompt_name, server.prompt_version), (None, None));
    }

    #[test]
    fn gen_ai_prompt_version_that_is_not_an_integer_links_nothing() {
        let attrs = [
            (keys::GEN_AI_PROMPT_NAME, AttrValue::str("support-answer")),
            (keys::GEN_AI_PROMPT_VERSION, AttrValue::str("2026-11-rc1")),
        ];
        let ok = fields(&attrs, Compatibility::Repair).expect("valid");
        assert_eq!((ok.prompt_name, ok.prompt_version), (None, None));
    }

    #[test]
    fn langfuse_prompt_attributes_beat_gen_ai_prompt_attributes() {
        let attrs = [
            (keys::LANGFUSE_OBSERVATION_PROMPT_NAME, AttrValue::str("lf")),
            (
                keys::LANGFUSE_OBSERVATION_PROMPT_VERSION,
                AttrValue::Number(7.0),
            ),
            (keys::GEN_AI_PROMPT_NAME, AttrValue::str("semconv")),
            (keys::GEN_AI_PROMPT_VERSION, AttrValue::str("1")),
        ];
        let ok = fields(&attrs, Compatibility::Repair).expect("valid");
        assert_eq!(
            (ok.prompt_name.as_deref(), ok.prompt_version),
            (Some("lf"), Some(7))
        );
    }

    #[test]
    fn response_model_beats_request_model() {
        let attrs = [
            (keys::GEN_AI_REQUEST_MODEL, AttrValue::str("req")),
            (keys::GEN_AI_RESPONSE_MODEL, AttrValue::str("resp")),
        ];
        let ok = fields(&attrs, Compatibility::Server).expect("valid");
        assert_eq!(ok.model.as_deref(), Some("resp"));
    }

    #[test]
    fn model_parameters_are_sanitized() {
        let attrs = [(
            keys::LANGFUSE_OBSERVATION_MODEL_PARAMETERS,
            AttrValue::str(r#"{"t":0.1,"stop":["END"],"lp":false}"#),
        )];
        let ok = fields(&attrs, Compatibility::Server).expect("valid");
        assert_eq!(
            Value::Object(ok.model_parameters.unwrap()),
            serde_json::json!({"t":0.1,"stop":"[\"END\"]","lp":"false"})
        );
    }

    fn params(v: AttrValue<'static>, compat: Compatibility) -> Result<GenerationFields, Rejection> {
        fields(&[(keys::LANGFUSE_OBSERVATION_MODEL_PARAMETERS, v)], compat)
    }

    #[test]
    fn model_parameters_array_blob_is_spread_by_index() {
        let ok = params(AttrValue::str(r#"["a",{"b":1}]"#), Compatibility::Server).expect("valid");
        assert_eq!(
            ok.model_parameters.map(Value::Object),
            Some(serde_json::json!({"0":"a","1":"{\"b\":1}"}))
        );
    }

    #[test]
    fn model_parameters_primitive_blob_is_rejected_or_skipped() {
        for text in ["42", r#""fast""#, "true"] {
            assert!(
                params(AttrValue::str(text), Compatibility::Server).is_err(),
                "{text}"
            );
            let ok = params(AttrValue::str(text), Compatibility::Repair).expect("repaired");
            assert_eq!(ok.model_parameters, Some(Map::new()), "{text}");
        }
    }

    #[test]
    fn model_parameters_invalid_or_falsy_blob_falls_through() {
        for v in [
            AttrValue::str("{oops"),
            AttrValue::str("null"),
            AttrValue::str("0"),
        ] {
            let ok = fields(
                &[
                    (keys::LANGFUSE_OBSERVATION_MODEL_PARAMETERS, v.clone()),
                    ("gen_ai.request.temperature", AttrValue::Number(0.5)),
                ],
                Compatibility::Server,
            )
            .expect("valid");
            assert_eq!(
                ok.model_parameters.map(Value::Object),
                Some(serde_json::json!({"temperature":0.5})),
                "{v:?}"
            );
        }
    }

    #[test]
    fn invocation_parameters_null_blob_gives_null_parameters() {
        let ok = fields(
            &[
                (keys::LLM_INVOCATION_PARAMETERS, AttrValue::str("null")),
                ("gen_ai.request.temperature", AttrValue::Number(0.5)),
            ],
            Compatibility::Server,
        )
        .expect("valid");
        assert_eq!(ok.model_parameters, None);
    }

    #[test]
    fn usage_aliases_and_cache_subtraction() {
        let attrs = [
            ("gen_ai.usage.prompt_tokens", AttrValue::Number(100.0)),
            ("gen_ai.usage.input_tokens", AttrValue::Number(70.0)),
            (
                "gen_ai.usage.cache_read_input_tokens",
                AttrValue::Number(20.0),
            ),
            ("gen_ai.usage.output_tokens", AttrValue::str("15")),
        ];
        let ok = fields(&attrs, Compatibility::Server).expect("valid");
        assert_eq!(
            ok.usage_details.map(Value::Object),
            Some(serde_json::json!({"input":80,"output":15,"input_cached_tokens":20}))
        );
    }

    fn usage(attrs: &[(&'static str, f64)], compat: Compatibility) -> Option<Value> {
        let attrs: Vec<(&'static str, AttrValue<'static>)> = attrs
            .iter()
            .map(|(k, v)| (*k, AttrValue::Number(*v)))
            .collect();
        fields(&attrs, compat)
            .expect("valid")
            .usage_details
            .map(Value::Object)
    }

    /// The example of langfuse#17117: input 300 includes 40 cache reads and 25 cache writes.
    #[test]
    fn cache_write_input_tokens_is_a_cache_creation_subtracted_from_input() {
        let attrs = [
            ("gen_ai.usage.input_tokens", 300.0),
            ("gen_ai.usage.cache_read.input_tokens", 40.0),
            ("gen_ai.usage.cache_write.input_tokens", 25.0),
        ];
        // The server (before the fix) keeps the new spelling as a raw, unsubtracted key.
        assert_eq!(
            usage(&attrs, Compatibility::Server),
            Some(
                serde_json::json!({"input":260,"cache_write.input_tokens":25,"input_cached_tokens":40})
            )
        );
        assert_eq!(
            usage(&attrs, Compatibility::Repair),
            Some(
                serde_json::json!({"input":235,"input_cached_tokens":40,"input_cache_creation":25})
            )
        );
    }

    #[test]
    fn cache_creation_old_spelling_still_counts_as_cache_creation() {
        let attrs = [
            ("gen_ai.usage.input_tokens", 100.0),
            ("gen_ai.usage.cache_creation.input_tokens", 10.0),
        ];
        let want = Some(serde_json::json!({"input":90,"input_cache_creation":10}));
        assert_eq!(usage(&attrs, Compatibility::Repair), want);
        assert_eq!(usage(&attrs, Compatibility::Server), want);
    }

    /// The semconv example: 100 text tokens (40 of them cached) + 200 image tokens = 300 input.
    #[test]
    fn input_tokens_include_cached_tokens_and_the_buckets_add_up_to_it() {
        let attrs = [
            ("gen_ai.usage.input_tokens", 300.0),
            ("gen_ai.usage.output_tokens", 50.0),
            ("gen_ai.usage.cache_read.input_tokens", 40.0),
        ];
        let got = usage(&attrs, Compatibility::Repair).unwrap();
        assert_eq!(
            got,
            serde_json::json!({"input":260,"output":50,"input_cached_tokens":40})
        );
        let sum: f64 = got
            .as_object()
            .unwrap()
            .values()
            .filter_map(Value::as_f64)
            .sum();
        assert_eq!(sum, 350.0);
    }

    #[test]
    fn modality_counts_are_subsets_and_never_added_to_the_total() {
        let attrs = [
            ("gen_ai.usage.input_tokens", 300.0),
            ("gen_ai.usage.output_tokens", 50.0),
            ("gen_ai.usage.cache_read.input_tokens", 40.0),
            ("gen_ai.usage.text.input_tokens", 100.0),
            ("gen_ai.usage.image.input_tokens", 200.0),
            ("gen_ai.usage.text.cache_read.input_tokens", 40.0),
            ("gen_ai.usage.audio.output_tokens", 50.0),
        ];
        let got = usage(&attrs, Compatibility::Repair).unwrap();
        // Kept under their convention names, not subtracted, and an explicit total keeps the
        // server from summing them in.
        assert_eq!(
            got,
            serde_json::json!({"input":260,"output":50,"audio.output_tokens":50,
                "image.input_tokens":200,"text.cache_read.input_tokens":40,
                "text.input_tokens":100,"input_cached_tokens":40,"total":350})
        );
        // A reported total is kept as it is.
        let mut with_total = attrs.to_vec();
        with_total.push(("gen_ai.usage.total_tokens", 999.0));
        let got = usage(&with_total, Compatibility::Repair).unwrap();
        assert_eq!(got["total"], 999);
        // The server mode keeps the keys and leaves the total to the server.
        let server = usage(&attrs, Compatibility::Server).unwrap();
        assert!(server.get("total").is_none());
    }

    #[test]
    fn usage_openai_chat_shape_is_normalized() {
        let map = serde_json::json!({"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,
            "prompt_tokens_details":{"cached_tokens":4}});
        let Value::Object(map) = map else { return };
        assert_eq!(
            normalize_usage(&map).map(Value::Object),
            Some(serde_json::json!({"input":6,"output":5,"total":15,"input_cached_tokens":4}))
        );
    }

    #[test]
    fn usage_raw_map_keeps_non_negative_integers() {
        let map = serde_json::json!({"a":1,"b":"7","c":1.5,"d":-3});
        let Value::Object(map) = map else { return };
        assert_eq!(
            normalize_usage(&map).map(Value::Object),
            Some(serde_json::json!({"a":1,"b":7}))
        );
    }

    #[test]
    fn cost_keeps_non_negative_numbers() {
        let attrs = [(
            keys::LANGFUSE_OBSERVATION_COST_DETAILS,
            AttrValue::str(r#"{"input":0.5,"neg":-1,"cur":"USD"}"#),
        )];
        let ok = fields(&attrs, Compatibility::Server).expect("valid");
        assert_eq!(
            ok.cost_details.map(Value::Object),
            Some(serde_json::json!({"input":0.5}))
        );
    }
}
