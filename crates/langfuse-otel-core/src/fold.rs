//! Langfuse's merge rules for ingestion events: the events of one id folded into the record
//! Langfuse (v3, the ingestion worker's `mergeRecords` / `overwriteObject`) stores for it.
//!
//! One implementation, used by the local trace store (which folds onto rows it read from its
//! database) and by the bridge's conversion of legacy ingestion for Langfuse v4
//! ([`crate::legacy`]), so that both agree on what a batch of events means.
//!
//! Order: `*-create` events before `*-update` events, each group in envelope-timestamp order
//! (stable: ties keep arrival order) — [`apply_order`]. Rules per field:
//!
//! | field | rule |
//! |---|---|
//! | trace `id`, `timestamp`, `environment`; observation `id`, `traceId`, `type`, `startTime`, `environment` | first value wins |
//! | any other field absent from the event | keeps the stored value |
//! | a field that is `null` | overwrites (observation `level` falls back to `DEFAULT`) |
//! | `modelParameters`, `usageDetails`, `costDetails` that are `{}` | keep the stored value |
//! | legacy `usage` (`input`, `output`, `total`, `inputCost`, …, or OpenAI's `promptTokens`, …) | read as usage and cost details first, as the server does per event |
//! | `input`, `output` | the last truthy value wins (`null`, `""`, `0`, `false` keep) |
//! | `metadata` | deep-merged (JSON merge patch) |
//! | trace `tags` | union, deduplicated, sorted |
//! | trace `public` | `public ?? false` on every trace event |
//! | score | every field of the latest event |
//!
//! Events without an id (a `trace-create` or `score-create` whose body has none) are skipped,
//! as the server skips them.
//!
//! ```
//! use langfuse_otel_core::fold::fold;
//! use langfuse_otel_core::record::IngestionEvent;
//!
//! let events: Vec<IngestionEvent> = [
//!     r#"{"type":"span-update","timestamp":"2026-01-01T00:00:02.000Z","body":{"id":"o","output":"done"}}"#,
//!     r#"{"type":"span-create","timestamp":"2026-01-01T00:00:01.000Z","body":{"id":"o","traceId":"t","name":"step","input":"q"}}"#,
//!     r#"{"type":"trace-create","timestamp":"2026-01-01T00:00:00.000Z","body":{"id":"t","name":"a","tags":["x"]}}"#,
//!     r#"{"type":"trace-create","timestamp":"2026-01-01T00:00:03.000Z","body":{"id":"t","userId":"u","tags":["b"]}}"#,
//! ]
//! .iter()
//! .map(|line| serde_json::from_str(line).unwrap())
//! .collect();
//! let folded = fold(&events);
//! let trace = folded.traces[0].1.to_body(&folded.traces[0].0);
//! assert_eq!(trace.name, Some(Some("a".into())));
//! assert_eq!(trace.user_id, Some(Some("u".into())));
//! assert_eq!(trace.tags, Some(Some(vec!["b".into(), "x".into()])));
//! let (kind, span) = folded.observations[0].1.to_body(folded.observations[0].0);
//! assert_eq!(kind.as_str(), "span");
//! assert_eq!(span.input, Some(Some("q".into())));
//! assert_eq!(span.output, Some(Some("done".into())));
//! ```

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::record::{
    EventBody, IngestionEvent, Level, Metadata, ObservationBody, ObservationType, ScoreBody,
    TraceBody,
};
use crate::time::parse_date_lenient;
use crate::value::json_is_truthy;

/// A text field borrowed from an event, or owned (read from a store, or derived).
pub type Text<'a> = Cow<'a, str>;

/// A JSON field (`input`, `output`, `metadata`) while events fold into it: values from events
/// stay borrowed and are serialized once, when the row is written; merged metadata is kept as
/// a value, so folding many events costs one parse of stored text at most.
#[derive(Debug, Clone)]
pub enum Json<'a> {
    /// JSON text as a store keeps it.
    Stored(String),
    /// A value of one event.
    Value(&'a Value),
    /// The metadata of one event.
    Metadata(&'a Metadata),
    /// Metadata merged from several sources.
    Merged(Value),
}

impl Json<'_> {
    /// The JSON text to store.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Json::Stored(text) => Cow::Borrowed(text),
            Json::Value(value) => Cow::Owned(serde_json::to_string(value).unwrap_or_default()),
            Json::Metadata(m) => Cow::Owned(serde_json::to_string(m).unwrap_or_default()),
            Json::Merged(value) => Cow::Owned(value.to_string()),
        }
    }

    /// The value (parsing stored text; unparseable text counts as `null`).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Stored(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            Json::Value(value) => (*value).clone(),
            Json::Metadata(m) => m.to_value(),
            Json::Merged(value) => value.clone(),
        }
    }

    fn into_value(self) -> Value {
        match self {
            Json::Merged(value) => value,
            other => other.to_value(),
        }
    }
}

/// The text of an optional JSON field.
pub fn json_text<'j>(column: &'j Option<Json<'_>>) -> Option<Cow<'j, str>> {
    column.as_ref().map(Json::text)
}

/// The environment of a record that names none.
pub const DEFAULT_ENVIRONMENT: &str = "default";

/// The fields of a trace, folded from its `trace-create` events.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // one field per trace field of the record model
pub struct TraceRow<'a> {
    pub timestamp: Option<Text<'a>>,
    /// `timestamp` in Unix milliseconds.
    pub ts_ms: Option<i64>,
    pub name: Option<Text<'a>>,
    pub user_id: Option<Text<'a>>,
    pub session_id: Option<Text<'a>>,
    pub environment: Text<'a>,
    pub release: Option<Text<'a>>,
    pub version: Option<Text<'a>>,
    pub public: bool,
    /// Sorted, without duplicates.
    pub tags: Vec<Text<'a>>,
    pub input: Option<Json<'a>>,
    pub output: Option<Json<'a>>,
    pub metadata: Option<Json<'a>>,
}

impl Default for TraceRow<'_> {
    fn default() -> Self {
        TraceRow {
            timestamp: None,
            ts_ms: None,
            name: None,
            user_id: None,
            session_id: None,
            environment: Cow::Borrowed(DEFAULT_ENVIRONMENT),
            release: None,
            version: None,
            public: false,
            tags: Vec::new(),
            input: None,
            output: None,
            metadata: None,
        }
    }
}

impl<'a> TraceRow<'a> {
    /// Applies one `trace-create` event (`envelope_ts`: the event's own timestamp).
    pub fn apply(&mut self, body: &'a TraceBody, envelope_ts: Option<&'a str>) {
        let timestamp = body.timestamp.as_deref().or(envelope_ts);
        // The environment is taken until the trace has a timestamp (first value wins).
        if self.timestamp.is_none() {
            self.environment = Cow::Borrowed(&body.environment);
            self.timestamp = timestamp.map(Cow::Borrowed);
        }
        if self.ts_ms.is_none() {
            self.ts_ms = timestamp.and_then(parse_date_lenient);
        }
        set_text(&mut self.name, &body.name);
        set_text(&mut self.user_id, &body.user_id);
        set_text(&mut self.session_id, &body.session_id);
        set_text(&mut self.release, &body.release);
        set_text(&mut self.version, &body.version);
        self.public = body.public.flatten().unwrap_or(false);
        if let Some(Some(tags)) = &body.tags {
            for tag in tags {
                if let Err(at) = self.tags.binary_search_by(|t| t.as_ref().cmp(tag.as_str())) {
                    self.tags.insert(at, Cow::Borrowed(tag));
                }
            }
        }
        set_truthy_json(&mut self.input, &body.input);
        set_truthy_json(&mut self.output, &body.output);
        merge_metadata(&mut self.metadata, &body.metadata);
    }

    /// The tags as a JSON array text.
    pub fn tags_json(&self) -> String {
        serde_json::to_string(&self.tags).unwrap_or_else(|_| "[]".to_owned())
    }

    /// The folded trace as a `trace-create` body: every field it has, `public` always.
    pub fn to_body(&self, id: &str) -> TraceBody {
        let text = |t: &Option<Text<'_>>| t.as_ref().map(|t| Some(t.to_string()));
        TraceBody {
            id: Some(id.to_owned()),
            timestamp: self.timestamp.as_ref().map(|t| t.to_string()),
            name: text(&self.name),
            input: self.input.as_ref().map(|j| Some(j.to_value())),
            output: self.output.as_ref().map(|j| Some(j.to_value())),
            session_id: text(&self.session_id),
            user_id: text(&self.user_id),
            environment: self.environment.to_string(),
            metadata: self.metadata.as_ref().map(|j| match j.to_value() {
                Value::Object(map) => Some(Metadata::from_map(map)),
                _ => None,
            }),
            release: text(&self.release),
            version: text(&self.version),
            public: Some(Some(self.public)),
            tags: (!self.tags.is_empty())
                .then(|| Some(self.tags.iter().map(|t| t.to_string()).collect())),
        }
    }
}

/// The fields of an observation, folded from its events.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // one field per observation field of the record model
pub struct ObservationRow<'a> {
    pub trace_id: Option<Text<'a>>,
    /// The type name of the first event (`"generation"`).
    pub kind: Text<'a>,
    pub name: Option<Text<'a>>,
    pub start_time: Option<Text<'a>>,
    /// `start_time` in Unix milliseconds.
    pub start_ms: Option<i64>,
    pub end_time: Option<Text<'a>>,
    /// `end_time` in Unix milliseconds.
    pub end_ms: Option<i64>,
    pub completion_start_time: Option<Text<'a>>,
    pub parent_observation_id: Option<Text<'a>>,
    pub level: Text<'a>,
    pub status_message: Option<Text<'a>>,
    pub version: Option<Text<'a>>,
    pub environment: Text<'a>,
    pub model: Option<Text<'a>>,
    pub model_parameters: Option<Cow<'a, Map<String, Value>>>,
    pub usage_details: Option<Cow<'a, Map<String, Value>>>,
    pub cost_details: Option<Cow<'a, Map<String, Value>>>,
    pub prompt_name: Option<Text<'a>>,
    pub prompt_version: Option<i64>,
    pub input: Option<Json<'a>>,
    pub output: Option<Json<'a>>,
    pub metadata: Option<Json<'a>>,
}

/// What one event changed that a store derives other fields from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// The event set (or cleared) the cost details.
    pub cost_details: bool,
}

impl<'a> ObservationRow<'a> {
    /// The row an observation starts from: its first event's type, nothing else.
    pub fn new(kind: &'a str) -> Self {
        ObservationRow {
            trace_id: None,
            kind: Cow::Borrowed(kind),
            name: None,
            start_time: None,
            start_ms: None,
            end_time: None,
            end_ms: None,
            completion_start_time: None,
            parent_observation_id: None,
            level: Cow::Borrowed(Level::Default.as_str()),
            status_message: None,
            version: None,
            environment: Cow::Borrowed(DEFAULT_ENVIRONMENT),
            model: None,
            model_parameters: None,
            usage_details: None,
            cost_details: None,
            prompt_name: None,
            prompt_version: None,
            input: None,
            output: None,
            metadata: None,
        }
    }

    /// Applies one observation event to a row (`first`: the row is new and this is its first
    /// event, which sets the first-value-wins fields).
    pub fn apply(
        &mut self,
        body: &'a ObservationBody,
        envelope_ts: Option<&'a str>,
        first: bool,
    ) -> Applied {
        if first {
            self.environment = Cow::Borrowed(&body.environment);
        }
        if self.trace_id.is_none() {
            self.trace_id = body
                .trace_id
                .as_ref()
                .and_then(|t| t.as_deref())
                .map(Cow::Borrowed);
        }
        let start = body
            .start_time
            .as_ref()
            .and_then(|s| s.as_deref())
            .or(envelope_ts);
        if self.start_time.is_none() {
            self.start_time = start.map(Cow::Borrowed);
        }
        if self.start_ms.is_none() {
            self.start_ms = start.and_then(parse_date_lenient);
        }
        set_text(&mut self.name, &body.name);
        if let Some(end) = &body.end_time {
            self.end_time = end.as_deref().map(Cow::Borrowed);
            self.end_ms = end.as_deref().and_then(parse_date_lenient);
        }
        set_text(&mut self.completion_start_time, &body.completion_start_time);
        set_text(&mut self.parent_observation_id, &body.parent_observation_id);
        if let Some(level) = &body.level {
            self.level = Cow::Borrowed(level.unwrap_or(Level::Default).as_str());
        }
        set_text(&mut self.status_message, &body.status_message);
        set_text(&mut self.version, &body.version);
        set_text(&mut self.model, &body.model);
        set_object(&mut self.model_parameters, &body.model_parameters);
        let mut applied = Applied::default();
        match &body.usage {
            // The legacy usage object: the server reads it as usage and cost details of this
            // event before merging.
            Some(Some(Value::Object(usage))) => {
                let (usage_details, cost_details) = legacy_usage(usage, body);
                set_owned_object(&mut self.usage_details, usage_details);
                applied.cost_details = set_owned_object(&mut self.cost_details, cost_details);
            }
            _ => {
                set_object(&mut self.usage_details, &body.usage_details);
                applied.cost_details = set_object(&mut self.cost_details, &body.cost_details);
            }
        }
        set_text(&mut self.prompt_name, &body.prompt_name);
        if let Some(v) = &body.prompt_version {
            self.prompt_version = *v;
        }
        set_truthy_json(&mut self.input, &body.input);
        set_truthy_json(&mut self.output, &body.output);
        merge_metadata(&mut self.metadata, &body.metadata);
        applied
    }

    /// The observation type of the row (`span` for a name this model does not know).
    pub fn observation_type(&self) -> ObservationType {
        self.kind.parse().unwrap_or_default()
    }

    /// The folded observation as a `<type>-create` body: every field it has (`level` always).
    pub fn to_body(&self, id: &str) -> (ObservationType, ObservationBody) {
        let text = |t: &Option<Text<'_>>| t.as_ref().map(|t| Some(t.to_string()));
        let object =
            |m: &Option<Cow<'_, Map<String, Value>>>| m.as_ref().map(|m| Some(m.as_ref().clone()));
        let level = match self.level.as_ref() {
            "DEBUG" => Level::Debug,
            "WARNING" => Level::Warning,
            "ERROR" => Level::Error,
            _ => Level::Default,
        };
        let body = ObservationBody {
            id: id.to_owned(),
            trace_id: text(&self.trace_id),
            name: text(&self.name),
            start_time: text(&self.start_time),
            end_time: text(&self.end_time),
            metadata: self.metadata.as_ref().map(|j| match j.to_value() {
                Value::Object(map) => Some(Metadata::from_map(map)),
                _ => None,
            }),
            input: self.input.as_ref().map(|j| Some(j.to_value())),
            output: self.output.as_ref().map(|j| Some(j.to_value())),
            level: Some(Some(level)),
            status_message: text(&self.status_message),
            parent_observation_id: text(&self.parent_observation_id),
            version: text(&self.version),
            environment: self.environment.to_string(),
            completion_start_time: text(&self.completion_start_time),
            model: text(&self.model),
            model_parameters: object(&self.model_parameters),
            usage: None,
            usage_details: object(&self.usage_details),
            cost_details: object(&self.cost_details),
            prompt_name: text(&self.prompt_name),
            prompt_version: self.prompt_version.map(Some),
        };
        (self.observation_type(), body)
    }
}

/// The server's reading of a legacy `usage` object (with the event's own `usageDetails` and
/// `costDetails` on top): `(usage details, cost details)`.
fn legacy_usage(
    usage: &Map<String, Value>,
    body: &ObservationBody,
) -> (Map<String, Value>, Map<String, Value>) {
    let number = |key: &str| usage.get(key).and_then(Value::as_f64);
    // OpenAI's names replace the whole object (and carry no costs).
    let openai = ["promptTokens", "completionTokens", "totalTokens"]
        .iter()
        .any(|k| usage.contains_key(*k));
    let (input, output, total, costs) = if openai {
        (
            number("promptTokens"),
            number("completionTokens"),
            number("totalTokens"),
            [None, None, None],
        )
    } else {
        (
            number("input"),
            number("output"),
            number("total"),
            [
                number("inputCost"),
                number("outputCost"),
                number("totalCost"),
            ],
        )
    };
    let details_empty = !matches!(&body.usage_details, Some(Some(d)) if !d.is_empty());
    // `usage.total || (no usageDetails ? (input && output ? input + output : input ?? output) : undefined)`
    let truthy = |n: Option<f64>| n.filter(|n| *n != 0.0 && !n.is_nan());
    let total = truthy(total).or_else(|| {
        if !details_empty {
            return None;
        }
        match (truthy(input), truthy(output)) {
            (Some(i), Some(o)) => Some(i + o),
            _ => input.or(output),
        }
    });
    let mut usage_details = Map::new();
    for (key, value) in [("input", input), ("output", output), ("total", total)] {
        if let Some(n) = value {
            usage_details.insert(key.to_owned(), crate::value::js_number(n));
        }
    }
    if let Some(Some(details)) = &body.usage_details {
        for (k, v) in details.iter().filter(|(_, v)| !v.is_null()) {
            usage_details.insert(k.clone(), v.clone());
        }
    }
    let mut cost_details = Map::new();
    for (key, value) in ["input", "output", "total"].into_iter().zip(costs) {
        if let Some(n) = value {
            cost_details.insert(key.to_owned(), crate::value::js_number(n));
        }
    }
    if let Some(Some(details)) = &body.cost_details {
        for (k, v) in details.iter().filter(|(_, v)| !v.is_null()) {
            cost_details.insert(k.clone(), v.clone());
        }
    }
    (usage_details, cost_details)
}

/// A nullable text field: absent keeps, `null` clears, a value replaces.
fn set_text<'a>(slot: &mut Option<Text<'a>>, value: &'a Option<Option<String>>) {
    if let Some(v) = value {
        *slot = v.as_deref().map(Cow::Borrowed);
    }
}

/// An object field: absent or `{}` keeps, `null` clears, an object replaces. Whether it was set.
fn set_object<'a>(
    slot: &mut Option<Cow<'a, Map<String, Value>>>,
    value: &'a Option<Option<Map<String, Value>>>,
) -> bool {
    match value {
        Some(Some(map)) if map.is_empty() => false,
        Some(v) => {
            *slot = v.as_ref().map(Cow::Borrowed);
            true
        }
        None => false,
    }
}

/// A derived object: `{}` keeps, an object replaces. Whether it was set.
fn set_owned_object(
    slot: &mut Option<Cow<'_, Map<String, Value>>>,
    map: Map<String, Value>,
) -> bool {
    if map.is_empty() {
        return false;
    }
    *slot = Some(Cow::Owned(map));
    true
}

/// `input`/`output`: the last truthy value wins.
fn set_truthy_json<'a>(slot: &mut Option<Json<'a>>, value: &'a Option<Option<Value>>) {
    if let Some(Some(v)) = value
        && json_is_truthy(v)
    {
        *slot = Some(Json::Value(v));
    }
}

/// Metadata: the first non-empty object is stored as it is; later ones are merged into it as
/// JSON merge patches (RFC 7396: objects merge key by key, `null` removes a key).
fn merge_metadata<'a>(slot: &mut Option<Json<'a>>, value: &'a Option<Option<Metadata>>) {
    let Some(Some(metadata)) = value else { return };
    if metadata.is_empty() {
        return;
    }
    *slot = Some(match slot.take() {
        None => Json::Metadata(metadata),
        Some(stored) => {
            let mut target = stored.into_value();
            merge_patch(&mut target, metadata.to_value());
            Json::Merged(target)
        }
    });
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            target.shift_remove(&key);
        } else {
            merge_patch(target.entry(key).or_insert(Value::Null), value);
        }
    }
}

/// Whether an event is an update (`span-update`, `generation-update`), applied after creates.
pub fn is_update(event: &IngestionEvent) -> bool {
    matches!(
        event.body,
        EventBody::SpanUpdate(_) | EventBody::GenerationUpdate(_)
    )
}

/// The events in the order Langfuse applies them: creates before updates, each group in
/// envelope-timestamp order (stable: ties keep the given order).
pub fn apply_order<'e>(
    events: impl IntoIterator<Item = &'e IngestionEvent>,
) -> Vec<&'e IngestionEvent> {
    let mut order: Vec<&IngestionEvent> = events.into_iter().collect();
    order.sort_by_key(|e| (is_update(e), e.timestamp.as_deref().unwrap_or("")));
    order
}

/// The type and body of an observation event, when it is one.
pub fn observation_event(event: &IngestionEvent) -> Option<(ObservationType, &ObservationBody)> {
    match &event.body {
        EventBody::ObservationCreate(kind, body) => Some((*kind, body)),
        EventBody::SpanUpdate(body) => Some((ObservationType::Span, body)),
        EventBody::GenerationUpdate(body) => Some((ObservationType::Generation, body)),
        _ => None,
    }
}

/// Events folded per id (see the [module docs](self)).
#[derive(Debug, Clone, Default)]
pub struct Folded<'a> {
    /// Each trace with its folded fields, in the order the events first name it.
    pub traces: Vec<(Text<'a>, TraceRow<'a>)>,
    /// Each observation with its folded fields, in the order the events first name it.
    pub observations: Vec<(&'a str, ObservationRow<'a>)>,
    /// The latest `score-create` body of each score id, in the order first named.
    pub scores: Vec<&'a ScoreBody>,
    /// Events skipped: without an id, or of a type without a record here.
    pub skipped: usize,
}

/// Folds events into one record per id, with the rules of the [module docs](self).
pub fn fold<'a>(events: impl IntoIterator<Item = &'a IngestionEvent>) -> Folded<'a> {
    let mut folded = Folded::default();
    let mut trace_index: HashMap<&'a str, usize> = HashMap::new();
    let mut observation_index: HashMap<&'a str, usize> = HashMap::new();
    let mut score_index: HashMap<&'a str, usize> = HashMap::new();
    for event in apply_order(events) {
        let envelope_ts = event.timestamp.as_deref();
        match &event.body {
            EventBody::TraceCreate(body) => {
                let Some(id) = body.id.as_deref() else {
                    folded.skipped += 1;
                    continue;
                };
                let next = folded.traces.len();
                let at = *trace_index.entry(id).or_insert(next);
                if at == next {
                    folded.traces.push((Cow::Borrowed(id), TraceRow::default()));
                }
                folded.traces[at].1.apply(body, envelope_ts);
            }
            EventBody::ScoreCreate(body) => {
                let Some(id) = body.id.as_deref() else {
                    folded.skipped += 1;
                    continue;
                };
                match score_index.get(id) {
                    Some(&at) => folded.scores[at] = body,
                    None => {
                        score_index.insert(id, folded.scores.len());
                        folded.scores.push(body);
                    }
                }
            }
            _ => {
                let Some((kind, body)) = observation_event(event) else {
                    folded.skipped += 1;
                    continue;
                };
                let next = folded.observations.len();
                let at = *observation_index.entry(&body.id).or_insert(next);
                let first = at == next;
                if first {
                    folded
                        .observations
                        .push((&body.id, ObservationRow::new(kind.as_str())));
                }
                folded.observations[at].1.apply(body, envelope_ts, first);
            }
        }
    }
    folded
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obs(v: Value) -> ObservationBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn truthiness_follows_javascript() {
        for v in [json!(null), json!(""), json!(0), json!(false)] {
            assert!(!json_is_truthy(&v), "{v}");
        }
        for v in [json!("a"), json!(1), json!(true), json!([]), json!({})] {
            assert!(json_is_truthy(&v), "{v}");
        }
    }

    #[test]
    fn merge_patch_merges_objects_and_removes_null_keys() {
        let mut target = json!({"a": {"x": 1, "y": 2}, "b": 1, "c": [1]});
        merge_patch(
            &mut target,
            json!({"a": {"y": null, "z": 3}, "b": null, "c": {"k": null, "v": 1}, "d": 4}),
        );
        assert_eq!(
            target,
            json!({"a": {"x": 1, "z": 3}, "c": {"v": 1}, "d": 4})
        );
    }

    #[test]
    fn an_observation_folds_its_events_first_value_wins_and_truthy_io() {
        let create = obs(
            json!({"id": "o", "traceId": "t", "startTime": "2026-01-01T00:00:00Z",
            "name": "a", "level": "WARNING", "input": "q", "usageDetails": {"input": 1000}}),
        );
        let update = obs(
            json!({"id": "o", "traceId": "other", "startTime": "2026-01-02T00:00:00Z",
            "endTime": "2026-01-01T00:00:02Z", "level": null, "input": "", "output": {"a": 1},
            "usageDetails": {}}),
        );
        let mut row = ObservationRow::new("generation");
        row.apply(&create, None, true);
        row.apply(&update, None, false);
        assert_eq!(row.trace_id.as_deref(), Some("t"), "trace id: first wins");
        assert_eq!(row.start_ms, Some(1_767_225_600_000), "start: first wins");
        assert_eq!(row.end_ms, Some(1_767_225_602_000));
        assert_eq!(row.level, "DEFAULT", "a null level falls back to DEFAULT");
        assert_eq!(json_text(&row.input).as_deref(), Some("\"q\""));
        assert_eq!(json_text(&row.output).as_deref(), Some("{\"a\":1}"));
        assert_eq!(
            row.usage_details.as_deref(),
            create.usage_details.as_ref().and_then(Option::as_ref),
            "{{}} keeps usage"
        );
    }

    #[test]
    fn legacy_usage_reads_as_usage_and_cost_details_like_the_server() {
        let body = obs(
            json!({"id": "o", "usage": {"input": 10, "output": 5, "unit": "TOKENS",
            "inputCost": 0.1, "totalCost": 0.3}}),
        );
        let mut row = ObservationRow::new("generation");
        let applied = row.apply(&body, None, true);
        assert!(applied.cost_details);
        assert_eq!(
            row.usage_details.as_deref(),
            json!({"input": 10, "output": 5, "total": 15}).as_object()
        );
        assert_eq!(
            row.cost_details.as_deref(),
            json!({"input": 0.1, "total": 0.3}).as_object()
        );
        // OpenAI names; explicit details win per key; a given total is kept.
        let body = obs(
            json!({"id": "o", "usage": {"promptTokens": 7, "completionTokens": 2,
            "totalTokens": 11}, "usageDetails": {"output": 3, "cache": 1}}),
        );
        let mut row = ObservationRow::new("generation");
        row.apply(&body, None, true);
        assert_eq!(
            row.usage_details.as_deref(),
            json!({"input": 7, "output": 3, "total": 11, "cache": 1}).as_object()
        );
        assert_eq!(row.cost_details, None);
    }

    #[test]
    fn fold_orders_creates_before_updates_and_groups_per_id() {
        let events: Vec<IngestionEvent> = [
            json!({"type": "generation-update", "timestamp": "2026-01-01T00:00:00.000Z",
                "body": {"id": "g", "output": "late", "level": "ERROR"}}),
            json!({"type": "generation-create", "timestamp": "2026-01-01T00:00:05.000Z",
                "body": {"id": "g", "traceId": "t", "output": "early", "level": "DEBUG"}}),
            json!({"type": "score-create", "body": {"id": "s", "name": "a", "value": 1}}),
            json!({"type": "score-create", "body": {"id": "s", "name": "a", "value": 2}}),
            json!({"type": "trace-create", "body": {"name": "no id"}}),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
        let folded = fold(&events);
        assert_eq!(folded.observations.len(), 1);
        let (kind, body) = folded.observations[0].1.to_body("g");
        assert_eq!(kind, ObservationType::Generation);
        assert_eq!(
            body.output,
            Some(Some(json!("late"))),
            "the update applies last"
        );
        assert_eq!(body.level, Some(Some(Level::Error)));
        assert_eq!(folded.scores.len(), 1);
        assert_eq!(
            folded.scores[0].value,
            json!(2),
            "a score is its latest event"
        );
        assert_eq!(folded.skipped, 1);
        assert!(folded.traces.is_empty());
    }
}
