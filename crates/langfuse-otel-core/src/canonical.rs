//! Canonical OTLP: spans re-encoded with one convention, the Langfuse SDK's `langfuse.*`
//! attributes, so any OTLP backend sees every span the same way, whatever instrumentation
//! produced it (OpenInference, GenAI, Vercel AI SDK, Traceloop, …).
//!
//! [`canonical_request`] translates a batch (in [`Compatibility::Repair`] mode, so nothing is
//! dropped) and writes each span back with the fields of its records as attributes:
//!
//! | record field | canonical attribute |
//! |---|---|
//! | type, level, status message | `langfuse.observation.type`, `.level`, `.status_message` (and span status `ERROR` with the message for level `ERROR`) |
//! | input, output | `langfuse.observation.input`, `.output`: strings, numbers, booleans and arrays of them as OTLP values; other JSON as its text |
//! | model, model parameters, usage, cost | `langfuse.observation.model.name`, `.model.parameters`, `.usage_details`, `.cost_details` (JSON text) |
//! | completion start, prompt link | `langfuse.observation.completion_start_time`, `.prompt.name`, `.prompt.version` (integer) |
//! | metadata (user keys and `attributes`) | `langfuse.observation.metadata` (one JSON object) |
//! | environment, version | `langfuse.environment`, `langfuse.version` |
//! | (the app-root marker of Langfuse's v4 ingestion) | `langfuse.internal.is_app_root`, when the span has it |
//! | trace name, user, session, tags, public, release, input, output, metadata | `langfuse.trace.name`, `langfuse.user.id`, `langfuse.session.id`, `langfuse.trace.tags`, `langfuse.trace.public`, `langfuse.release`, `langfuse.trace.input`, `.output`, `langfuse.trace.metadata` — only on spans that update their trace |
//!
//! Ids, parent links, names, times (nanoseconds when the source has them) and the resource are
//! kept; span kinds become `INTERNAL`, and span events and links are not carried (the records
//! hold what Langfuse derives from them). Spans of a Langfuse SDK scope (`langfuse-sdk…`) keep their scope; other spans are
//! written under the scope [`CANONICAL_SCOPE_NAME`] with the original scope's attributes plus
//! [`SOURCE_SCOPE_NAME`] / [`SOURCE_SCOPE_VERSION`], so the origin stays visible.
//!
//! # Round trip
//!
//! Translating canonical spans again yields the same records (tested on every case of the
//! conformance corpus), with these exceptions, each forced by the Langfuse server's rules:
//!
//! - `metadata.scope` of a span that did not come from a Langfuse SDK names the canonical scope
//!   (the server copies the emitting scope there; keeping the original scope would instead put
//!   the canonical attributes into `metadata.attributes`);
//! - an input or output that is JSON other than a string, number, boolean or array of those
//!   (an object, say) comes back as its JSON text, the way the official SDKs send it: the
//!   server never parses `langfuse.observation.input`; an explicit `null` comes back absent;
//! - a model parameter that is `null` (the Vercel AI SDK's unset settings) is left out: the
//!   explicit attribute would turn it into the text `"null"`;
//! - on a root span the trace's input and output fall back to the observation's: a trace side
//!   that is absent or falsy (`""`, `0`, `false`) while the observation's side is set cannot be
//!   expressed (the server derives such pairs only from two different conventions on one span,
//!   say `langfuse.trace.output` beside `gen_ai.input.messages`);
//! - an empty array, which only OTLP/JSON input can carry, reads back from protobuf as the
//!   server's text for an empty array value, `{"arrayValue":{}}` (in resource and scope
//!   attributes), and as `[]` text in input/output;
//! - ids travel as OTLP bytes: uppercase hex ids of OTLP/JSON input come back lowercase, an id
//!   that is not hex at all is carried as the bytes of its text, and an empty id as zero bytes
//!   (empty bytes would make the server reject the whole export).
//!
//! ```
//! use langfuse_otel_core::{canonical, otlp};
//!
//! let export = br#"{"resourceSpans":[{"scopeSpans":[{"scope":{"name":"openinference.instrumentation.openai"},
//!   "spans":[{"traceId":"f7a0e8d1f86e1d6a80854c2106aa25fb","spanId":"99180b94af7b795a","name":"ChatCompletion",
//!   "startTimeUnixNano":"1767258000000000000","endTimeUnixNano":"1767258000250000000",
//!   "attributes":[{"key":"openinference.span.kind","value":{"stringValue":"LLM"}},
//!                 {"key":"llm.model_name","value":{"stringValue":"gpt-4o"}}]}]}]}]}"#;
//! let batch = otlp::decode_json(export).unwrap();
//! let request = canonical::canonical_request(&batch);
//! let scope_spans = &request.resource_spans[0].scope_spans[0];
//! assert_eq!(scope_spans.scope.as_ref().unwrap().name, canonical::CANONICAL_SCOPE_NAME);
//! let attr = |key: &str| scope_spans.spans[0].attributes.iter().find(|kv| kv.key == key).cloned();
//! assert!(attr("langfuse.observation.type").is_some()); // "generation"
//! assert!(attr("langfuse.observation.model.name").is_some()); // "gpt-4o"
//! ```

use std::str::FromStr;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans as ProtoResourceSpans, ScopeSpans as ProtoScopeSpans, Span as ProtoSpan, Status,
    span::SpanKind, status::StatusCode as ProtoStatusCode,
};
use serde_json::{Map, Value};

use crate::keys;
use crate::record::{EventBody, Level, Metadata, ObservationBody, ObservationType, TraceBody};
use crate::span::{Attributes, Scope, Span, SpanBatch};
use crate::translate::metadata::{MetadataDomain, user_metadata};
use crate::translate::{Compatibility, TranslateOptions, Translator};
use crate::value::{AttrValue, js_json_stringify};

/// What an OTLP destination receives: the spans as they are, or re-encoded canonically
/// ([`canonical_request`]). One definition for every part that sends OTLP: the exporter
/// (`LANGFUSE_OTLP_MODE`) and the bridge (`--otlp-mode`, `otlp_mode` in its file).
///
/// ```
/// use langfuse_otel_core::OtlpMode;
///
/// assert_eq!("canonical".parse::<OtlpMode>(), Ok(OtlpMode::Canonical));
/// assert_eq!(" Passthrough ".parse::<OtlpMode>(), Ok(OtlpMode::Passthrough));
/// assert!("raw".parse::<OtlpMode>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OtlpMode {
    /// The spans as they are (the default).
    #[default]
    Passthrough,
    /// The spans translated to Langfuse records and re-encoded with the canonical
    /// `langfuse.*` attributes, so any backend gets one convention whatever produced the
    /// spans (translating them again yields the same records).
    Canonical,
}

/// A name that is no [`OtlpMode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown OTLP mode {0:?} (expected passthrough or canonical)")]
pub struct UnknownOtlpMode(pub String);

impl FromStr for OtlpMode {
    type Err = UnknownOtlpMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "passthrough" => Ok(OtlpMode::Passthrough),
            "canonical" => Ok(OtlpMode::Canonical),
            _ => Err(UnknownOtlpMode(s.trim().to_owned())),
        }
    }
}

/// Scope name of canonical spans that did not come from a Langfuse SDK.
pub const CANONICAL_SCOPE_NAME: &str = "langfuse-sdk";

/// Scope attribute carrying the original scope name of a canonical span.
pub const SOURCE_SCOPE_NAME: &str = "langfuse.source.scope.name";

/// Scope attribute carrying the original scope version of a canonical span.
pub const SOURCE_SCOPE_VERSION: &str = "langfuse.source.scope.version";

/// The version written on the canonical scope.
const CANONICAL_SCOPE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The records of one span, as the translator derived them.
struct SpanRecords<'t> {
    kind: ObservationType,
    observation: &'t ObservationBody,
    /// The span's full (root or updating) `trace-create`, if it produced one.
    trace: Option<&'t TraceBody>,
}

/// Translates `batch` and re-encodes every span with the canonical `langfuse.*` attributes
/// (see the [module docs](self)). Every span of the batch is in the result, in order.
pub fn canonical_request(batch: &SpanBatch<'_>) -> ExportTraceServiceRequest {
    canonical_request_with(batch, &TranslateOptions::default())
}

/// [`canonical_request`] with translation options (for example a fixed clock for spans
/// without times). The compatibility setting is ignored: canonical spans are always derived
/// in [`Compatibility::Repair`] mode, so that every span is re-encoded.
pub fn canonical_request_with(
    batch: &SpanBatch<'_>,
    options: &TranslateOptions,
) -> ExportTraceServiceRequest {
    let translation = Translator::with_options(TranslateOptions {
        compatibility: Compatibility::Repair,
        ..options.clone()
    })
    .translate(batch);

    // Events come in span order: an optional trace-create, then the span's observation.
    let mut events = translation.events.iter();
    let mut records_of = |span: &Span<'_>| -> Option<SpanRecords<'_>> {
        let mut trace = None;
        for event in events.by_ref() {
            match &event.body {
                EventBody::TraceCreate(body) => {
                    trace = (!crate::translate::trace::is_shallow(body)).then_some(body);
                }
                EventBody::ObservationCreate(kind, body) if body.id == span.span_id => {
                    return Some(SpanRecords {
                        kind: *kind,
                        observation: body,
                        trace,
                    });
                }
                _ => trace = None,
            }
        }
        None
    };

    let mut resource_spans = Vec::with_capacity(batch.resource_spans.len());
    for rs in &batch.resource_spans {
        let resource_user = user_metadata(&rs.resource.attributes, MetadataDomain::Trace);
        let mut scope_spans: Vec<ProtoScopeSpans> = Vec::with_capacity(rs.scope_spans.len());
        for ss in &rs.scope_spans {
            let mut spans = Vec::with_capacity(ss.spans.len());
            for span in &ss.spans {
                // Repair mode derives one observation per span, in order; should a span ever
                // lack one, it is passed through unchanged rather than lost.
                spans.push(match records_of(span) {
                    Some(records) => canonical_span(span, &records, &resource_user),
                    None => passthrough_span(span),
                });
            }
            scope_spans.push(ProtoScopeSpans {
                scope: Some(canonical_scope(&ss.scope)),
                spans,
                schema_url: String::new(),
            });
        }
        resource_spans.push(ProtoResourceSpans {
            resource: Some(ProtoResource {
                attributes: key_values(&rs.resource.attributes),
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            }),
            scope_spans,
            schema_url: String::new(),
        });
    }
    ExportTraceServiceRequest { resource_spans }
}

/// Whether spans of this scope come from a Langfuse SDK (their scope is kept).
fn is_langfuse_sdk_scope(scope: &Scope<'_>) -> bool {
    scope.name.starts_with(keys::SCOPE_LANGFUSE_SDK)
}

fn canonical_scope(scope: &Scope<'_>) -> InstrumentationScope {
    if is_langfuse_sdk_scope(scope) {
        return InstrumentationScope {
            name: scope.name.to_string(),
            version: scope.version.as_deref().unwrap_or_default().to_owned(),
            attributes: key_values(&scope.attributes),
            dropped_attributes_count: 0,
        };
    }
    let mut attributes = key_values(&scope.attributes);
    attributes.push(string_kv(SOURCE_SCOPE_NAME, scope.name.to_string()));
    if let Some(version) = &scope.version {
        attributes.push(string_kv(SOURCE_SCOPE_VERSION, version.to_string()));
    }
    InstrumentationScope {
        name: CANONICAL_SCOPE_NAME.to_owned(),
        version: CANONICAL_SCOPE_VERSION.to_owned(),
        attributes,
        dropped_attributes_count: 0,
    }
}

fn canonical_span(
    span: &Span<'_>,
    records: &SpanRecords<'_>,
    resource_user: &Map<String, Value>,
) -> ProtoSpan {
    let obs = records.observation;
    let mut out = Vec::with_capacity(16);
    out.push(string_kv(
        keys::LANGFUSE_OBSERVATION_TYPE,
        records.kind.as_str(),
    ));
    out.push(string_kv(
        keys::LANGFUSE_ENVIRONMENT,
        obs.environment.clone(),
    ));
    let level = match &obs.level {
        Some(Some(level)) => *level,
        _ => Level::Default,
    };
    out.push(string_kv(keys::LANGFUSE_OBSERVATION_LEVEL, level.as_str()));
    if let Some(Some(message)) = &obs.status_message {
        out.push(string_kv(
            keys::LANGFUSE_OBSERVATION_STATUS_MESSAGE,
            message.clone(),
        ));
    }
    if let Some(Some(version)) = &obs.version {
        out.push(string_kv(keys::LANGFUSE_VERSION, version.clone()));
    }
    push_io(&mut out, keys::LANGFUSE_OBSERVATION_INPUT, &obs.input);
    push_io(&mut out, keys::LANGFUSE_OBSERVATION_OUTPUT, &obs.output);
    if let Some(Some(metadata)) = &obs.metadata {
        let blob = observation_blob(metadata, resource_user);
        if !blob.is_empty() {
            out.push(json_kv(
                keys::LANGFUSE_OBSERVATION_METADATA,
                &Value::Object(blob),
            ));
        }
    }
    push_generation_fields(&mut out, obs);
    // Not part of the records, but Langfuse's v4 ingestion reads it from every span (and in
    // the records it only shows in `metadata.attributes`, which canonical spans carry anyway).
    if let Some(app_root) = span.attributes.get(keys::LANGFUSE_INTERNAL_IS_APP_ROOT) {
        out.push(KeyValue {
            key: keys::LANGFUSE_INTERNAL_IS_APP_ROOT.to_owned(),
            value: Some(attr_to_any(app_root)),
            ..KeyValue::default()
        });
    }
    if let Some(trace) = records.trace {
        push_trace_fields(&mut out, trace, obs, span);
    }

    let (start_ns, end_ns) = span_times(span, obs);
    // An error status carries the message; without one the level attribute alone says ERROR
    // (an empty status message in OTLP/JSON would read back as `""`, not as no message).
    let status = match (&obs.status_message, level) {
        (Some(Some(message)), Level::Error) if !message.is_empty() => Some(Status {
            message: message.clone(),
            code: ProtoStatusCode::Error as i32,
        }),
        _ => None,
    };
    ProtoSpan {
        trace_id: id_bytes(&span.trace_id, TRACE_ID_LEN),
        span_id: id_bytes(&span.span_id, SPAN_ID_LEN),
        trace_state: String::new(),
        parent_span_id: span
            .parent_id()
            .map(|p| id_bytes(p, SPAN_ID_LEN))
            .unwrap_or_default(),
        flags: 0,
        name: match &obs.name {
            Some(Some(name)) => name.clone(),
            _ => span.name.to_string(),
        },
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: end_ns,
        attributes: out,
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status,
    }
}

/// A span as it came (attributes, status and times), for the case the translator derived no
/// observation for it.
fn passthrough_span(span: &Span<'_>) -> ProtoSpan {
    let ms_to_ns = |ms: Option<i64>| {
        ms.and_then(|ms| u64::try_from(ms).ok())
            .map_or(0, |ms| ms.saturating_mul(1_000_000))
    };
    ProtoSpan {
        trace_id: id_bytes(&span.trace_id, TRACE_ID_LEN),
        span_id: id_bytes(&span.span_id, SPAN_ID_LEN),
        parent_span_id: span
            .parent_id()
            .map(|p| id_bytes(p, SPAN_ID_LEN))
            .unwrap_or_default(),
        name: span.name.to_string(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: span
            .start_time_unix_nano
            .unwrap_or_else(|| ms_to_ns(span.start_time_unix_ms)),
        end_time_unix_nano: span
            .end_time_unix_nano
            .unwrap_or_else(|| ms_to_ns(span.end_time_unix_ms)),
        attributes: key_values(&span.attributes),
        status: (span.status_code != crate::span::StatusCode::Unset).then(|| Status {
            message: span
                .status_message
                .as_deref()
                .unwrap_or_default()
                .to_owned(),
            code: match span.status_code {
                crate::span::StatusCode::Error => ProtoStatusCode::Error as i32,
                _ => ProtoStatusCode::Ok as i32,
            },
        }),
        ..ProtoSpan::default()
    }
}

/// Start and end in Unix nanoseconds: the source's own when it has them (and they agree with
/// the records), else the records' milliseconds.
fn span_times(span: &Span<'_>, obs: &ObservationBody) -> (u64, u64) {
    let record_ms = |field: &Option<Option<String>>| -> Option<i64> {
        match field {
            Some(Some(iso)) => crate::time::parse_iso_with_offset(iso),
            _ => None,
        }
    };
    let start_ms = record_ms(&obs.start_time).unwrap_or_default();
    let end_ms = record_ms(&obs.end_time).unwrap_or(start_ms);
    let pick = |nanos: Option<u64>, ms: i64| -> u64 {
        let from_ms = u64::try_from(ms)
            .unwrap_or_default()
            .saturating_mul(1_000_000);
        match nanos {
            Some(ns) if ns / 1_000_000 == from_ms / 1_000_000 => ns,
            _ => from_ms,
        }
    };
    let start = pick(span.start_time_unix_nano, start_ms);
    // An event has no end in its record: keep the source's end, else its start.
    let end = match &obs.end_time {
        Some(Some(_)) => pick(span.end_time_unix_nano, end_ms),
        _ => span.end_time_unix_nano.unwrap_or(start),
    };
    (start, end)
}

/// The observation's user metadata and `attributes` as one JSON object, without the keys the
/// resource contributes anyway (so that on a root span the trace's own keys are not overridden
/// by resource values).
fn observation_blob(metadata: &Metadata, resource_user: &Map<String, Value>) -> Map<String, Value> {
    let mut blob: Map<String, Value> = metadata
        .user
        .iter()
        .filter(|(k, v)| resource_user.get(k.as_str()) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(attributes) = &metadata.attributes {
        blob.insert("attributes".to_owned(), Value::Object(attributes.clone()));
    }
    blob
}

fn push_generation_fields(out: &mut Vec<KeyValue>, obs: &ObservationBody) {
    if let Some(Some(model)) = &obs.model {
        out.push(string_kv(
            keys::LANGFUSE_OBSERVATION_MODEL_NAME,
            model.clone(),
        ));
    }
    if let Some(Some(params)) = &obs.model_parameters {
        // The explicit attribute turns `null` into the text "null": unset parameters are left out.
        let params: Map<String, Value> = params
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !params.is_empty() {
            out.push(json_kv(
                keys::LANGFUSE_OBSERVATION_MODEL_PARAMETERS,
                &Value::Object(params),
            ));
        }
    }
    if let Some(Some(usage)) = &obs.usage_details {
        out.push(json_kv(
            keys::LANGFUSE_OBSERVATION_USAGE_DETAILS,
            &Value::Object(usage.clone()),
        ));
    }
    if let Some(Some(cost)) = &obs.cost_details {
        out.push(json_kv(
            keys::LANGFUSE_OBSERVATION_COST_DETAILS,
            &Value::Object(cost.clone()),
        ));
    }
    if let Some(Some(start)) = &obs.completion_start_time {
        out.push(string_kv(
            keys::LANGFUSE_OBSERVATION_COMPLETION_START_TIME,
            start.clone(),
        ));
    }
    if let Some(Some(name)) = &obs.prompt_name {
        out.push(string_kv(
            keys::LANGFUSE_OBSERVATION_PROMPT_NAME,
            name.clone(),
        ));
    }
    if let Some(Some(version)) = obs.prompt_version {
        out.push(kv(
            keys::LANGFUSE_OBSERVATION_PROMPT_VERSION,
            any_value::Value::IntValue(version),
        ));
    }
}

fn push_trace_fields(
    out: &mut Vec<KeyValue>,
    trace: &TraceBody,
    obs: &ObservationBody,
    span: &Span<'_>,
) {
    let marked_root = span
        .attributes
        .get(keys::LANGFUSE_INTERNAL_AS_ROOT)
        .is_some_and(|v| v.to_js_string() == "true");
    let is_root = span.parent_id().is_none() || marked_root;
    if marked_root {
        // A root by `langfuse.internal.as_root` (the server reads it as text).
        out.push(kv(
            keys::LANGFUSE_INTERNAL_AS_ROOT,
            any_value::Value::BoolValue(true),
        ));
    }
    if let Some(Some(name)) = &trace.name {
        out.push(string_kv(keys::LANGFUSE_TRACE_NAME, name.clone()));
    }
    if let Some(Some(user)) = &trace.user_id {
        out.push(string_kv(keys::LANGFUSE_USER_ID, user.clone()));
    }
    if let Some(Some(session)) = &trace.session_id {
        out.push(string_kv(keys::LANGFUSE_SESSION_ID, session.clone()));
    }
    if let Some(Some(tags)) = &trace.tags
        && !tags.is_empty()
    {
        out.push(kv(
            keys::LANGFUSE_TRACE_TAGS,
            any_value::Value::ArrayValue(ArrayValue {
                values: tags.iter().map(|t| string_value(t.clone())).collect(),
            }),
        ));
    }
    if let Some(Some(public)) = trace.public {
        out.push(kv(
            keys::LANGFUSE_TRACE_PUBLIC,
            any_value::Value::BoolValue(public),
        ));
    }
    if let Some(Some(release)) = &trace.release {
        out.push(string_kv(keys::LANGFUSE_RELEASE, release.clone()));
    }
    // A root's trace I/O falls back to the observation's: only a different value is written.
    let differs = |trace_side: &Option<Option<Value>>, obs_side: &Option<Option<Value>>| {
        !is_root || flatten(trace_side) != flatten(obs_side)
    };
    if differs(&trace.input, &obs.input) {
        push_io(out, keys::LANGFUSE_TRACE_INPUT, &trace.input);
    }
    if differs(&trace.output, &obs.output) {
        push_io(out, keys::LANGFUSE_TRACE_OUTPUT, &trace.output);
    }
    if let Some(Some(metadata)) = &trace.metadata {
        // On a non-root span the key is written even when empty (`{}`): its presence alone
        // marks the trace update, whatever else the span carries.
        if !is_root || !metadata.user.is_empty() {
            out.push(json_kv(
                keys::LANGFUSE_TRACE_METADATA,
                &Value::Object(metadata.user.clone()),
            ));
        }
    }
}

fn flatten(side: &Option<Option<Value>>) -> Option<&Value> {
    side.as_ref().and_then(Option::as_ref)
}

/// An input/output side: absent and `null` write nothing.
fn push_io(out: &mut Vec<KeyValue>, key: &str, side: &Option<Option<Value>>) {
    let Some(Some(value)) = side else { return };
    let any = match value {
        Value::Null => return,
        v if is_otlp_representable(v) => json_to_any(v),
        other => string_value(js_json_stringify(other)),
    };
    out.push(KeyValue {
        key: key.to_owned(),
        value: Some(any),
        ..KeyValue::default()
    });
}

/// Whether a JSON value survives OTLP protobuf as a typed value: strings, numbers, booleans
/// and non-empty arrays of those (the server turns anything else into text; an empty array
/// reads back from protobuf as the text `{"arrayValue":{}}`).
pub fn is_otlp_representable(value: &Value) -> bool {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => true,
        Value::Array(items) => !items.is_empty() && items.iter().all(is_otlp_representable),
        Value::Null | Value::Object(_) => false,
    }
}

fn json_to_any(value: &Value) -> AnyValue {
    match value {
        Value::String(s) => string_value(s.clone()),
        Value::Bool(b) => AnyValue {
            value: Some(any_value::Value::BoolValue(*b)),
        },
        Value::Number(n) => number_value(n.as_f64().unwrap_or(f64::NAN)),
        Value::Array(items) => AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: items.iter().map(json_to_any).collect(),
            })),
        },
        other => string_value(js_json_stringify(other)),
    }
}

fn number_value(n: f64) -> AnyValue {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    let value = if n.fract() == 0.0 && n.abs() <= MAX_SAFE {
        any_value::Value::IntValue(n as i64)
    } else {
        any_value::Value::DoubleValue(n)
    };
    AnyValue { value: Some(value) }
}

fn attr_to_any(value: &AttrValue<'_>) -> AnyValue {
    match value {
        AttrValue::Str(s) => string_value(s.to_string()),
        AttrValue::Number(n) => number_value(*n),
        AttrValue::Bool(b) => AnyValue {
            value: Some(any_value::Value::BoolValue(*b)),
        },
        AttrValue::Array(items) => AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: items.iter().map(attr_to_any).collect(),
            })),
        },
    }
}

fn key_values(attrs: &Attributes<'_>) -> Vec<KeyValue> {
    attrs
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.to_owned(),
            value: Some(attr_to_any(v)),
            ..KeyValue::default()
        })
        .collect()
}

/// A key-value pair of a typed value.
fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn string_value(s: String) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s)),
    }
}

fn string_kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(string_value(value.into())),
        ..KeyValue::default()
    }
}

fn json_kv(key: &str, value: &Value) -> KeyValue {
    string_kv(key, js_json_stringify(value))
}

/// Length of an OTLP trace id in bytes.
const TRACE_ID_LEN: usize = 16;
/// Length of an OTLP span id in bytes.
const SPAN_ID_LEN: usize = 8;

/// Id text to OTLP bytes: hex (either case) is decoded; anything else is carried as the bytes
/// of its text; an empty id (which OTLP/JSON input can have, and which as empty bytes would
/// make the whole export invalid) becomes `len` zero bytes.
fn id_bytes(id: &str, len: usize) -> Vec<u8> {
    if id.is_empty() {
        return vec![0; len];
    }
    let hex = id.as_bytes();
    let nibble = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    if hex.len().is_multiple_of(2) && hex.iter().all(|b| b.is_ascii_hexdigit()) {
        hex.chunks_exact(2)
            .filter_map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
            .collect()
    } else {
        hex.to_vec()
    }
}

/// The canonical spans of a batch of `opentelemetry_sdk` spans, as `SpanData` again, for any
/// `SpanExporter` (`opentelemetry-otlp`'s included): every span of `spans`, in order, with the
/// canonical attributes, name, times, status and scope of [`canonical_request`]. Span context
/// (ids, flags, trace state) and the parent link are the original's; the resource is the
/// exporter's own (pass `resource` to it as well).
///
/// OTLP values that `opentelemetry::Value` cannot hold become text: arrays mixing types (an
/// input such as `[1, "a"]`) are written as their JSON text, and integer arrays with doubles as
/// doubles.
///
/// ```
/// use langfuse_otel_core::canonical::canonical_span_data;
/// use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
/// use opentelemetry::{InstrumentationScope, KeyValue};
/// use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
/// use opentelemetry_sdk::Resource;
///
/// let span = SpanData {
///     span_context: SpanContext::new(TraceId::from(1), SpanId::from(2), TraceFlags::SAMPLED, false, TraceState::default()),
///     parent_span_id: SpanId::INVALID,
///     parent_span_is_remote: false,
///     span_kind: SpanKind::Client,
///     name: "chat gpt-4o".into(),
///     start_time: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_258_000),
///     end_time: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_258_001),
///     attributes: vec![
///         KeyValue::new("gen_ai.operation.name", "chat"),
///         KeyValue::new("gen_ai.request.model", "gpt-4o"),
///     ],
///     dropped_attributes_count: 0,
///     events: SpanEvents::default(),
///     links: SpanLinks::default(),
///     status: Status::Unset,
///     instrumentation_scope: InstrumentationScope::builder("my-llm-client").build(),
/// };
/// let out = canonical_span_data(&[span], &Resource::builder_empty().build());
/// let attr = |k: &str| out[0].attributes.iter().find(|kv| kv.key.as_str() == k).map(|kv| kv.value.to_string());
/// assert_eq!(attr("langfuse.observation.type").as_deref(), Some("generation"));
/// assert_eq!(attr("langfuse.observation.model.name").as_deref(), Some("gpt-4o"));
/// assert_eq!(out[0].instrumentation_scope.name(), "langfuse-sdk");
/// ```
pub fn canonical_span_data(
    spans: &[opentelemetry_sdk::trace::SpanData],
    resource: &opentelemetry_sdk::Resource,
) -> Vec<opentelemetry_sdk::trace::SpanData> {
    let batch = crate::otlp::batch_from_span_data(spans, resource);
    let request = canonical_request(&batch);
    let mut out = Vec::with_capacity(spans.len());
    let mut originals = spans.iter();
    for rs in request.resource_spans {
        for ss in rs.scope_spans {
            let scope = ss.scope.map(sdk_scope).unwrap_or_else(|| {
                opentelemetry::InstrumentationScope::builder(CANONICAL_SCOPE_NAME).build()
            });
            for proto in ss.spans {
                let Some(original) = originals.next() else {
                    return out;
                };
                out.push(sdk_span(proto, original, scope.clone()));
            }
        }
    }
    // Never lose a span: should the request hold fewer, the rest pass unchanged.
    out.extend(originals.cloned());
    out
}

fn sdk_scope(scope: InstrumentationScope) -> opentelemetry::InstrumentationScope {
    let mut b = opentelemetry::InstrumentationScope::builder(scope.name)
        .with_attributes(scope.attributes.into_iter().filter_map(sdk_key_value));
    if !scope.version.is_empty() {
        b = b.with_version(scope.version);
    }
    b.build()
}

fn sdk_span(
    proto: ProtoSpan,
    original: &opentelemetry_sdk::trace::SpanData,
    scope: opentelemetry::InstrumentationScope,
) -> opentelemetry_sdk::trace::SpanData {
    use std::time::{Duration, UNIX_EPOCH};
    let status = match proto.status {
        Some(s) if s.code == ProtoStatusCode::Error as i32 => opentelemetry::trace::Status::Error {
            description: s.message.into(),
        },
        Some(s) if s.code == ProtoStatusCode::Ok as i32 => opentelemetry::trace::Status::Ok,
        _ => opentelemetry::trace::Status::Unset,
    };
    opentelemetry_sdk::trace::SpanData {
        span_context: original.span_context.clone(),
        parent_span_id: original.parent_span_id,
        parent_span_is_remote: original.parent_span_is_remote,
        span_kind: opentelemetry::trace::SpanKind::Internal,
        name: proto.name.into(),
        start_time: UNIX_EPOCH + Duration::from_nanos(proto.start_time_unix_nano),
        end_time: UNIX_EPOCH + Duration::from_nanos(proto.end_time_unix_nano),
        attributes: proto
            .attributes
            .into_iter()
            .filter_map(sdk_key_value)
            .collect(),
        dropped_attributes_count: 0,
        events: opentelemetry_sdk::trace::SpanEvents::default(),
        links: opentelemetry_sdk::trace::SpanLinks::default(),
        status,
        instrumentation_scope: scope,
    }
}

fn sdk_key_value(kv: KeyValue) -> Option<opentelemetry::KeyValue> {
    let value = sdk_value(kv.value?.value?)?;
    Some(opentelemetry::KeyValue::new(kv.key, value))
}

fn sdk_value(v: any_value::Value) -> Option<opentelemetry::Value> {
    use opentelemetry::{Array, Value as V};
    Some(match v {
        any_value::Value::StringValue(s) => V::from(s),
        any_value::Value::BoolValue(b) => V::Bool(b),
        any_value::Value::IntValue(i) => V::I64(i),
        any_value::Value::DoubleValue(d) => V::F64(d),
        any_value::Value::ArrayValue(a) => {
            let items: Vec<any_value::Value> =
                a.values.iter().filter_map(|v| v.value.clone()).collect();
            let all = |f: fn(&any_value::Value) -> bool| items.iter().all(f);
            if all(|v| matches!(v, any_value::Value::StringValue(_))) {
                V::Array(Array::String(
                    items
                        .into_iter()
                        .filter_map(|v| match v {
                            any_value::Value::StringValue(s) => Some(s.into()),
                            _ => None,
                        })
                        .collect(),
                ))
            } else if all(|v| matches!(v, any_value::Value::BoolValue(_))) {
                V::Array(Array::Bool(
                    items
                        .into_iter()
                        .filter_map(|v| match v {
                            any_value::Value::BoolValue(b) => Some(b),
                            _ => None,
                        })
                        .collect(),
                ))
            } else if all(|v| matches!(v, any_value::Value::IntValue(_))) {
                V::Array(Array::I64(
                    items
                        .into_iter()
                        .filter_map(|v| match v {
                            any_value::Value::IntValue(i) => Some(i),
                            _ => None,
                        })
                        .collect(),
                ))
            } else if all(|v| {
                matches!(
                    v,
                    any_value::Value::IntValue(_) | any_value::Value::DoubleValue(_)
                )
            }) {
                V::Array(Array::F64(
                    items
                        .into_iter()
                        .filter_map(|v| match v {
                            any_value::Value::IntValue(i) => Some(i as f64),
                            any_value::Value::DoubleValue(d) => Some(d),
                            _ => None,
                        })
                        .collect(),
                ))
            } else {
                V::from(js_json_stringify(&Value::Array(
                    items.iter().map(any_to_json).collect(),
                )))
            }
        }
        any_value::Value::BytesValue(b) => {
            V::from(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
        }
        any_value::Value::KvlistValue(_) | any_value::Value::StringValueStrindex(_) => {
            return None;
        }
    })
}

fn any_to_json(v: &any_value::Value) -> Value {
    match v {
        any_value::Value::StringValue(s) => Value::String(s.clone()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => Value::from(*i),
        any_value::Value::DoubleValue(d) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        any_value::Value::ArrayValue(a) => Value::Array(
            a.values
                .iter()
                .filter_map(|x| x.value.as_ref().map(any_to_json))
                .collect(),
        ),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_decode_hex_of_either_case_and_keep_other_text() {
        assert_eq!(id_bytes("0aFf", SPAN_ID_LEN), vec![0x0a, 0xff]);
        assert_eq!(id_bytes("span-1", SPAN_ID_LEN), b"span-1".to_vec());
        assert_eq!(id_bytes("abc", SPAN_ID_LEN), b"abc".to_vec());
        assert_eq!(id_bytes("", SPAN_ID_LEN), vec![0; 8]);
        assert_eq!(id_bytes("", TRACE_ID_LEN), vec![0; 16]);
    }

    /// Found by the fuzz target: an empty span id (OTLP/JSON allows it) must not become empty
    /// bytes, which read back as an absent id and invalidate the whole export.
    #[test]
    fn an_empty_span_id_still_decodes() {
        let export = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"48bdb603edd90423bc1de1d336017c06",
            "spanId":"","attributes":[{"key":"langfuse.observation.type","value":{"stringValue":"event"}}]}]}]}]}"#;
        let batch = crate::otlp::decode_json(export).unwrap();
        let bytes = prost::Message::encode_to_vec(&canonical_request(&batch));
        let back = crate::otlp::decode_protobuf(&bytes).unwrap();
        assert_eq!(
            back.resource_spans[0].scope_spans[0].spans[0].span_id,
            "0000000000000000"
        );
    }

    #[test]
    fn the_app_root_marker_is_kept() {
        let export = br#"{"resourceSpans":[{"scopeSpans":[{"scope":{"name":"langfuse-sdk"},"spans":[{
            "traceId":"48bdb603edd90423bc1de1d336017c06","spanId":"00f067aa0ba902b7",
            "attributes":[{"key":"langfuse.internal.is_app_root","value":{"boolValue":true}}]}]}]}]}"#;
        let batch = crate::otlp::decode_json(export).unwrap();
        let request = canonical_request(&batch);
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        let marker = span
            .attributes
            .iter()
            .find(|kv| kv.key == keys::LANGFUSE_INTERNAL_IS_APP_ROOT)
            .and_then(|kv| kv.value.clone());
        assert_eq!(
            marker.and_then(|v| v.value),
            Some(any_value::Value::BoolValue(true))
        );
    }

    #[test]
    fn representable_values_are_scalars_and_arrays_of_them() {
        assert!(is_otlp_representable(&serde_json::json!(["a", 1, [true]])));
        assert!(!is_otlp_representable(
            &serde_json::json!([{"role": "user"}])
        ));
        assert!(!is_otlp_representable(&serde_json::json!(null)));
        assert!(!is_otlp_representable(&serde_json::json!(["a", []])));
    }

    #[test]
    fn numbers_become_ints_only_when_exact() {
        assert_eq!(number_value(3.0).value, Some(any_value::Value::IntValue(3)));
        assert_eq!(
            number_value(0.5).value,
            Some(any_value::Value::DoubleValue(0.5))
        );
        assert_eq!(
            number_value(1e300).value,
            Some(any_value::Value::DoubleValue(1e300))
        );
    }
}
