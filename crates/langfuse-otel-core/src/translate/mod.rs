//! OpenTelemetry spans → Langfuse ingestion events, following the Langfuse server's rules.
//!
//! Every span becomes exactly one observation event (`span-create`, `generation-create`, …);
//! `trace-create` events are synthesized for root spans, for spans that carry trace-level
//! attributes, and once for every trace id not seen before. The rules, stage by stage, live in
//! the crate's internal modules (one per rule):
//!
//! | module | what it derives |
//! |---|---|
//! | `kind` | observation type and name |
//! | `io` | input and output |
//! | `generation` | model, model parameters, usage, cost, completion start, prompt link |
//! | `level` | level and status message |
//! | `metadata` | metadata (user keys, filtered attributes, resource, scope) |
//! | `environment` | environment, version, release |
//! | `trace` | trace synthesis: roots, trace updates, shallow traces, user/session/tags/public |
//! | `evaluation` | scores from `gen_ai.evaluation.result` events (repair mode) |
//! | `seen` | the seen-trace set a long-lived translator keeps across batches ([`SeenTraces`]) |
//!
//! # Repair mode
//!
//! [`Compatibility::Server`] derives exactly what the Langfuse server derives (the conformance
//! corpus checks it). [`Compatibility::Repair`], the default, keeps what the server would
//! silently drop and reads the current GenAI conventions the server does not read yet:
//!
//! | input | server | repair mode |
//! |---|---|---|
//! | `completion_start_time` without zone, with a space, or as epoch-ms | drops the observation | reads it as UTC |
//! | prompt version as a numeric string; prompt name without version | drops the observation | integer version; unlinked prompt |
//! | non-string `langfuse.version` | drops the observation | version rendered as text |
//! | model parameters blob that is JSON text of a number, string or boolean | drops the observation | ignores the blob, tries the next source |
//! | `gen_ai.response.time_to_first_chunk` (seconds) | ignored | completion start = span start + that time |
//! | `gen_ai.tool.call.outcome = error`, or `error.type` (`gen_ai.tool.error.type`) on a GenAI span, status unset | level `DEFAULT` | level `ERROR`, status message `"<error.type>: <error.message>"` |
//! | `gen_ai.usage.cache_write.input_tokens` | raw key, not subtracted from input (langfuse#17117) | `input_cache_creation`, subtracted from `input` like `cache_creation` |
//! | `gen_ai.usage.{text,image,audio,video}.{input,output}_tokens`, `….cache_read.input_tokens` | raw keys, summed into the total when none is reported | raw keys, subsets: `total` set to the sum of the other buckets |
//! | `gen_ai.operation.name` `fetch_response` / `handle_conversation_turn`, `plan` / `invoke_workflow` / `retrieval`, `search_memory` / other memory operations | span (unless another rule applies) | generation / agent / chain / retriever / span |
//! | `handle_conversation_turn`, `invoke_workflow` with usage | (span) | model, usage and cost skipped, like `invoke_agent` (an aggregate of child calls) |
//! | `gen_ai.skill.name` (skill-loading `execute_tool` refinements) | span | tool |
//! | `gen_ai.prompt.name` + `gen_ai.prompt.version` (a string) | input `{"name": …, "version": …}` (read as indexed prompt keys) | prompt link when the version is an integer; not input |
//! | structured (`AnyValue` map) content on the `gen_ai.client.inference.operation.details` event | `{"kvlistValue":…}` text as input/output | the messages it encodes |
//! | `gen_ai.evaluation.result` events | ignored | `score-create` records for the observation |
//! | `langfuse.observation.skills_available` | a span attribute (left out for SDK scopes) | also the metadata key [`SKILLS_AVAILABLE_METADATA_KEY`], normalized |
//!
//! Metadata and model-parameter JSON blobs follow the server in both modes: an object gives
//! its keys, an array one key per element (`"0"`, `"1"`, …), JSON text of a primitive and
//! invalid JSON give nothing (metadata) or fall through to the next source (model
//! parameters, except the rejections above).
//!
//! ```
//! use langfuse_otel_core::otlp;
//! use langfuse_otel_core::translate::Translator;
//!
//! let export = r#"{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"scope":{"name":"app"},
//!   "spans":[{"traceId":"f7a0e8d1f86e1d6a80854c2106aa25fb","spanId":"99180b94af7b795a","name":"answer",
//!   "startTimeUnixNano":"1767258000000000000","endTimeUnixNano":"1767258000250000000",
//!   "attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
//!                 {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}}]}]}]}]}"#;
//! let batch = otlp::decode_json(export.as_bytes()).unwrap();
//! let events = Translator::new().translate(&batch).events;
//! assert_eq!(events[0].event_type(), "trace-create");
//! assert_eq!(events[1].event_type(), "generation-create");
//! ```

pub(crate) mod compatibility;
pub(crate) mod context;
pub(crate) mod environment;
pub(crate) mod evaluation;
pub(crate) mod facts;
pub(crate) mod generation;
pub(crate) mod io;
pub(crate) mod kind;
pub(crate) mod level;
pub(crate) mod metadata;
pub(crate) mod seen;
pub(crate) mod trace;

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

pub use self::compatibility::Compatibility;
pub(crate) use self::context::SpanContext;
use self::facts::{SpanFacts, io_field};
use self::generation::GenerationFields;
use self::metadata::SharedMetadata;
pub use self::seen::SeenTraces;
pub(crate) use self::trace::trace_level_of_attributes;
pub use self::trace::{TraceLevel, trace_levels};
use crate::record::{EventBody, IngestionEvent, ObservationBody, ObservationType};
use crate::span::{Scope, SpanBatch};
use crate::time::format_iso_millis;

/// Translation settings.
#[derive(Debug, Clone)]
pub struct TranslateOptions {
    /// Treatment of observations the server would reject.
    pub compatibility: Compatibility,
    /// Clock used when a span has neither start nor end time (Unix milliseconds).
    pub now_unix_ms: fn() -> i64,
}

impl Default for TranslateOptions {
    fn default() -> Self {
        TranslateOptions {
            compatibility: Compatibility::default(),
            now_unix_ms: system_now_unix_ms,
        }
    }
}

fn system_now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An observation the server's schema would reject, reported instead of sent (only in
/// [`Compatibility::Server`] mode).
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedObservation {
    /// The event as derived, before validation.
    pub event: IngestionEvent,
    /// Why the schema rejects it.
    pub errors: Vec<String>,
}

/// The result of translating one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translation {
    /// The ingestion events, in span order: a span's `trace-create`, its observation, then (in
    /// [`Compatibility::Repair`] mode) the `score-create`s of its `gen_ai.evaluation.result`
    /// events.
    pub events: Vec<IngestionEvent>,
    /// Observations the server would drop (empty in [`Compatibility::Repair`] mode).
    pub dropped: Vec<DroppedObservation>,
}

/// Translates span batches into ingestion events.
///
/// A `Translator` remembers the trace ids it has seen (like the server's 10-minute
/// seen-trace cache, bounded in size), so a long-lived exporter or bridge emits a minimal
/// ("shallow") `trace-create` only once per trace. Use a fresh translator, or
/// [`translate_batch`], to evaluate a batch on its own.
#[derive(Debug, Default)]
pub struct Translator {
    options: TranslateOptions,
    seen: SeenTraces,
}

impl Translator {
    /// A translator with default options and an empty seen-trace set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A translator with the given options.
    pub fn with_options(options: TranslateOptions) -> Self {
        Translator {
            options,
            seen: SeenTraces::default(),
        }
    }

    /// Replaces the seen-trace set (for example one with another capacity or lifetime).
    pub fn with_seen_traces(mut self, seen: SeenTraces) -> Self {
        self.seen = seen;
        self
    }

    /// The options in use.
    pub fn options(&self) -> &TranslateOptions {
        &self.options
    }

    /// Translates one batch.
    pub fn translate(&mut self, batch: &SpanBatch<'_>) -> Translation {
        let now = (self.options.now_unix_ms)();
        // The server marks all trace ids of a batch as seen before converting; ids that were
        // already present count as seen for the whole batch.
        let batch_trace_ids: HashSet<&str> = batch
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .map(|span| span.trace_id.as_ref())
            .collect();
        let mut already_seen: HashSet<&str> = batch_trace_ids
            .into_iter()
            .filter(|id| self.seen.check_and_insert(id, now))
            .collect();

        let mut out = Translation {
            events: Vec::with_capacity(batch.span_count() * 2),
            dropped: Vec::new(),
        };
        let mut full_trace_ids: HashSet<&str> = HashSet::new();
        for rs in &batch.resource_spans {
            let resource_meta = SharedMetadata::for_resource(&rs.resource);
            // Exporters interleave scopes (SDK span, library span, SDK span): build each once.
            let mut scope_cache: Vec<(&Scope<'_>, SharedMetadata)> = Vec::new();
            for ss in &rs.scope_spans {
                let shared = match scope_cache.iter().find(|(scope, _)| **scope == ss.scope) {
                    Some((_, shared)) => shared.clone(),
                    None => {
                        let shared = resource_meta.with_scope(&ss.scope);
                        scope_cache.push((&ss.scope, shared.clone()));
                        shared
                    }
                };
                for span in &ss.spans {
                    let cx = SpanContext {
                        resource: &rs.resource,
                        scope: &ss.scope,
                        span,
                    };
                    let facts = SpanFacts::derive(&cx, now);
                    let trace_event = trace::trace_event(
                        &cx,
                        &shared,
                        &facts,
                        &already_seen,
                        self.options.compatibility == Compatibility::Repair,
                    );
                    if let Some(trace) = trace_event {
                        if !trace.is_shallow {
                            full_trace_ids.insert(&span.trace_id);
                        }
                        already_seen.insert(&span.trace_id);
                        out.events.push(trace.event);
                    }
                    // Repair mode: evaluation results become scores of the observation.
                    let scores_environment = (self.options.compatibility == Compatibility::Repair
                        && span
                            .events
                            .iter()
                            .any(|e| e.name == crate::keys::EVENT_GEN_AI_EVALUATION_RESULT))
                    .then(|| facts.environment.clone());
                    match observation_event(&cx, &shared, facts, self.options.compatibility) {
                        Ok(event) => out.events.push(event),
                        Err(dropped) => out.dropped.push(*dropped),
                    }
                    if let Some(environment) = scores_environment {
                        out.events
                            .extend(evaluation::evaluation_scores(&cx, &environment));
                    }
                }
            }
        }
        // The server drops minimal trace-creates for ids that got a full one in the same batch.
        if !full_trace_ids.is_empty() {
            out.events.retain(|e| match &e.body {
                EventBody::TraceCreate(t) => {
                    !(trace::is_shallow(t)
                        && t.id
                            .as_deref()
                            .is_some_and(|id| full_trace_ids.contains(id)))
                }
                _ => true,
            });
        }
        out
    }
}

/// Translates one batch on its own (no trace id counts as seen before), with default options.
pub fn translate_batch(batch: &SpanBatch<'_>) -> Translation {
    Translator::new().translate(batch)
}

fn nullable<T>(value: Option<T>) -> Option<Option<T>> {
    Some(value)
}

/// Observation metadata key of the skills a span reports in
/// `langfuse.observation.skills_available` (repair mode): a JSON array of `{name, version?}`.
pub const SKILLS_AVAILABLE_METADATA_KEY: &str = "skills_available";

fn observation_event(
    cx: &SpanContext<'_, '_>,
    shared: &SharedMetadata,
    facts: SpanFacts,
    compatibility: Compatibility,
) -> Result<IngestionEvent, Box<DroppedObservation>> {
    let repair = compatibility == Compatibility::Repair;
    let kind = kind::observation_type(cx, repair);
    let (start, end) = (facts.start_ms, facts.end_ms);
    let (input, output) = io::input_output(cx, io::IoTarget::Observation, repair);
    let mut metadata = metadata::observation_metadata(cx, shared);
    // Repair: the ingestion records have no skills field, and the SDK scope's attributes are
    // left out of the metadata, so the skills list is kept as a metadata key.
    if repair && let Some(skills) = crate::conventions::skills_available(cx.attrs()) {
        metadata.user.insert(
            SKILLS_AVAILABLE_METADATA_KEY.to_owned(),
            crate::conventions::skills_value(&skills),
        );
    }
    let mut input = io_field(input);
    io::move_tool_definitions(&mut metadata, &mut input);
    let (level, status_message) =
        level::level_and_status(cx, compatibility == Compatibility::Repair);
    let mut body = ObservationBody {
        id: cx.span.span_id.to_string(),
        trace_id: Some(Some(cx.span.trace_id.to_string())),
        name: Some(Some(facts.name)),
        start_time: Some(Some(format_iso_millis(start))),
        end_time: (kind != ObservationType::Event).then(|| Some(format_iso_millis(end))),
        metadata: Some(Some(metadata)),
        input,
        output: io_field(output),
        level: Some(Some(level)),
        status_message: nullable(status_message),
        parent_observation_id: nullable(cx.span.parent_id().map(str::to_owned)),
        version: nullable(facts.version),
        environment: facts.environment,
        ..ObservationBody::default()
    };
    // The server's schema wants a string version; `SpanFacts` renders other values as text.
    if compatibility == Compatibility::Server
        && cx
            .attr(crate::keys::LANGFUSE_VERSION)
            .is_some_and(|v| v.as_str().is_none())
    {
        return Err(Box::new(DroppedObservation {
            event: IngestionEvent::new(EventBody::ObservationCreate(kind, body)),
            errors: vec!["body.version: Invalid input: expected string".to_owned()],
        }));
    }
    if kind.is_generation_like() {
        match generation::generation_fields(cx, kind, compatibility, start) {
            Ok(fields) => apply_generation_fields(&mut body, fields),
            Err(rejection) => {
                apply_generation_fields(&mut body, *rejection.fields);
                return Err(Box::new(DroppedObservation {
                    event: IngestionEvent::new(EventBody::ObservationCreate(kind, body)),
                    errors: rejection.errors,
                }));
            }
        }
    }
    Ok(IngestionEvent::new(EventBody::ObservationCreate(
        kind, body,
    )))
}

fn apply_generation_fields(body: &mut ObservationBody, fields: GenerationFields) {
    body.completion_start_time = Some(fields.completion_start_time);
    body.model = fields.model.map(Some);
    body.model_parameters = Some(fields.model_parameters);
    body.usage = Some(None);
    body.usage_details = fields.usage_details.filter(|m| !m.is_empty()).map(Some);
    body.cost_details = fields.cost_details.filter(|m| !m.is_empty()).map(Some);
    body.prompt_name = Some(fields.prompt_name);
    body.prompt_version = Some(fields.prompt_version);
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::span::{Attributes, ResourceSpans, ScopeSpans, Span};
    use crate::value::AttrValue;

    fn batch_with_version(version: AttrValue<'static>) -> SpanBatch<'static> {
        SpanBatch {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: Cow::Borrowed("4bf92f3577b34da6a3ce929d0e0e4736"),
                        span_id: Cow::Borrowed("00f067aa0ba902b7"),
                        name: Cow::Borrowed("step"),
                        start_time_unix_ms: Some(1_767_258_000_000),
                        attributes: Attributes::from_pairs([(
                            Cow::Borrowed(crate::keys::LANGFUSE_VERSION),
                            version,
                        )]),
                        ..Span::default()
                    }],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    fn translate_in(mode: Compatibility, batch: &SpanBatch<'_>) -> Translation {
        Translator::with_options(TranslateOptions {
            compatibility: mode,
            ..TranslateOptions::default()
        })
        .translate(batch)
    }

    #[test]
    fn server_mode_drops_an_observation_with_a_non_string_version() {
        let out = translate_in(
            Compatibility::Server,
            &batch_with_version(AttrValue::Number(3.0)),
        );
        assert_eq!(out.dropped.len(), 1);
        assert!(out.events.iter().all(|e| e.body.observation().is_none()));
    }

    #[test]
    fn repair_mode_keeps_a_non_string_version_as_text() {
        let out = translate_in(
            Compatibility::Repair,
            &batch_with_version(AttrValue::Number(3.0)),
        );
        let obs = out
            .events
            .iter()
            .find_map(|e| e.body.observation())
            .unwrap();
        assert_eq!(obs.version, Some(Some("3".to_owned())));
        assert!(out.dropped.is_empty());
    }

    #[test]
    fn a_string_version_is_kept_in_both_modes() {
        for mode in [Compatibility::Server, Compatibility::Repair] {
            let out = translate_in(mode, &batch_with_version(AttrValue::str("v9")));
            let obs = out
                .events
                .iter()
                .find_map(|e| e.body.observation())
                .unwrap();
            assert_eq!(obs.version, Some(Some("v9".to_owned())));
        }
    }

    /// Found by the fuzz target: serde_json treats an object whose first key is its private
    /// raw-value marker specially; records must still read back.
    #[test]
    fn records_with_any_attribute_key_read_back() {
        let mut batch = batch_with_version(AttrValue::str("v1"));
        batch.resource_spans[0].resource.attributes = Attributes::from_pairs([(
            Cow::Borrowed("$serde_json::private::RawValue"),
            AttrValue::str("web-01"),
        )]);
        let out = translate_in(Compatibility::Repair, &batch);
        for event in &out.events {
            let json = serde_json::to_string(event).unwrap();
            let back: IngestionEvent = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), json);
        }
    }

    #[test]
    fn a_long_lived_translator_emits_a_shallow_trace_once_per_trace() {
        let mut batch = batch_with_version(AttrValue::str("v1"));
        batch.resource_spans[0].scope_spans[0].spans[0].parent_span_id =
            Some(Cow::Borrowed("1111111111111111"));
        let mut translator = Translator::new();
        let first = translator.translate(&batch);
        let second = translator.translate(&batch);
        let traces = |t: &Translation| t.events.iter().filter(|e| e.body.trace().is_some()).count();
        assert_eq!(traces(&first), 1);
        assert_eq!(traces(&second), 0);
    }

    fn span_batch(scope: &'static str, span: Span<'static>) -> SpanBatch<'static> {
        SpanBatch {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    scope: Scope {
                        name: Cow::Borrowed(scope),
                        ..Scope::default()
                    },
                    spans: vec![span],
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    fn generation_span(
        attrs: Vec<(&'static str, AttrValue<'static>)>,
        events: Vec<crate::span::SpanEvent<'static>>,
    ) -> Span<'static> {
        Span {
            trace_id: Cow::Borrowed("4bf92f3577b34da6a3ce929d0e0e4736"),
            span_id: Cow::Borrowed("00f067aa0ba902b7"),
            name: Cow::Borrowed("chat gpt-4o"),
            start_time_unix_ms: Some(1_767_258_000_000),
            attributes: Attributes::from_pairs(
                attrs.into_iter().map(|(k, v)| (Cow::Borrowed(k), v)),
            ),
            events,
            ..Span::default()
        }
    }

    #[test]
    fn skills_available_is_kept_in_the_metadata_in_repair_mode() {
        let batch = span_batch(
            crate::keys::SCOPE_LANGFUSE_SDK,
            generation_span(
                vec![
                    (
                        crate::keys::LANGFUSE_OBSERVATION_TYPE,
                        AttrValue::str("generation"),
                    ),
                    (
                        crate::keys::LANGFUSE_OBSERVATION_SKILLS_AVAILABLE,
                        AttrValue::str(r#"[{"name":"refunds","version":2},{"skillName":"tone"}]"#),
                    ),
                ],
                vec![],
            ),
        );
        let metadata_of = |mode| {
            let out = translate_in(mode, &batch);
            let obs = out
                .events
                .iter()
                .find_map(|e| e.body.observation())
                .cloned()
                .unwrap();
            obs.metadata.unwrap().unwrap().user
        };
        assert_eq!(
            metadata_of(Compatibility::Repair).get(SKILLS_AVAILABLE_METADATA_KEY),
            Some(&serde_json::json!([{"name":"refunds","version":2},{"name":"tone"}]))
        );
        assert!(metadata_of(Compatibility::Server).is_empty());
    }

    #[test]
    fn evaluation_result_events_become_scores_in_repair_mode_only() {
        let event = crate::span::SpanEvent {
            name: Cow::Borrowed(crate::keys::EVENT_GEN_AI_EVALUATION_RESULT),
            time_unix_ms: None,
            attributes: vec![
                (
                    Cow::Borrowed(crate::keys::GEN_AI_EVALUATION_NAME),
                    AttrValue::str("relevance"),
                ),
                (
                    Cow::Borrowed(crate::keys::GEN_AI_EVALUATION_SCORE_VALUE),
                    AttrValue::Number(1.0),
                ),
            ],
        };
        let batch = span_batch(
            "app",
            generation_span(
                vec![(crate::keys::GEN_AI_OPERATION_NAME, AttrValue::str("chat"))],
                vec![event],
            ),
        );
        let types = |mode| -> Vec<&'static str> {
            translate_in(mode, &batch)
                .events
                .iter()
                .map(IngestionEvent::event_type)
                .collect()
        };
        assert_eq!(
            types(Compatibility::Repair),
            ["trace-create", "generation-create", "score-create"]
        );
        assert_eq!(
            types(Compatibility::Server),
            ["trace-create", "generation-create"]
        );
    }
}
