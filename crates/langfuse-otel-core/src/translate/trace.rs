//! Trace synthesis (server: `processSpan`, `createTraceEvent`, `hasTraceUpdates`) and the
//! trace-level fields user, session, tags and public.
//!
//! A span produces a `trace-create` when it is a root (no parent, or
//! `langfuse.internal.as_root`), when it carries trace-level attributes (a *trace update*), or
//! when its trace id was not seen before (a *shallow* trace `{id, timestamp, environment}`).

use std::collections::HashSet;

use serde_json::Value;

use super::context::SpanContext;
use super::facts::{SpanFacts, io_field};
use super::metadata::{self, SharedMetadata};
use super::{environment, io};
use crate::keys;
use crate::record::{EventBody, IngestionEvent, TraceBody};
use crate::time::format_iso_millis;
use crate::value::{AttrValue, json_is_meaningful};

/// A synthesized `trace-create` event.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEvent {
    /// The event (envelope timestamp = span start).
    pub event: IngestionEvent,
    /// Whether it is a shallow trace (only id, timestamp and environment).
    pub is_shallow: bool,
}

/// Attributes whose truthy presence makes a span update its trace.
const TRACE_UPDATE_KEYS: [&str; 20] = [
    keys::LANGFUSE_TRACE_NAME,
    keys::LANGFUSE_TRACE_INPUT,
    keys::LANGFUSE_TRACE_OUTPUT,
    keys::LANGFUSE_TRACE_METADATA,
    keys::USER_ID,
    keys::SESSION_ID,
    keys::LANGFUSE_TRACE_PUBLIC,
    keys::LANGFUSE_TRACE_TAGS,
    keys::LANGFUSE_USER_ID,
    keys::LANGFUSE_SESSION_ID,
    keys::LANGFUSE_OBSERVATION_METADATA_USER_ID,
    keys::LANGFUSE_OBSERVATION_METADATA_SESSION_ID,
    keys::LANGFUSE_OBSERVATION_METADATA_TAGS,
    keys::LANGFUSE_TRACE_METADATA_SESSION_ID,
    keys::LANGFUSE_TRACE_METADATA_USER_ID,
    keys::LANGFUSE_TRACE_METADATA_TAGS,
    keys::AI_TELEMETRY_METADATA_SESSION_ID,
    keys::AI_TELEMETRY_METADATA_USER_ID,
    keys::AI_TELEMETRY_METADATA_TAGS,
    keys::TAG_TAGS,
];

/// Whether the span carries trace-level attributes.
pub fn has_trace_updates(cx: &SpanContext<'_, '_>) -> bool {
    let attrs = cx.attrs();
    TRACE_UPDATE_KEYS.iter().any(|k| attrs.truthy(k).is_some())
        || attrs.has_prefix(keys::LANGFUSE_TRACE_METADATA)
}

/// The `trace-create` event a span produces, if any. `seen` holds the trace ids that already
/// got a trace (before or earlier in this batch); `repair` selects the repair-mode input/output
/// rules (see [`io::input_output`]).
pub fn trace_event(
    cx: &SpanContext<'_, '_>,
    shared: &SharedMetadata,
    facts: &SpanFacts,
    seen: &HashSet<&str>,
    repair: bool,
) -> Option<TraceEvent> {
    let is_root = cx.is_root();
    let updates = has_trace_updates(cx);
    if !is_root && !updates && seen.contains(cx.span.trace_id.as_ref()) {
        return None;
    }
    let timestamp = format_iso_millis(facts.start_ms);
    let mut body = TraceBody {
        id: Some(cx.span.trace_id.to_string()),
        timestamp: Some(timestamp.clone()),
        environment: facts.environment.clone(),
        ..TraceBody::default()
    };
    if is_root || updates {
        let attrs = cx.attrs();
        if is_root {
            let name = attrs
                .get(keys::LANGFUSE_TRACE_NAME)
                .map(|v| v.to_json_string().into_owned())
                .unwrap_or_else(|| facts.name.clone());
            body.name = Some(Some(name));
            let (input, output) = io::input_output(cx, io::IoTarget::Trace, repair);
            body.input = io_field(input);
            body.output = io_field(output);
            body.metadata = Some(Some(metadata::root_trace_metadata(cx, shared)));
        } else {
            body.name = attrs
                .get(keys::LANGFUSE_TRACE_NAME)
                .map(|v| Some(v.to_json_string().into_owned()));
            body.input = attrs
                .get(keys::LANGFUSE_TRACE_INPUT)
                .map(|v| Some(v.to_json()));
            body.output = attrs
                .get(keys::LANGFUSE_TRACE_OUTPUT)
                .map(|v| Some(v.to_json()));
            body.metadata = Some(Some(metadata::trace_update_metadata(cx, shared)));
        }
        body.version = Some(facts.version.clone());
        body.release = Some(environment::release(cx));
        body.user_id = user_id(cx).map(Some);
        body.session_id = session_id(cx).map(Some);
        body.public = public(cx).map(Some);
        body.tags = Some(Some(tags(cx)));
    }
    let is_shallow = is_shallow(&body);
    Some(TraceEvent {
        event: IngestionEvent {
            id: None,
            timestamp: Some(timestamp),
            body: EventBody::TraceCreate(body),
        },
        is_shallow,
    })
}

/// Whether a trace body is shallow: none of name, metadata, user, session, public, tags,
/// version, release, input, output has a meaningful value.
pub fn is_shallow(body: &TraceBody) -> bool {
    fn set<T>(field: &Option<Option<T>>, meaningful: impl Fn(&T) -> bool) -> bool {
        matches!(field, Some(Some(v)) if meaningful(v))
    }
    let non_empty = |s: &String| !s.is_empty();
    !(set(&body.name, non_empty)
        || set(&body.metadata, |m| !m.is_empty())
        || set(&body.user_id, non_empty)
        || set(&body.session_id, non_empty)
        || set(&body.public, |_| true)
        || set(&body.tags, |t| !t.is_empty())
        || set(&body.version, non_empty)
        || set(&body.release, non_empty)
        || set(&body.input, json_is_meaningful)
        || set(&body.output, json_is_meaningful))
}

fn first_truthy<'b, 'a>(
    cx: &SpanContext<'b, 'a>,
    candidates: &[&str],
) -> Option<&'b AttrValue<'a>> {
    candidates.iter().find_map(|k| cx.attrs().truthy(k))
}

/// User id: `langfuse.user.id`, `user.id`, then the metadata spellings of the integrations.
pub fn user_id(cx: &SpanContext<'_, '_>) -> Option<String> {
    first_truthy(
        cx,
        &[
            keys::LANGFUSE_USER_ID,
            keys::USER_ID,
            keys::LANGFUSE_OBSERVATION_METADATA_USER_ID,
            keys::LANGFUSE_TRACE_METADATA_USER_ID,
            keys::AI_TELEMETRY_METADATA_USER_ID,
        ],
    )
    .map(|v| v.to_json_string().into_owned())
}

/// Session id: `langfuse.session.id`, `session.id`, `gen_ai.conversation.id`, then the metadata
/// spellings of the integrations.
pub fn session_id(cx: &SpanContext<'_, '_>) -> Option<String> {
    first_truthy(
        cx,
        &[
            keys::LANGFUSE_SESSION_ID,
            keys::SESSION_ID,
            keys::GEN_AI_CONVERSATION_ID,
            keys::LANGFUSE_OBSERVATION_METADATA_SESSION_ID,
            keys::LANGFUSE_TRACE_METADATA_SESSION_ID,
            keys::AI_TELEMETRY_METADATA_SESSION_ID,
        ],
    )
    .map(|v| v.to_json_string().into_owned())
}

/// Public flag: `langfuse.trace.public` ?? `langfuse.public`; `true`/`"true"` is true, any other
/// present value false.
pub fn public(cx: &SpanContext<'_, '_>) -> Option<bool> {
    cx.attr(keys::LANGFUSE_TRACE_PUBLIC)
        .or_else(|| cx.attr(keys::LANGFUSE_PUBLIC))
        .map(|v| matches!(v, AttrValue::Bool(true)) || v.as_str() == Some("true"))
}

/// Tags: the first truthy of the tag attributes, as a list of strings.
pub fn tags(cx: &SpanContext<'_, '_>) -> Vec<String> {
    let value = first_truthy(
        cx,
        &[
            keys::LANGFUSE_TRACE_TAGS,
            keys::LANGFUSE_TAGS,
            keys::LANGFUSE_OBSERVATION_METADATA_TAGS,
            keys::LANGFUSE_TRACE_METADATA_TAGS,
            keys::AI_TELEMETRY_METADATA_TAGS,
            keys::TAG_TAGS,
        ],
    );
    match value {
        None => Vec::new(),
        Some(AttrValue::Array(items)) => items
            .iter()
            .map(|v| v.to_js_string().into_owned())
            .collect(),
        Some(AttrValue::Str(s)) => parse_tag_string(s),
        Some(other) => vec![other.to_js_string().into_owned()],
    }
}

fn parse_tag_string(s: &str) -> Vec<String> {
    if s.starts_with('[')
        && let Ok(Value::Array(items)) = serde_json::from_str::<Value>(s)
    {
        return items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                other => crate::value::js_json_stringify(&other),
            })
            .collect();
    }
    if s.contains(',') {
        return s.split(',').map(|t| t.trim().to_owned()).collect();
    }
    vec![s.to_owned()]
}

/// The trace-level fields one span sets itself, read with the server's precedence (what
/// Langfuse v4 stores on that span's row): trace name, user, session, tags, public, release,
/// and the span's explicit `langfuse.version` and `langfuse.environment`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct TraceLevel {
    /// `langfuse.trace.name`.
    pub name: Option<String>,
    /// The user id (`langfuse.user.id`, `user.id`, …).
    pub user_id: Option<String>,
    /// The session id (`langfuse.session.id`, `session.id`, `gen_ai.conversation.id`, …).
    pub session_id: Option<String>,
    /// Tags (empty: none).
    pub tags: Vec<String>,
    /// `langfuse.trace.public`.
    pub public: Option<bool>,
    /// `langfuse.release` of the span or its resource.
    pub release: Option<String>,
    /// `langfuse.version`.
    pub version: Option<String>,
    /// `langfuse.environment`.
    pub environment: Option<String>,
}

/// The [`TraceLevel`] of every span of `batch`, in span order.
pub fn trace_levels(batch: &crate::span::SpanBatch<'_>) -> Vec<TraceLevel> {
    let mut out = Vec::with_capacity(batch.span_count());
    for rs in &batch.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let cx = SpanContext {
                    resource: &rs.resource,
                    scope: &ss.scope,
                    span,
                };
                out.push(level_of(&cx));
            }
        }
    }
    out
}

/// The trace-level fields a span sets, from its and its resource's OTLP attributes (those that
/// cannot bear on trace-level fields are ignored, so never converted): what the bridge's
/// assembly stage needs for every span ([`crate::otlp::wire`]), at a fraction of a full
/// conversion.
pub(crate) fn trace_level_of_attributes(
    resource: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    span: &[opentelemetry_proto::tonic::common::v1::KeyValue],
) -> TraceLevel {
    use crate::otlp::proto_attrs::trace_level_attributes;
    let resource = crate::span::Resource {
        attributes: trace_level_attributes(resource),
    };
    let scope = crate::span::Scope::default();
    let span = crate::span::Span {
        attributes: trace_level_attributes(span),
        ..crate::span::Span::default()
    };
    level_of(&SpanContext {
        resource: &resource,
        scope: &scope,
        span: &span,
    })
}

fn level_of(cx: &SpanContext<'_, '_>) -> TraceLevel {
    let text = |key: &str| cx.attr(key).map(|v| v.to_json_string().into_owned());
    TraceLevel {
        name: text(keys::LANGFUSE_TRACE_NAME),
        user_id: user_id(cx),
        session_id: session_id(cx),
        tags: tags(cx),
        public: public(cx),
        release: super::environment::release(cx),
        version: text(keys::LANGFUSE_VERSION),
        environment: text(keys::LANGFUSE_ENVIRONMENT),
    }
}
