//! Legacy ingestion for Langfuse v4: the events of `POST /api/public/ingestion` (Langfuse
//! Python SDK 2.x, JS SDK 3.x and the apps built on them), folded with Langfuse's merge rules
//! ([`crate::fold`]), written as the OTLP spans Langfuse v4 stores as the same trace.
//!
//! Langfuse v4 in its default write mode (`LANGFUSE_MIGRATION_V4_WRITE_MODE=events_only`)
//! refuses every ingestion event except `score-create` and `sdk-log`; its OTLP endpoint
//! (`/api/public/otel/v1/traces` with `x-langfuse-ingestion-version: 4`) writes one row per
//! span (`OtelIngestionProcessor.processToEvent`), with the trace-level fields (trace name,
//! user, session, tags, release, public) taken from that span's own attributes only, and shows
//! a trace from its rows: the root row (no parent) gives the trace's name, input, output,
//! metadata, version and environment.
//!
//! # The representation
//!
//! Designed after Langfuse's own v3 → v4 mapping (the events backfill: "one synthetic trace
//! span per trace, `span_id = t-<traceId>`, `parent_span_id = ''`, carries the trace's
//! name/input/output/metadata; … roots re-parented onto the synthetic span"):
//!
//! - **Ids are kept.** Spans go out as OTLP/JSON, whose ids the server stores verbatim
//!   (`parseId` keeps strings), so the trace id, every observation id and every parent id are
//!   the legacy ones: scores sent to `/api/public/scores` with those ids attach, and a client
//!   reading its trace back by id finds it.
//! - **The trace span.** A trace with a `trace-create` becomes one span `t-<traceId>` without a
//!   parent ([`trace_span_id`]), type `span`, named like the trace, starting and ending at the
//!   trace's timestamp (the earliest observation start when the trace has none). It carries the
//!   trace's input and output as `langfuse.observation.input`/`.output`, its metadata as
//!   `langfuse.trace.metadata`, its version (`langfuse.version`) and environment.
//! - **Observations** keep their parents; those without a parent hang off the trace span.
//!   Each carries its type, name, times (an observation without an end ends at its start; an
//!   event has no end), level and status message (level `ERROR` also as span status `ERROR`),
//!   version, environment, input, output and metadata, and for generation-like types model,
//!   model parameters, usage and cost details, completion start time and prompt link — the
//!   canonical `langfuse.observation.*` attributes the v5 SDKs send
//!   ([`crate::canonical`]).
//! - **Trace attributes on every span** (the trace span and each observation):
//!   `langfuse.trace.name`, `langfuse.user.id`, `langfuse.session.id`, `langfuse.trace.tags`,
//!   `langfuse.trace.public`, `langfuse.release`, so v4 counts every observation for its user
//!   and session. The trace's metadata stays on the trace span (spread onto every row, v4 would
//!   mix it into each observation's metadata).
//! - Spans are written under the scope `langfuse-sdk` (so v4 keeps no `metadata.attributes`),
//!   with [`SOURCE_SCOPE`] as `langfuse.source.scope.name`; the resource has no attributes.
//! - Observations of a trace without a `trace-create` keep their own parents (no trace span).
//!   An observation without a trace id takes its own id as trace id (Langfuse v3 would invent
//!   a random one).
//! - Scores are not spans: each folded score goes to `POST /api/public/scores` as its
//!   `score-create` body ([`Folded::scores`](crate::fold::Folded)).
//!
//! Reading back ([`v4_rows`], [`restore`]): each span becomes the row v4 stores; the
//! `t-<traceId>` row gives the trace, the others its observations (a parent `t-<traceId>` reads
//! as no parent). [`stored_trace`] and [`stored_observation`] put both sides in the form
//! Langfuse stores them, for comparison.
//!
//! What differs from Langfuse v3's own storage, forced by v4's rules: an observation never
//! ended shows zero duration (v4 copies a missing end from the start); an input or output that
//! is JSON other than a string, number, boolean or array of those is stored as its JSON text
//! (which is how v3 stores it too); a prompt link on a type other than `generation` is not
//! kept (v4 links prompts to generations only); times are kept to the millisecond.
//!
//! Late events: an update for an observation already sent is sent as the observation's whole
//! folded state again, with the same id; v4 then stores a second row for that id (it does not
//! deduplicate re-sent span ids), and the newer row carries the final state.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::fold::{Folded, Json, ObservationRow, Text, TraceRow};
use crate::keys;
use crate::record::{EventBody, Level, Metadata, ObservationBody, ObservationType, TraceBody};
use crate::span::SpanBatch;
use crate::time::{format_iso_millis, parse_date_lenient};
use crate::translate::context::SpanContext;
use crate::translate::metadata::{MetadataDomain, user_metadata};
use crate::translate::{Compatibility, TranslateOptions, Translator, environment, trace};
use crate::value::{js_json_stringify, write_json_string};

/// The prefix of a trace span's id: `t-<traceId>`, as in Langfuse's v3 → v4 backfill.
pub const TRACE_SPAN_PREFIX: &str = "t-";

/// The value of `langfuse.source.scope.name` on converted spans.
pub const SOURCE_SCOPE: &str = "langfuse-ingestion";

/// The span id of a trace's span.
pub fn trace_span_id(trace_id: &str) -> String {
    format!("{TRACE_SPAN_PREFIX}{trace_id}")
}

/// One span of the OTLP/JSON export, written as text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpanJson {
    /// The span id (`t-<traceId>` for a trace's span).
    pub span_id: String,
    /// The span object, as OTLP/JSON text.
    pub json: String,
}

/// The OTLP/JSON spans of folded events (see the [module docs](self)): one per trace with a
/// `trace-create`, then one per observation, in fold order.
pub fn spans(folded: &Folded<'_>) -> Vec<SpanJson> {
    let traces: HashMap<&str, &TraceRow<'_>> = folded
        .traces
        .iter()
        .map(|(id, row)| (id.as_ref(), row))
        .collect();
    // A trace without a timestamp starts with its earliest observation.
    let mut earliest: HashMap<&str, i64> = HashMap::new();
    for (id, obs) in &folded.observations {
        let trace_id = obs.trace_id.as_deref().unwrap_or(id);
        if let Some(start) = obs.start_ms {
            let slot = earliest.entry(trace_id).or_insert(start);
            *slot = (*slot).min(start);
        }
    }
    let mut out = Vec::with_capacity(folded.traces.len() + folded.observations.len());
    for (id, row) in &folded.traces {
        let start = row.ts_ms.or_else(|| earliest.get(id.as_ref()).copied());
        out.push(trace_span(id, row, start));
    }
    for (id, obs) in &folded.observations {
        let trace_id = obs.trace_id.as_deref().unwrap_or(id);
        out.push(observation_span(
            id,
            trace_id,
            obs,
            traces.get(trace_id).copied(),
        ));
    }
    out
}

/// One OTLP/JSON export request (`{"resourceSpans": …}`) holding `spans`, as text.
pub fn export_request(spans: &[SpanJson]) -> String {
    let mut out =
        String::with_capacity(256 + spans.iter().map(|s| s.json.len() + 1).sum::<usize>());
    out.push_str(
        r#"{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"scope":{"name":"#,
    );
    write_json_string(&mut out, crate::canonical::CANONICAL_SCOPE_NAME);
    out.push_str(r#","version":"#);
    write_json_string(&mut out, env!("CARGO_PKG_VERSION"));
    out.push_str(r#","attributes":["#);
    let mut attrs = Attrs::new(&mut out);
    attrs.string(crate::canonical::SOURCE_SCOPE_NAME, SOURCE_SCOPE);
    out.push_str(r#"]},"spans":["#);
    for (i, span) in spans.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&span.json);
    }
    out.push_str("]}]}]}");
    out
}

/// Writes OTLP/JSON `KeyValue`s, comma-separated.
struct Attrs<'o> {
    out: &'o mut String,
    first: bool,
}

impl<'o> Attrs<'o> {
    fn new(out: &'o mut String) -> Self {
        Attrs { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push_str(r#"{"key":"#);
        write_json_string(self.out, key);
        self.out.push_str(r#","value":"#);
    }

    fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        self.out.push_str(r#"{"stringValue":"#);
        write_json_string(self.out, value);
        self.out.push_str("}}");
    }

    fn boolean(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out.push_str(if value {
            r#"{"boolValue":true}}"#
        } else {
            r#"{"boolValue":false}}"#
        });
    }

    fn int(&mut self, key: &str, value: i64) {
        self.key(key);
        self.out.push_str(r#"{"intValue":""#);
        self.out.push_str(&value.to_string());
        self.out.push_str(r#""}}"#);
    }

    fn strings(&mut self, key: &str, values: &[Text<'_>]) {
        self.key(key);
        self.out.push_str(r#"{"arrayValue":{"values":["#);
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(r#"{"stringValue":"#);
            write_json_string(self.out, v);
            self.out.push('}');
        }
        self.out.push_str("]}}}");
    }

    /// Input/output: strings, numbers, booleans and arrays of them as typed values, anything
    /// else as its JSON text (the server never parses these attributes); `null` writes nothing.
    fn io(&mut self, key: &str, value: Option<&Json<'_>>) {
        let Some(json) = value else { return };
        let owned;
        let value: &Value = match json {
            Json::Value(v) => v,
            other => {
                owned = other.to_value();
                &owned
            }
        };
        if value.is_null() {
            return;
        }
        self.key(key);
        if crate::canonical::is_otlp_representable(value) {
            write_any(self.out, value);
        } else {
            self.out.push_str(r#"{"stringValue":"#);
            write_json_string(self.out, &js_json_stringify(value));
            self.out.push('}');
        }
        self.out.push('}');
    }

    /// A JSON object as its text (empty ones write nothing).
    fn object_text(&mut self, key: &str, text: &str) {
        if text == "{}" || text.is_empty() {
            return;
        }
        self.string(key, text);
    }
}

fn write_any(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => {
            out.push_str(r#"{"stringValue":"#);
            write_json_string(out, s);
            out.push('}');
        }
        Value::Bool(b) => out.push_str(if *b {
            r#"{"boolValue":true}"#
        } else {
            r#"{"boolValue":false}"#
        }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => {
                out.push_str(r#"{"intValue":""#);
                out.push_str(&i.to_string());
                out.push_str(r#""}"#);
            }
            None => {
                out.push_str(r#"{"doubleValue":"#);
                out.push_str(&n.as_f64().unwrap_or_default().to_string());
                out.push('}');
            }
        },
        Value::Array(items) => {
            out.push_str(r#"{"arrayValue":{"values":["#);
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_any(out, item);
            }
            out.push_str("]}}");
        }
        other => {
            out.push_str(r#"{"stringValue":"#);
            write_json_string(out, &js_json_stringify(other));
            out.push('}');
        }
    }
}

/// A JSON object field as text; `skip_null`: leave out `null` values (model parameters, where
/// the attribute would turn them into the text `"null"`).
fn object_text(map: &Map<String, Value>, skip_null: bool) -> String {
    if skip_null && map.values().any(Value::is_null) {
        let kept: Map<String, Value> = map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        return js_json_stringify(&Value::Object(kept));
    }
    let mut out = String::new();
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(&mut out, k);
        out.push(':');
        out.push_str(&js_json_stringify(v));
    }
    out.push('}');
    out
}

/// The span object's head: ids, name, kind; `attributes` follow.
fn span_head(out: &mut String, trace_id: &str, span_id: &str, parent: Option<&str>, name: &str) {
    out.push_str(r#"{"traceId":"#);
    write_json_string(out, trace_id);
    out.push_str(r#","spanId":"#);
    write_json_string(out, span_id);
    if let Some(parent) = parent {
        out.push_str(r#","parentSpanId":"#);
        write_json_string(out, parent);
    }
    out.push_str(r#","name":"#);
    write_json_string(out, name);
    out.push_str(r#","kind":1"#);
}

fn span_times(out: &mut String, start_ms: Option<i64>, end_ms: Option<i64>) {
    if let Some(start) = start_ms {
        out.push_str(r#","startTimeUnixNano":""#);
        out.push_str(&(i128::from(start) * 1_000_000).to_string());
        out.push('"');
    }
    if let Some(end) = end_ms {
        out.push_str(r#","endTimeUnixNano":""#);
        out.push_str(&(i128::from(end) * 1_000_000).to_string());
        out.push('"');
    }
}

fn trace_span(id: &str, row: &TraceRow<'_>, start_ms: Option<i64>) -> SpanJson {
    let span_id = trace_span_id(id);
    let mut out = String::with_capacity(512);
    span_head(
        &mut out,
        id,
        &span_id,
        None,
        row.name.as_deref().unwrap_or_default(),
    );
    span_times(&mut out, start_ms, start_ms);
    out.push_str(r#","attributes":["#);
    let mut attrs = Attrs::new(&mut out);
    attrs.string(keys::LANGFUSE_OBSERVATION_TYPE, "span");
    attrs.string(keys::LANGFUSE_ENVIRONMENT, &row.environment);
    if let Some(version) = &row.version {
        attrs.string(keys::LANGFUSE_VERSION, version);
    }
    attrs.io(keys::LANGFUSE_OBSERVATION_INPUT, row.input.as_ref());
    attrs.io(keys::LANGFUSE_OBSERVATION_OUTPUT, row.output.as_ref());
    if let Some(metadata) = &row.metadata {
        attrs.object_text(keys::LANGFUSE_TRACE_METADATA, &metadata.text());
    }
    push_trace_attributes(&mut attrs, row);
    out.push_str("]}");
    SpanJson { span_id, json: out }
}

fn observation_span(
    id: &str,
    trace_id: &str,
    obs: &ObservationRow<'_>,
    trace: Option<&TraceRow<'_>>,
) -> SpanJson {
    let kind = obs.observation_type();
    let parent = match (&obs.parent_observation_id, trace) {
        (Some(parent), _) => Some(parent.to_string()),
        (None, Some(_)) => Some(trace_span_id(trace_id)),
        (None, None) => None,
    };
    let end = if kind == ObservationType::Event {
        obs.start_ms
    } else {
        obs.end_ms.or(obs.start_ms)
    };
    let mut out = String::with_capacity(1024);
    span_head(
        &mut out,
        trace_id,
        id,
        parent.as_deref(),
        obs.name.as_deref().unwrap_or_default(),
    );
    span_times(&mut out, obs.start_ms, end);
    if obs.level == Level::Error.as_str() {
        out.push_str(r#","status":{"code":2,"message":"#);
        write_json_string(&mut out, obs.status_message.as_deref().unwrap_or_default());
        out.push('}');
    }
    out.push_str(r#","attributes":["#);
    let mut attrs = Attrs::new(&mut out);
    attrs.string(keys::LANGFUSE_OBSERVATION_TYPE, kind.as_str());
    attrs.string(keys::LANGFUSE_ENVIRONMENT, &obs.environment);
    attrs.string(keys::LANGFUSE_OBSERVATION_LEVEL, &obs.level);
    if let Some(message) = &obs.status_message {
        attrs.string(keys::LANGFUSE_OBSERVATION_STATUS_MESSAGE, message);
    }
    if let Some(version) = &obs.version {
        attrs.string(keys::LANGFUSE_VERSION, version);
    }
    attrs.io(keys::LANGFUSE_OBSERVATION_INPUT, obs.input.as_ref());
    attrs.io(keys::LANGFUSE_OBSERVATION_OUTPUT, obs.output.as_ref());
    if let Some(metadata) = &obs.metadata {
        attrs.object_text(keys::LANGFUSE_OBSERVATION_METADATA, &metadata.text());
    }
    if kind.is_generation_like() {
        if let Some(model) = &obs.model {
            attrs.string(keys::LANGFUSE_OBSERVATION_MODEL_NAME, model);
        }
        if let Some(params) = &obs.model_parameters {
            attrs.object_text(
                keys::LANGFUSE_OBSERVATION_MODEL_PARAMETERS,
                &object_text(params, true),
            );
        }
        if let Some(usage) = &obs.usage_details {
            attrs.object_text(
                keys::LANGFUSE_OBSERVATION_USAGE_DETAILS,
                &object_text(usage, false),
            );
        }
        if let Some(cost) = &obs.cost_details {
            attrs.object_text(
                keys::LANGFUSE_OBSERVATION_COST_DETAILS,
                &object_text(cost, false),
            );
        }
        if let Some(start) = &obs.completion_start_time {
            attrs.string(keys::LANGFUSE_OBSERVATION_COMPLETION_START_TIME, start);
        }
        if kind == ObservationType::Generation
            && let (Some(name), Some(version)) = (&obs.prompt_name, obs.prompt_version)
        {
            attrs.string(keys::LANGFUSE_OBSERVATION_PROMPT_NAME, name);
            attrs.int(keys::LANGFUSE_OBSERVATION_PROMPT_VERSION, version);
        }
    }
    if let Some(trace) = trace {
        push_trace_attributes(&mut attrs, trace);
    }
    out.push_str("]}");
    SpanJson {
        span_id: id.to_owned(),
        json: out,
    }
}

fn push_trace_attributes(attrs: &mut Attrs<'_>, trace: &TraceRow<'_>) {
    if let Some(name) = &trace.name {
        attrs.string(keys::LANGFUSE_TRACE_NAME, name);
    }
    if let Some(user) = &trace.user_id {
        attrs.string(keys::LANGFUSE_USER_ID, user);
    }
    if let Some(session) = &trace.session_id {
        attrs.string(keys::LANGFUSE_SESSION_ID, session);
    }
    if !trace.tags.is_empty() {
        attrs.strings(keys::LANGFUSE_TRACE_TAGS, &trace.tags);
    }
    attrs.boolean(keys::LANGFUSE_TRACE_PUBLIC, trace.public);
    if let Some(release) = &trace.release {
        attrs.string(keys::LANGFUSE_RELEASE, release);
    }
}

/// What Langfuse v4 stores for one span (`processToEvent`): the observation, and the
/// trace-level fields read from that span's own attributes only.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct V4Row {
    /// The observation type.
    pub kind: ObservationType,
    /// The observation's fields (its `metadata` holds the observation's user keys).
    pub observation: ObservationBody,
    /// `langfuse.trace.name`.
    pub trace_name: Option<String>,
    /// The user id, from the span's attributes.
    pub user_id: Option<String>,
    /// The session id, from the span's attributes.
    pub session_id: Option<String>,
    /// Trace tags, from the span's attributes.
    pub tags: Vec<String>,
    /// `langfuse.trace.public` (false when absent).
    pub public: bool,
    /// The release, from the span's or the resource's attributes.
    pub release: Option<String>,
    /// The trace metadata keys the span carries (v4 spreads them into the row's metadata).
    pub trace_metadata: Map<String, Value>,
}

/// The rows Langfuse v4 stores for a batch of spans: one per span, in order (v4 stores a
/// re-sent span id as another row), each with the trace-level fields of that span only. Uses
/// the translator in [`Compatibility::Server`] mode for the observation's fields; a span the
/// server's schema drops has no row.
pub fn v4_rows(batch: &SpanBatch<'_>) -> Vec<V4Row> {
    let translation = Translator::with_options(TranslateOptions {
        compatibility: Compatibility::Server,
        ..TranslateOptions::default()
    })
    .translate(batch);
    let mut observations = translation.events.into_iter().filter_map(|e| match e.body {
        EventBody::ObservationCreate(kind, body) => Some((kind, body)),
        _ => None,
    });
    let mut pending = observations.next();
    let mut rows = Vec::new();
    for rs in &batch.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let Some((kind, body)) = pending.take_if(|(_, b)| b.id == span.span_id) else {
                    continue;
                };
                pending = observations.next();
                let cx = SpanContext {
                    resource: &rs.resource,
                    scope: &ss.scope,
                    span,
                };
                let attrs = cx.attrs();
                rows.push(V4Row {
                    kind,
                    observation: body,
                    trace_name: attrs
                        .get(keys::LANGFUSE_TRACE_NAME)
                        .map(|v| v.to_json_string().into_owned()),
                    user_id: trace::user_id(&cx),
                    session_id: trace::session_id(&cx),
                    tags: trace::tags(&cx),
                    public: trace::public(&cx).unwrap_or(false),
                    release: environment::release(&cx),
                    trace_metadata: user_metadata(attrs, MetadataDomain::Trace),
                });
            }
        }
    }
    rows
}

/// v4 rows read back into Langfuse records (see the [module docs](self)).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Restored {
    /// One trace per `t-<traceId>` row.
    pub traces: Vec<TraceBody>,
    /// One observation per other span id (the last row of a re-sent id).
    pub observations: Vec<(ObservationType, ObservationBody)>,
    /// Span ids stored more than once, with their row count.
    pub duplicates: Vec<(String, usize)>,
}

/// Reads v4 rows of this representation back as records.
pub fn restore(rows: &[V4Row]) -> Restored {
    let mut out = Restored::default();
    let mut trace_at: HashMap<String, usize> = HashMap::new();
    let mut observation_at: HashMap<String, usize> = HashMap::new();
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut count_at: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let obs = &row.observation;
        match count_at.get(&obs.id) {
            Some(&i) => counts[i].1 += 1,
            None => {
                count_at.insert(obs.id.clone(), counts.len());
                counts.push((obs.id.clone(), 1));
            }
        }
        let trace_id = obs.trace_id.clone().flatten().unwrap_or_default();
        if obs.id == trace_span_id(&trace_id) {
            let mut metadata = obs
                .metadata
                .clone()
                .flatten()
                .map(|m| m.user)
                .unwrap_or_default();
            metadata.extend(row.trace_metadata.clone());
            let trace = TraceBody {
                id: Some(trace_id.clone()),
                timestamp: obs.start_time.clone().flatten(),
                name: row.trace_name.clone().map(Some),
                input: obs.input.clone(),
                output: obs.output.clone(),
                session_id: row.session_id.clone().map(Some),
                user_id: row.user_id.clone().map(Some),
                environment: obs.environment.clone(),
                metadata: (!metadata.is_empty()).then(|| {
                    Some(Metadata {
                        user: metadata,
                        ..Metadata::default()
                    })
                }),
                release: row.release.clone().map(Some),
                version: obs.version.clone(),
                public: Some(Some(row.public)),
                tags: (!row.tags.is_empty()).then(|| Some(row.tags.clone())),
            };
            match trace_at.get(&trace_id) {
                Some(&i) => out.traces[i] = trace,
                None => {
                    trace_at.insert(trace_id, out.traces.len());
                    out.traces.push(trace);
                }
            }
            continue;
        }
        let mut body = obs.clone();
        if body.parent_observation_id.clone().flatten().as_deref()
            == Some(&trace_span_id(&trace_id))
        {
            body.parent_observation_id = None;
        }
        match observation_at.get(&obs.id) {
            Some(&i) => out.observations[i] = (row.kind, body),
            None => {
                observation_at.insert(obs.id.clone(), out.observations.len());
                out.observations.push((row.kind, body));
            }
        }
    }
    out.duplicates = counts.into_iter().filter(|(_, n)| *n > 1).collect();
    out
}

/// A trace as Langfuse stores it, for comparison: `{id, timestamp, name, userId, sessionId,
/// release, version, public, tags, environment, input, output, metadata}` with times to the
/// millisecond, input and output as stored text (a string as it is, other JSON as its text),
/// metadata as its user keys with values as stored text, tags sorted, absent and `null` alike.
pub fn stored_trace(body: &TraceBody) -> Value {
    let mut tags = body.tags.clone().flatten().unwrap_or_default();
    tags.sort();
    tags.dedup();
    json!({
        "id": body.id,
        "timestamp": body.timestamp.as_deref().map(stored_time),
        "name": body.name.clone().flatten(),
        "userId": body.user_id.clone().flatten(),
        "sessionId": body.session_id.clone().flatten(),
        "release": body.release.clone().flatten(),
        "version": body.version.clone().flatten(),
        "public": body.public.flatten().unwrap_or(false),
        "tags": tags,
        "environment": body.environment,
        "input": stored_text(&body.input),
        "output": stored_text(&body.output),
        "metadata": stored_metadata(&body.metadata),
    })
}

/// An observation as Langfuse stores it, for comparison (the forms of [`stored_trace`]; an
/// end time equal to the start reads as no end, see the [module docs](self); generation
/// fields only for generation-like types; numbers of usage and cost as numbers).
pub fn stored_observation(kind: ObservationType, body: &ObservationBody) -> Value {
    let start = body.start_time.clone().flatten();
    let end = body
        .end_time
        .clone()
        .flatten()
        .filter(|end| start.as_deref().map(stored_time) != Some(stored_time(end)));
    let level = body.level.flatten().unwrap_or_default();
    let mut out = json!({
        "id": body.id,
        "type": kind.as_str(),
        "traceId": body.trace_id.clone().flatten(),
        "parentObservationId": body.parent_observation_id.clone().flatten(),
        "name": body.name.clone().flatten(),
        "startTime": start.as_deref().map(stored_time),
        "endTime": end.as_deref().map(stored_time),
        "level": level.as_str(),
        "statusMessage": body.status_message.clone().flatten(),
        "version": body.version.clone().flatten(),
        "environment": body.environment,
        "input": stored_text(&body.input),
        "output": stored_text(&body.output),
        "metadata": stored_metadata(&body.metadata),
    });
    if kind.is_generation_like() {
        let numbers = |m: &Option<Option<Map<String, Value>>>| -> Value {
            let map: Map<String, Value> = m
                .clone()
                .flatten()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| v.as_f64().map(|n| (k, json!(n))))
                .collect();
            Value::Object(map)
        };
        let params: Map<String, Value> = body
            .model_parameters
            .clone()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, Value::String(text_of(&v))))
            .collect();
        out["model"] = json!(body.model.clone().flatten());
        out["modelParameters"] = Value::Object(params);
        out["usageDetails"] = numbers(&body.usage_details);
        out["costDetails"] = numbers(&body.cost_details);
        out["completionStartTime"] = json!(
            body.completion_start_time
                .clone()
                .flatten()
                .as_deref()
                .map(stored_time)
        );
        if kind == ObservationType::Generation {
            out["promptName"] = json!(body.prompt_name.clone().flatten());
            out["promptVersion"] = json!(body.prompt_version.flatten());
        }
    }
    out
}

fn stored_time(iso: &str) -> String {
    parse_date_lenient(iso).map_or_else(|| iso.to_owned(), format_iso_millis)
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => js_json_stringify(other),
    }
}

fn stored_text(side: &Option<Option<Value>>) -> Value {
    match side.as_ref().and_then(Option::as_ref) {
        None | Some(Value::Null) => Value::Null,
        Some(v) => Value::String(text_of(v)),
    }
}

fn stored_metadata(metadata: &Option<Option<Metadata>>) -> Value {
    let user = metadata
        .as_ref()
        .and_then(Option::as_ref)
        .map(|m| m.user.clone())
        .unwrap_or_default();
    Value::Object(
        user.into_iter()
            .map(|(k, v)| (k, Value::String(text_of(&v))))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::fold;
    use crate::otlp;
    use crate::record::IngestionEvent;

    /// A legacy SDK's trace: a trace, nested spans, a generation with usage/cost/parameters/
    /// prompt, an event, an error, updates after the observations, a trace update, a score.
    fn events() -> Vec<IngestionEvent> {
        [
            json!({"id": "e1", "type": "trace-create", "timestamp": "2026-01-01T00:00:00.000Z",
                "body": {"id": "trace-1", "name": "support", "userId": "u-1", "sessionId": "s-1",
                "tags": ["b", "a"], "metadata": {"tier": "gold", "n": 3}, "release": "r1",
                "version": "v1", "input": {"q": "hi"}, "timestamp": "2026-01-01T00:00:00.000Z"}}),
            json!({"id": "e2", "type": "span-create", "timestamp": "2026-01-01T00:00:00.100Z",
                "body": {"id": "span-1", "traceId": "trace-1", "name": "retrieve",
                "startTime": "2026-01-01T00:00:00.100Z", "input": "q", "metadata": {"k": 1}}}),
            json!({"id": "e3", "type": "generation-create", "timestamp": "2026-01-01T00:00:00.200Z",
                "body": {"id": "gen-1", "traceId": "trace-1", "parentObservationId": "span-1",
                "name": "answer", "startTime": "2026-01-01T00:00:00.200Z", "model": "gpt-4o-mini",
                "modelParameters": {"temperature": 0.2, "max_tokens": 100, "stop": null},
                "promptName": "qa", "promptVersion": 3,
                "input": [{"role": "user", "content": "hi"}]}}),
            json!({"id": "e4", "type": "generation-update", "timestamp": "2026-01-01T00:00:01.000Z",
                "body": {"id": "gen-1", "traceId": "trace-1", "endTime": "2026-01-01T00:00:01.000Z",
                "completionStartTime": "2026-01-01T00:00:00.500Z", "output": {"role": "assistant"},
                "usage": {"input": 10, "output": 5, "unit": "TOKENS", "totalCost": 0.01}}}),
            json!({"id": "e5", "type": "event-create", "timestamp": "2026-01-01T00:00:00.300Z",
                "body": {"id": "ev-1", "traceId": "trace-1", "parentObservationId": "span-1",
                "name": "cache-miss", "startTime": "2026-01-01T00:00:00.300Z", "level": "WARNING"}}),
            json!({"id": "e6", "type": "span-update", "timestamp": "2026-01-01T00:00:01.100Z",
                "body": {"id": "span-1", "traceId": "trace-1", "endTime": "2026-01-01T00:00:01.100Z",
                "level": "ERROR", "statusMessage": "upstream failed", "output": "partial"}}),
            json!({"id": "e7", "type": "tool-create", "timestamp": "2026-01-01T00:00:01.200Z",
                "body": {"id": "tool-1", "traceId": "trace-1", "name": "search",
                "startTime": "2026-01-01T00:00:01.200Z"}}),
            json!({"id": "e8", "type": "trace-create", "timestamp": "2026-01-01T00:00:02.000Z",
                "body": {"id": "trace-1", "output": "bye", "tags": ["c"], "public": true,
                "metadata": {"n": null, "extra": [1, 2]}}}),
            json!({"id": "e9", "type": "score-create", "timestamp": "2026-01-01T00:00:02.000Z",
                "body": {"id": "score-1", "traceId": "trace-1", "name": "quality", "value": 0.9}}),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
    }

    fn folded_records(folded: &Folded<'_>) -> (Vec<Value>, Vec<Value>) {
        let traces = folded
            .traces
            .iter()
            .map(|(id, row)| stored_trace(&row.to_body(id)))
            .collect();
        let observations = folded
            .observations
            .iter()
            .map(|(id, row)| {
                let (kind, body) = row.to_body(id);
                stored_observation(kind, &body)
            })
            .collect();
        (traces, observations)
    }

    #[test]
    fn converted_spans_read_back_as_the_fold_of_the_same_events() {
        let events = events();
        let folded = fold(&events);
        let export = export_request(&spans(&folded));
        // Through the wire form, as the bridge sends it.
        let bytes = export.into_bytes();
        let batch = otlp::decode_json(&bytes).unwrap();
        let rows = v4_rows(&batch);
        assert_eq!(rows.len(), folded.traces.len() + folded.observations.len());
        let restored = restore(&rows);
        assert!(restored.duplicates.is_empty());
        let (traces, observations) = folded_records(&folded);
        let back_traces: Vec<Value> = restored.traces.iter().map(stored_trace).collect();
        let back_observations: Vec<Value> = restored
            .observations
            .iter()
            .map(|(kind, body)| stored_observation(*kind, body))
            .collect();
        assert_eq!(back_traces, traces);
        assert_eq!(back_observations.len(), observations.len());
        for (back, want) in back_observations.iter().zip(&observations) {
            assert_eq!(back, want);
        }
        // Not two empty sides: the generation's fields as the events gave them.
        let generation = back_observations
            .iter()
            .find(|o| o["id"] == "gen-1")
            .unwrap();
        let EventBody::ObservationCreate(_, created) = &events[2].body else {
            panic!("event 3 creates the generation")
        };
        assert_eq!(generation["model"], json!(created.model.clone().flatten()));
        assert_eq!(
            generation["promptVersion"],
            json!(created.prompt_version.flatten())
        );
        assert_eq!(generation["usageDetails"]["input"], json!(10.0));
        assert_eq!(back_traces[0]["userId"], "u-1");
        // Every row counts for the trace's user and session (v4 reads them per row).
        for row in &rows {
            assert_eq!(
                row.user_id.as_deref(),
                Some("u-1"),
                "{}",
                row.observation.id
            );
            assert_eq!(row.session_id.as_deref(), Some("s-1"));
            assert_eq!(row.tags, ["a", "b", "c"]);
        }
    }

    #[test]
    fn the_fold_keeps_what_the_events_said() {
        // The expectations come from the events above, not from the fold's own output.
        let events = events();
        let folded = fold(&events);
        let trace = folded.traces[0].1.to_body("trace-1");
        assert_eq!(
            trace.tags,
            Some(Some(vec!["a".into(), "b".into(), "c".into()]))
        );
        assert_eq!(trace.output, Some(Some(json!("bye"))));
        assert_eq!(trace.input, Some(Some(json!({"q": "hi"}))));
        assert_eq!(
            trace.metadata.unwrap().unwrap().user,
            *json!({"tier": "gold", "extra": [1, 2]})
                .as_object()
                .unwrap()
        );
        let (_, gen_body) = folded
            .observations
            .iter()
            .find(|(id, _)| *id == "gen-1")
            .unwrap()
            .1
            .to_body("gen-1");
        assert_eq!(
            gen_body.usage_details,
            Some(Some(
                json!({"input": 10, "output": 5, "total": 15})
                    .as_object()
                    .unwrap()
                    .clone()
            ))
        );
        assert_eq!(
            gen_body.cost_details,
            Some(Some(json!({"total": 0.01}).as_object().unwrap().clone()))
        );
        assert_eq!(folded.scores.len(), 1);
    }

    #[test]
    fn roots_hang_off_the_trace_span_and_ids_are_kept() {
        let events = events();
        let folded = fold(&events);
        let spans: Vec<Value> = spans(&folded)
            .iter()
            .map(|s| serde_json::from_str(&s.json).unwrap())
            .collect();
        let by_id = |id: &str| spans.iter().find(|s| s["spanId"] == id).unwrap();
        assert!(by_id("t-trace-1").get("parentSpanId").is_none());
        assert_eq!(by_id("span-1")["parentSpanId"], "t-trace-1");
        assert_eq!(by_id("gen-1")["parentSpanId"], "span-1");
        assert_eq!(by_id("span-1")["status"]["code"], 2);
        assert!(spans.iter().all(|s| s["traceId"] == "trace-1"));
    }
}
