//! Usage and cost details (server: `extractUsageDetails`, `extractCostDetails`) and the ingestion
//! schema's normalization of them (`UsageDetails`, `CostDetails`).

use serde_json::{Map, Number, Value};

use super::aggregate::is_aggregate_operation;
use crate::keys;
use crate::translate::context::SpanContext;
use crate::value::{AttrValue, js_number, json_parse};

/// Usage as a list of `(key, value)` in insertion order (JS object semantics, `undefined`
/// values already removed).
type Usage = Vec<(String, f64)>;

fn set(usage: &mut Usage, key: &str, value: f64) {
    match usage.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => usage.push((key.to_owned(), value)),
    }
}

fn get(usage: &Usage, key: &str) -> Option<f64> {
    usage.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// `??=`: sets the key only when it is not defined yet.
fn set_if_absent(usage: &mut Usage, key: &str, value: Option<f64>) {
    if let Some(v) = value
        && get(usage, key).is_none()
    {
        usage.push((key.to_owned(), v));
    }
}

/// The outcome of an explicit `…_details` JSON attribute.
enum Explicit {
    /// Not usable: fall through to the next source.
    FallThrough,
    /// Used: a JSON object, or `{}` for a non-object.
    Used(Map<String, Value>),
}

fn explicit_details(value: Option<&AttrValue<'_>>) -> Explicit {
    let Some(value) = value.filter(|v| v.is_truthy()) else {
        return Explicit::FallThrough;
    };
    match value {
        AttrValue::Str(s) => match json_parse(s) {
            Some(Value::Object(map)) => Explicit::Used(map),
            Some(_) => Explicit::Used(Map::new()),
            None => Explicit::FallThrough,
        },
        _ => Explicit::Used(Map::new()),
    }
}

/// The usage details as the schema stores them (`None` when nothing survives).
///
/// In repair mode (`repair`), the generic `gen_ai.usage.*` extraction also follows the current
/// GenAI conventions:
///
/// * `cache_write.input_tokens` (which replaced `cache_creation.input_tokens`) is a cache
///   creation count: stored as `input_cache_creation` and subtracted from `input`, like the old
///   spelling (the server before langfuse#17117 keeps it as a raw key and prices it at zero).
/// * `input_tokens` includes cached tokens, so cache reads and writes are subtracted from it
///   (as the server does for the spellings it knows): the buckets sum to the inclusive count.
/// * Per-modality counts (`{text,image,audio,video}.input_tokens`, `….output_tokens`,
///   `….cache_read.input_tokens`) are subsets of those totals. They stay in `usageDetails` under
///   their convention names (so they are visible), but must never be added up: when the span
///   reports no total, `total` is set to the sum of the other buckets, which is what the server
///   would compute from them alone (it sums every key when `total` is absent).
pub fn usage_details(cx: &SpanContext<'_, '_>, repair: bool) -> Option<Map<String, Value>> {
    if is_aggregate_operation(cx, repair) {
        return None;
    }
    if let Explicit::Used(map) = explicit_details(cx.attr(keys::LANGFUSE_OBSERVATION_USAGE_DETAILS))
    {
        return normalize_usage(&map);
    }
    let usage = match cx.scope_name() {
        keys::SCOPE_GENKIT_TRACER => genkit_usage(cx).unwrap_or_else(|| generic_usage(cx, repair)),
        keys::SCOPE_VERCEL_AI => vercel_usage(cx),
        keys::SCOPE_GCP_VERTEX_AGENT
            if cx.attrs().contains(keys::GCP_VERTEX_AGENT_LLM_RESPONSE) =>
        {
            vertex_usage(cx, repair)
        }
        _ => generic_usage(cx, repair),
    };
    let map: Map<String, Value> = usage.into_iter().map(|(k, v)| (k, js_number(v))).collect();
    let mut normalized = normalize_usage(&map)?;
    if repair {
        total_without_modality_subsets(&mut normalized);
    }
    Some(normalized)
}

/// Whether a usage key (prefix stripped) is a per-modality subset count of the GenAI
/// conventions: `<modality>.input_tokens`, `<modality>.output_tokens` or
/// `<modality>.cache_read.input_tokens`.
pub(crate) fn is_modality_subset(key: &str) -> bool {
    const MODALITIES: [&str; 4] = ["text.", "image.", "audio.", "video."];
    MODALITIES.iter().any(|m| {
        key.strip_prefix(m).is_some_and(|rest| {
            matches!(
                rest,
                "input_tokens" | "output_tokens" | "cache_read.input_tokens"
            )
        })
    })
}

/// Sets `total` to the sum of the buckets that are not modality subsets, when modality
/// subsets are present and no total was reported (the server would otherwise add them in).
fn total_without_modality_subsets(usage: &mut Map<String, Value>) {
    if usage.contains_key("total") || !usage.keys().any(|k| is_modality_subset(k)) {
        return;
    }
    let sum: f64 = usage
        .iter()
        .filter(|(k, _)| !is_modality_subset(k))
        .filter_map(|(_, v)| v.as_f64())
        .sum();
    usage.insert("total".into(), js_number(sum));
}

fn parse_json_attr(cx: &SpanContext<'_, '_>, key: &str) -> Option<Value> {
    match cx.attr(key)? {
        AttrValue::Str(s) => json_parse(s),
        _ => None,
    }
}

fn json_num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

fn genkit_usage(cx: &SpanContext<'_, '_>) -> Option<Usage> {
    let output = parse_json_attr(cx, keys::GENKIT_OUTPUT)?;
    let u = output.get("usage")?;
    let mut usage = Usage::new();
    let thoughts = json_num(u.get("thoughtsTokens"));
    if let Some(v) = json_num(u.get("inputTokens")) {
        usage.push(("input".into(), v));
    }
    if let Some(v) = json_num(u.get("outputTokens")) {
        usage.push(("output".into(), (v - thoughts.unwrap_or(0.0)).max(0.0)));
    }
    if let Some(v) = json_num(u.get("totalTokens")) {
        usage.push(("total".into(), v));
    }
    if let Some(v) = thoughts {
        usage.push(("output_reasoning".into(), v));
    }
    Some(usage)
}

/// JavaScript `parseInt(String(v))` for the AI SDK's token attributes.
fn parse_int(v: &AttrValue<'_>) -> Option<f64> {
    let s = v.to_js_string();
    let t = s.trim_start();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let end = digits.bytes().take_while(u8::is_ascii_digit).count();
    let n: f64 = digits.get(..end).filter(|d| !d.is_empty())?.parse().ok()?;
    Some(if neg { -n } else { n })
}

fn vercel_usage(cx: &SpanContext<'_, '_>) -> Usage {
    let attrs = cx.attrs();
    let mut usage = Usage::new();
    let first = |a: &str, b: &str| {
        attrs
            .get(a)
            .or_else(|| attrs.get(b))
            .map(|v| parse_int(v).unwrap_or(f64::NAN))
    };
    let input = first("gen_ai.usage.prompt_tokens", "gen_ai.usage.input_tokens");
    let output = first(
        "gen_ai.usage.completion_tokens",
        "gen_ai.usage.output_tokens",
    );
    let total = attrs
        .get("ai.usage.tokens")
        .map(|v| parse_int(v).unwrap_or(f64::NAN));
    // Keys keep their insertion slot even while undefined, like the server's object literal.
    let mut slots: Vec<(&str, Option<f64>)> =
        vec![("input", input), ("output", output), ("total", total)];
    for (key, name) in [
        ("ai.usage.cachedInputTokens", "input_cached_tokens"),
        ("ai.usage.reasoningTokens", "output_reasoning_tokens"),
    ] {
        if let Some(v) = attrs.get(key) {
            slots.push((name, v.to_js_number()));
        }
    }
    for (k, v) in slots {
        match v {
            Some(v) => usage.push((k.to_owned(), v)),
            None => usage.push((k.to_owned(), f64::NAN)),
        }
    }
    // NaN marks "slot reserved, value undefined"; resolved below.
    let defined = |usage: &Usage, k: &str| get(usage, k).filter(|v| !v.is_nan());
    let fill = |usage: &mut Usage, k: &str, v: Option<f64>| {
        if defined(usage, k).is_none()
            && let Some(v) = v
        {
            set(usage, k, v);
        }
    };
    if let Some(meta) = parse_json_attr(cx, "ai.response.providerMetadata") {
        let fill_from = |usage: &mut Usage, source: Option<&Value>, table: &[(&str, &str)]| {
            if let Some(source) = source {
                for (target, key) in table {
                    fill(usage, target, json_num(source.get(*key)));
                }
            }
        };
        fill_from(&mut usage, meta.get("openai"), OPENAI_PROVIDER_USAGE);
        let anthropic = meta.get("anthropic").and_then(|a| a.get("usage"));
        fill_from(&mut usage, anthropic, ANTHROPIC_PROVIDER_USAGE);
        let cache_creation = anthropic
            .and_then(|u| u.get("cache_creation"))
            .filter(|c| c.is_object());
        if cache_creation.is_some() {
            fill_from(&mut usage, cache_creation, ANTHROPIC_CACHE_CREATION_USAGE);
            // The split buckets are reported inside the total; keep only the unsplit rest.
            let reduced = (defined(&usage, "input_cache_creation").unwrap_or(0.0)
                - defined(&usage, "input_cache_creation_5m").unwrap_or(0.0)
                - defined(&usage, "input_cache_creation_1h").unwrap_or(0.0))
            .max(0.0);
            set(&mut usage, "input_cache_creation", reduced);
        }
        fill_from(
            &mut usage,
            meta.get("bedrock").and_then(|b| b.get("usage")),
            BEDROCK_PROVIDER_USAGE,
        );
    }
    let d = |usage: &Usage, k: &str| defined(usage, k).unwrap_or(0.0);
    let input = (d(&usage, "input")
        - d(&usage, "input_cached_tokens")
        - d(&usage, "input_cache_creation")
        - d(&usage, "input_cache_creation_5m")
        - d(&usage, "input_cache_creation_1h")
        - d(&usage, "input_cache_read"))
    .max(0.0);
    let output = (d(&usage, "output") - d(&usage, "output_reasoning_tokens")).max(0.0);
    set(&mut usage, "input", input);
    set(&mut usage, "output", output);
    usage.retain(|(_, v)| !v.is_nan());
    usage
}

/// Vercel AI SDK `providerMetadata` usage keys, as (usage key, provider key); the first writer
/// of a usage key wins.
const OPENAI_PROVIDER_USAGE: &[(&str, &str)] = &[
    ("input_cached_tokens", "cachedPromptTokens"),
    ("accepted_prediction_tokens", "acceptedPredictionTokens"),
    ("rejected_prediction_tokens", "rejectedPredictionTokens"),
    ("output_reasoning_tokens", "reasoningTokens"),
];
const ANTHROPIC_PROVIDER_USAGE: &[(&str, &str)] = &[
    ("input_cache_creation", "cache_creation_input_tokens"),
    ("input_cached_tokens", "cache_read_input_tokens"),
];
const ANTHROPIC_CACHE_CREATION_USAGE: &[(&str, &str)] = &[
    ("input_cache_creation_5m", "ephemeral_5m_input_tokens"),
    ("input_cache_creation_1h", "ephemeral_1h_input_tokens"),
];
const BEDROCK_PROVIDER_USAGE: &[(&str, &str)] = &[
    ("input_cache_read", "cacheReadInputTokens"),
    ("input_cache_write", "cacheWriteInputTokens"),
    ("input_cache_creation", "cacheCreationInputTokens"),
];

/// Alias groups of the generic extraction: the first defined spelling wins.
const INPUT_ALIASES: &[&str] = &["prompt_tokens", "input_tokens", "prompt"];
const OUTPUT_ALIASES: &[&str] = &["completion_tokens", "output_tokens", "completion"];
const TOTAL_ALIASES: &[&str] = &["total_tokens", "total"];
const CACHE_READ_ALIASES: &[&str] = &[
    "cache_read.input_tokens",
    "cache_read_input_tokens",
    "cache_read_tokens",
    "details.cache_read_tokens",
    "details.cache_read_input_tokens",
    "prompt_details.cache_read",
    "input_cached_tokens",
];
const CACHE_CREATION_ALIASES: &[&str] = &[
    "cache_creation.input_tokens",
    "cache_creation_input_tokens",
    "cache_write_tokens",
    "details.cache_write_tokens",
    "details.cache_creation_input_tokens",
    "prompt_details.cache_write",
    "input_cache_creation",
];
const REASONING_ALIASES: &[&str] = &["reasoning.output_tokens", "completion_details.reasoning"];
const AUDIO_ALIASES: &[&str] = &["completion_details.audio"];

/// The current convention's cache creation spelling, read first in repair mode.
const CACHE_WRITE: &str = "cache_write.input_tokens";

fn generic_usage(cx: &SpanContext<'_, '_>, repair: bool) -> Usage {
    let attrs = cx.attrs();
    let mut raw: Vec<(&str, f64)> = Vec::new();
    for (prefix, skip) in [
        ("gen_ai.usage.", Some("gen_ai.usage.cost")),
        ("llm.token_count.", None),
    ] {
        for (k, v) in attrs.with_prefix(prefix) {
            if Some(k) == skip {
                continue;
            }
            if let Some(n) = v.to_js_number() {
                raw.push((&k[prefix.len()..], n));
            }
        }
    }
    let pick = |aliases: &[&str]| {
        aliases
            .iter()
            .find_map(|a| raw.iter().find(|(k, _)| k == a).map(|(_, v)| *v))
    };
    let input = pick(INPUT_ALIASES);
    let output = pick(OUTPUT_ALIASES);
    let total = pick(TOTAL_ALIASES);
    let cache_read = pick(CACHE_READ_ALIASES);
    let cache_write = if repair {
        raw.iter().find(|(k, _)| *k == CACHE_WRITE).map(|(_, v)| *v)
    } else {
        None
    };
    let cache_creation = cache_write.or_else(|| pick(CACHE_CREATION_ALIASES));
    let reasoning = pick(REASONING_ALIASES);
    let audio = pick(AUDIO_ALIASES);
    let is_alias = |k: &str| {
        (repair && k == CACHE_WRITE)
            || [
                INPUT_ALIASES,
                OUTPUT_ALIASES,
                TOTAL_ALIASES,
                CACHE_READ_ALIASES,
                CACHE_CREATION_ALIASES,
                REASONING_ALIASES,
                AUDIO_ALIASES,
            ]
            .iter()
            .any(|g| g.contains(&k))
    };
    let mut usage = Usage::new();
    if let Some(i) = input {
        usage.push((
            "input".into(),
            (i - cache_read.unwrap_or(0.0) - cache_creation.unwrap_or(0.0)).max(0.0),
        ));
    }
    if let Some(o) = output {
        usage.push((
            "output".into(),
            (o - reasoning.unwrap_or(0.0) - audio.unwrap_or(0.0)).max(0.0),
        ));
    }
    if let Some(t) = total {
        usage.push(("total".into(), t));
    }
    for (k, v) in &raw {
        if !is_alias(k) {
            set(&mut usage, k.strip_prefix("details.").unwrap_or(k), *v);
        }
    }
    set_if_absent(&mut usage, "input_cached_tokens", cache_read);
    set_if_absent(&mut usage, "input_cache_creation", cache_creation);
    set_if_absent(&mut usage, "output_reasoning_tokens", reasoning);
    set_if_absent(&mut usage, "output_audio_tokens", audio);
    usage
}

fn vertex_usage(cx: &SpanContext<'_, '_>, repair: bool) -> Usage {
    let mut usage = generic_usage(cx, repair);
    if get(&usage, "input_cached_tokens").is_some() {
        return usage;
    }
    let cached = parse_json_attr(cx, keys::GCP_VERTEX_AGENT_LLM_RESPONSE).and_then(|r| {
        json_num(
            r.get("usage_metadata")
                .and_then(|m| m.get("cached_content_token_count")),
        )
    });
    if let Some(c) = cached.filter(|c| *c > 0.0) {
        if let Some(i) = get(&usage, "input") {
            set(&mut usage, "input", (i - c).max(0.0));
        }
        set(&mut usage, "input_cached_tokens", c);
    }
    usage
}

/// A non-negative integer, as the schema accepts usage values (numbers or integer strings).
fn usage_int(v: &Value) -> Option<Value> {
    match v {
        Value::Number(n) => {
            let f = n.as_f64()?;
            (f >= 0.0 && f.fract() == 0.0 && f.is_finite()).then(|| js_number(f))
        }
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| {
                    t.parse::<u64>()
                        .ok()
                        .map(|n| Value::Number(Number::from(n)))
                })
                .flatten()
        }
        _ => None,
    }
}

/// The OpenAI Chat / Responses usage shapes, rewritten to `input`/`output`/`total` plus
/// `input_*`/`output_*` details (each subtracted from its base).
fn openai_shape(map: &Map<String, Value>, names: [&str; 5]) -> Option<Map<String, Value>> {
    let [inp, out, tot, inp_d, out_d] = names;
    if map.keys().any(|k| !names.contains(&k.as_str())) {
        return None;
    }
    let int = |k: &str| {
        map.get(k)
            .and_then(Value::as_f64)
            .filter(|f| *f >= 0.0 && f.fract() == 0.0)
    };
    let (i, o, t) = (int(inp)?, int(out)?, int(tot)?);
    let details = |k: &str| -> Option<Vec<(String, f64)>> {
        match map.get(k) {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(Value::Object(d)) => Some(
                d.iter()
                    .filter_map(|(k, v)| v.as_f64().map(|f| (k.clone(), f)))
                    .collect(),
            ),
            Some(_) => None,
        }
    };
    let (id, od) = (details(inp_d)?, details(out_d)?);
    let mut res = Map::new();
    res.insert(
        "input".into(),
        js_number((i - id.iter().map(|(_, v)| v).sum::<f64>()).max(0.0)),
    );
    res.insert(
        "output".into(),
        js_number((o - od.iter().map(|(_, v)| v).sum::<f64>()).max(0.0)),
    );
    res.insert("total".into(), js_number(t));
    for (k, v) in id {
        res.insert(format!("input_{k}"), js_number(v));
    }
    for (k, v) in od {
        res.insert(format!("output_{k}"), js_number(v));
    }
    Some(res)
}

/// The schema's `UsageDetails` union: OpenAI Chat shape, Responses shape, else a raw map of
/// non-negative integers. `None` when nothing survives.
pub fn normalize_usage(map: &Map<String, Value>) -> Option<Map<String, Value>> {
    let normalized = openai_shape(
        map,
        [
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "prompt_tokens_details",
            "completion_tokens_details",
        ],
    )
    .or_else(|| {
        openai_shape(
            map,
            [
                "input_tokens",
                "output_tokens",
                "total_tokens",
                "input_tokens_details",
                "output_tokens_details",
            ],
        )
    })
    .unwrap_or_else(|| {
        map.iter()
            .filter_map(|(k, v)| usage_int(v).map(|v| (k.clone(), v)))
            .collect()
    });
    (!normalized.is_empty()).then_some(normalized)
}

/// The cost details as the schema stores them: non-negative numbers only.
pub fn cost_details(cx: &SpanContext<'_, '_>, repair: bool) -> Option<Map<String, Value>> {
    if is_aggregate_operation(cx, repair) {
        return None;
    }
    let map = match explicit_details(cx.attr(keys::LANGFUSE_OBSERVATION_COST_DETAILS)) {
        Explicit::Used(map) => map,
        Explicit::FallThrough => {
            let total = [keys::GEN_AI_USAGE_COST, keys::LLM_COST_TOTAL]
                .iter()
                .find_map(|k| cx.attr(k).filter(|v| v.as_str() != Some("")));
            let mut m = Map::new();
            if let Some(v) = total {
                m.insert("total".into(), v.to_json());
            }
            m
        }
    };
    let kept: Map<String, Value> = map
        .into_iter()
        .filter(|(_, v)| v.as_f64().is_some_and(|f| f >= 0.0))
        .collect();
    (!kept.is_empty()).then_some(kept)
}
