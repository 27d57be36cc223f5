//! Comparing ingestion events the way the conformance corpus defines equality
//! (`fixtures/conformance/CASES.md`): a canonical order, then field-by-field equality with
//! numbers compared as doubles.

use langfuse_otel_core::SpanBatch;
use langfuse_otel_core::canonical::{
    CANONICAL_SCOPE_NAME, SOURCE_SCOPE_NAME, SOURCE_SCOPE_VERSION,
};
use langfuse_otel_core::translate::{Compatibility, TranslateOptions, Translator};
use langfuse_otel_core::value::js_json_stringify;
use serde_json::{Value, json};

/// Sort key of the corpus: trace-create first, then timestamp/startTime, then id, then the
/// compact JSON with sorted keys.
pub fn sort_events(events: &mut [Value]) {
    fn key(e: &Value) -> (u8, String, String, String) {
        let is_trace = e["type"] == "trace-create";
        let body = &e["body"];
        let time = if is_trace {
            &body["timestamp"]
        } else {
            &body["startTime"]
        };
        (
            u8::from(!is_trace),
            time.as_str().unwrap_or_default().to_owned(),
            body["id"].as_str().unwrap_or_default().to_owned(),
            sorted_json(e),
        )
    }
    events.sort_by_cached_key(key);
}

pub fn sorted_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), sorted_json(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(sorted_json).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// Equality as the corpus defines it; returns the path of the first difference.
pub fn diff(path: &str, got: &Value, want: &Value) -> Option<String> {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => {
            (a.as_f64() != b.as_f64()).then(|| format!("{path}: got {a}, want {b}"))
        }
        (Value::Object(a), Value::Object(b)) => {
            for k in b.keys() {
                if !a.contains_key(k) {
                    return Some(format!("{path}.{k}: missing (want {})", b[k]));
                }
            }
            for k in a.keys() {
                if !b.contains_key(k) {
                    return Some(format!("{path}.{k}: unexpected {}", a[k]));
                }
            }
            b.keys()
                .find_map(|k| diff(&format!("{path}.{k}"), &a[k], &b[k]))
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Some(format!("{path}: {} items, want {}", a.len(), b.len()));
            }
            a.iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (x, y))| diff(&format!("{path}[{i}]"), x, y))
        }
        _ => (got != want).then(|| format!("{path}: got {got}, want {want}")),
    }
}

/// The events of a batch as JSON, and the dropped observations' events (server mode only).
pub fn translate_events(
    batch: &SpanBatch<'_>,
    compatibility: Compatibility,
) -> (Vec<Value>, Vec<Value>) {
    let translation = Translator::with_options(TranslateOptions {
        compatibility,
        ..TranslateOptions::default()
    })
    .translate(batch);
    let events = match serde_json::to_value(&translation.events).expect("events serialize") {
        Value::Array(events) => events,
        _ => unreachable!("a Vec serializes to an array"),
    };
    let dropped = translation
        .dropped
        .iter()
        .map(|d| serde_json::to_value(&d.event).expect("dropped serializes"))
        .collect();
    (events, dropped)
}

/// Lowercase hex for hex ids; zeros for an empty id; the hex of the text for anything else.
fn normalize_id(id: &str, hex_len: usize) -> String {
    if id.is_empty() {
        "0".repeat(hex_len)
    } else if id.len().is_multiple_of(2) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        id.to_ascii_lowercase()
    } else {
        id.bytes().map(|b| format!("{b:02x}")).collect()
    }
}

/// Whether OTLP carries this JSON value as a typed value (written independently of the
/// library's own check, from the server's attribute value conversion).
fn typed_in_otlp(value: &Value) -> bool {
    match value {
        Value::Object(_) | Value::Null => false,
        Value::Array(items) => !items.is_empty() && items.iter().all(typed_in_otlp),
        _ => true,
    }
}

/// What canonical encoding does to the scope of a span from a non-Langfuse scope.
fn canonical_scope(original: &Value) -> Value {
    let mut attributes = original["attributes"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    attributes.insert(SOURCE_SCOPE_NAME.into(), original["name"].clone());
    if let Some(version) = original.get("version") {
        attributes.insert(SOURCE_SCOPE_VERSION.into(), version.clone());
    }
    json!({
        "name": CANONICAL_SCOPE_NAME,
        "version": env!("CARGO_PKG_VERSION"),
        "attributes": attributes,
    })
}

/// Applies to one event the differences `langfuse_otel_core::canonical` documents between
/// records of the original spans (`original_side`) and of their canonical re-encoding; returns
/// whether anything changed besides the scope.
pub fn normalize_for_canonical(event: &mut Value, original_side: bool) -> bool {
    let mut changed = false;
    let is_trace = event["type"] == "trace-create";
    let body = match event.get_mut("body").and_then(Value::as_object_mut) {
        Some(body) => body,
        None => return false,
    };
    for key in ["id", "traceId", "parentObservationId"] {
        let hex_len = if key == "traceId" || (key == "id" && is_trace) {
            32
        } else {
            16
        };
        if let Some(Value::String(id)) = body.get_mut(key) {
            let n = normalize_id(id, hex_len);
            changed |= n != *id;
            *id = n;
        }
    }
    for key in ["input", "output"] {
        match body.get(key) {
            Some(Value::Null) => {
                body.remove(key);
                changed = true;
            }
            Some(v) if !typed_in_otlp(v) => {
                let text = Value::String(js_json_stringify(v));
                body.insert(key.to_owned(), text);
                changed = true;
            }
            _ => {}
        }
    }
    if let Some(Value::Object(params)) = body.get_mut("modelParameters") {
        let before = params.len();
        params.retain(|_, v| !v.is_null());
        changed |= params.len() != before;
    }
    if original_side
        && let Some(Value::Object(metadata)) = body.get_mut("metadata")
        && let Some(scope) = metadata.get("scope")
    {
        let from_sdk = scope["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("langfuse-sdk"));
        if !from_sdk {
            let canonical = canonical_scope(scope);
            metadata.insert("scope".into(), canonical);
        }
    }
    changed
}

/// Where the records of `canonical` (the canonical re-encoding of `original`) differ from
/// those of `original` beyond the documented differences; `None` when they agree.
pub fn canonical_round_trip_diff(
    original: &SpanBatch<'_>,
    canonical: &SpanBatch<'_>,
) -> Option<String> {
    let (mut want, _) = translate_events(original, Compatibility::Repair);
    let (mut got, _) = translate_events(canonical, Compatibility::Repair);
    for e in &mut want {
        normalize_for_canonical(e, true);
    }
    for e in &mut got {
        normalize_for_canonical(e, false);
    }
    sort_events(&mut want);
    sort_events(&mut got);
    diff("events", &Value::Array(got), &Value::Array(want))
}
