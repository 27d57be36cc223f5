//! The merge rules, as pure functions on in-memory rows (no SQLite here).
//!
//! A row is folded from the events of one id in the order the batch applies them, starting
//! either from an empty row (an id the store has not seen) or from the stored row. Text that
//! comes from an event is borrowed from it; JSON-valued columns hold the text that is stored.

use std::borrow::Cow;

use langfuse_otel_core::record::{Level, Metadata, ObservationBody, TraceBody};
use langfuse_otel_core::time::parse_date_lenient;
use langfuse_otel_core::value::json_is_truthy;
use serde_json::{Map, Value};

use crate::price;
use crate::query::stored_level_rank;

/// A text column borrowed from an event or owned after a read from the store.
pub(super) type Text<'a> = Cow<'a, str>;

/// A JSON column (`input`, `output`, `metadata`) while a batch folds into it: values from
/// events stay borrowed and are serialized once, when the row is written; merged metadata is
/// kept as a value, so folding many events costs one parse of the stored text at most.
#[derive(Debug, Clone)]
pub(super) enum Json<'a> {
    /// JSON text as stored.
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
    fn into_value(self) -> Value {
        match self {
            Json::Stored(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
            Json::Value(value) => value.clone(),
            Json::Metadata(m) => m.to_value(),
            Json::Merged(value) => value,
        }
    }
}

/// The text of an optional JSON column.
pub(super) fn json_text<'j>(column: &'j Option<Json<'_>>) -> Option<Cow<'j, str>> {
    column.as_ref().map(Json::text)
}

/// The stored fields of a trace (everything but the roll-ups).
#[derive(Debug, Clone)]
pub(super) struct TraceRow<'a> {
    pub timestamp: Option<Text<'a>>,
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

const DEFAULT_ENVIRONMENT: &str = "default";

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

    /// The tags as the JSON array stored in the `tags` column.
    pub fn tags_json(&self) -> String {
        serde_json::to_string(&self.tags).unwrap_or_else(|_| "[]".to_owned())
    }
}

/// The stored fields of an observation, including the ones derived from usage and cost.
#[derive(Debug, Clone)]
pub(super) struct ObservationRow<'a> {
    pub trace_id: Option<Text<'a>>,
    pub kind: Text<'a>,
    pub name: Option<Text<'a>>,
    pub start_time: Option<Text<'a>>,
    pub start_ms: Option<i64>,
    pub end_time: Option<Text<'a>>,
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
    /// Whether `cost_details` is an estimate from the price table.
    pub cost_estimated: bool,
    pub prompt_name: Option<Text<'a>>,
    pub prompt_version: Option<i64>,
    pub input: Option<Json<'a>>,
    pub output: Option<Json<'a>>,
    pub metadata: Option<Json<'a>>,
    /// Derived by [`ObservationRow::derive`].
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub total_tokens: i64,
    pub total_cost: Option<f64>,
}

impl<'a> ObservationRow<'a> {
    /// The row an observation starts from: its first event's type, nothing else.
    pub fn new(kind: &'static str) -> Self {
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
            cost_estimated: false,
            prompt_name: None,
            prompt_version: None,
            input: None,
            output: None,
            metadata: None,
            input_tokens: 0,
            output_tokens: 0,
            total_tokens: 0,
            total_cost: None,
        }
    }

    /// Applies one observation event to a row (`first`: the row is new and this is its first
    /// event, which sets the first-value-wins fields).
    pub fn apply(&mut self, body: &'a ObservationBody, envelope_ts: Option<&'a str>, first: bool) {
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
        set_object(&mut self.usage_details, &body.usage_details);
        if set_object(&mut self.cost_details, &body.cost_details) {
            self.cost_estimated = false;
        }
        set_text(&mut self.prompt_name, &body.prompt_name);
        if let Some(v) = &body.prompt_version {
            self.prompt_version = *v;
        }
        set_truthy_json(&mut self.input, &body.input);
        set_truthy_json(&mut self.output, &body.output);
        merge_metadata(&mut self.metadata, &body.metadata);
    }

    /// Recomputes the token totals and the total cost; a row without a given cost gets an
    /// estimate from the price table (or none, when the model or usage is unknown).
    pub fn derive(&mut self) {
        if self.cost_details.is_none() || self.cost_estimated {
            let estimate = match (&self.model, &self.usage_details) {
                (Some(model), Some(usage)) => price::estimate_cost(model, usage),
                _ => None,
            };
            self.cost_estimated = estimate.is_some();
            self.cost_details = estimate.map(Cow::Owned);
        }
        (self.input_tokens, self.output_tokens, self.total_tokens) =
            self.usage_details.as_deref().map_or((0, 0, 0), tokens);
        self.total_cost = self.cost_details.as_deref().and_then(total_of);
    }
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
pub(super) fn merge_patch(target: &mut Value, patch: Value) {
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

/// (input, output, total) tokens: `total` when given, else the sum of all kinds.
pub(super) fn tokens(usage: &Map<String, Value>) -> (i64, i64, i64) {
    let mut input = 0i64;
    let mut output = 0i64;
    let mut sum = 0i64;
    for (key, value) in usage {
        let Some(n) = value.as_i64() else { continue };
        if key == "total" {
            continue;
        }
        sum = sum.saturating_add(n);
        if key.starts_with("input") || key.starts_with("prompt") {
            input = input.saturating_add(n);
        } else if key.starts_with("output") || key.starts_with("completion") {
            output = output.saturating_add(n);
        }
    }
    let total = usage.get("total").and_then(Value::as_i64).unwrap_or(sum);
    (input, output, total)
}

/// `total` when given, else the sum of all cost kinds.
fn total_of(cost: &Map<String, Value>) -> Option<f64> {
    if let Some(t) = cost.get("total").and_then(Value::as_f64) {
        return Some(t);
    }
    let mut sum = Sum::default();
    for v in cost.values().filter_map(Value::as_f64) {
        sum.add(v);
    }
    sum.value()
}

/// A floating-point sum that, like SQLite's `sum()`, is `None` over no values and uses
/// Kahan–Babuška–Neumaier compensation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Sum {
    sum: f64,
    compensation: f64,
    any: bool,
}

impl Sum {
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
        self.any = true;
    }

    pub fn value(&self) -> Option<f64> {
        self.any.then_some(self.sum + self.compensation)
    }
}

/// A trace's roll-ups over its observations (the `traces` columns after `metadata`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct RollUp {
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub observations: i64,
    pub generations: i64,
    pub errors: i64,
    pub warnings: i64,
    /// The worst level's rank; `None` without observations (stored as `DEFAULT`'s rank).
    pub max_level: Option<i64>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub total_tokens: i64,
    pub cost: Sum,
    pub cost_estimated: bool,
}

impl RollUp {
    /// Counts one observation in.
    pub fn add(&mut self, row: &ObservationRow<'_>) {
        if let Some(start) = row.start_ms {
            let end = row.end_ms.map_or(start, |e| e.max(start));
            self.start_ms = Some(self.start_ms.map_or(start, |s| s.min(start)));
            self.end_ms = Some(self.end_ms.map_or(end, |e| e.max(end)));
        }
        self.observations += 1;
        self.generations += i64::from(!matches!(row.kind.as_ref(), "span" | "event"));
        self.errors += i64::from(row.level == "ERROR");
        self.warnings += i64::from(row.level == "WARNING");
        let rank = stored_level_rank(&row.level);
        self.max_level = Some(self.max_level.map_or(rank, |m| m.max(rank)));
        self.input_tokens = self.input_tokens.saturating_add(row.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(row.output_tokens);
        self.total_tokens = self.total_tokens.saturating_add(row.total_tokens);
        if let Some(cost) = row.total_cost {
            self.cost.add(cost);
            self.cost_estimated |= row.cost_estimated;
        }
    }

    /// Adds the roll-ups of other observations of the same trace.
    pub fn merge(&mut self, other: &RollUp) {
        let min = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let max = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.start_ms = min(self.start_ms, other.start_ms);
        self.end_ms = max(self.end_ms, other.end_ms);
        self.observations += other.observations;
        self.generations += other.generations;
        self.errors += other.errors;
        self.warnings += other.warnings;
        self.max_level = max(self.max_level, other.max_level);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.total_tokens = self.total_tokens.saturating_add(other.total_tokens);
        if let Some(cost) = other.cost.value() {
            self.cost.add(cost);
        }
        self.cost_estimated |= other.cost_estimated;
    }

    /// `end - start`, when both are known.
    pub fn latency_ms(&self) -> Option<i64> {
        Some(self.end_ms?.saturating_sub(self.start_ms?))
    }

    /// The stored worst-level rank (`DEFAULT` without observations).
    pub fn max_level_rank(&self) -> i64 {
        self.max_level.unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obs(v: Value) -> ObservationBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn usage_total_wins_over_the_sum_of_kinds() {
        let u = json!({"input": 10, "output": 5, "total": 20});
        assert_eq!(tokens(u.as_object().unwrap()), (10, 5, 20));
        let u = json!({"input": 10, "input_cached_tokens": 3, "output": 5});
        assert_eq!(tokens(u.as_object().unwrap()), (13, 5, 18));
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
    fn an_observation_folds_its_events_like_the_store_applies_them() {
        let create = obs(
            json!({"id": "o", "traceId": "t", "startTime": "2026-01-01T00:00:00Z",
            "name": "a", "level": "WARNING", "input": "q", "model": "gpt-4o-mini",
            "usageDetails": {"input": 1000, "output": 100}}),
        );
        let update = obs(
            json!({"id": "o", "traceId": "other", "startTime": "2026-01-02T00:00:00Z",
            "endTime": "2026-01-01T00:00:02Z", "level": null, "input": "", "output": {"a": 1},
            "usageDetails": {}}),
        );
        let mut row = ObservationRow::new("generation");
        row.apply(&create, None, true);
        row.apply(&update, None, false);
        row.derive();
        assert_eq!(row.trace_id.as_deref(), Some("t"), "trace id: first wins");
        assert_eq!(row.start_ms, Some(1_767_225_600_000), "start: first wins");
        assert_eq!(row.end_ms, Some(1_767_225_602_000));
        assert_eq!(row.level, "DEFAULT", "a null level falls back to DEFAULT");
        assert_eq!(
            json_text(&row.input).as_deref(),
            Some("\"q\""),
            "a falsy input keeps"
        );
        assert_eq!(json_text(&row.output).as_deref(), Some("{\"a\":1}"));
        assert_eq!(
            (row.input_tokens, row.output_tokens),
            (1000, 100),
            "{{}} keeps usage"
        );
        assert!(row.cost_estimated && row.total_cost.is_some());
    }

    #[test]
    fn roll_ups_merge_like_one_aggregate() {
        let mut a = ObservationRow::new("span");
        a.start_ms = Some(10);
        a.end_ms = Some(20);
        let mut b = ObservationRow::new("generation");
        b.start_ms = Some(5);
        b.level = Cow::Borrowed("ERROR");
        b.total_cost = Some(0.5);
        b.cost_estimated = true;
        let mut one = RollUp::default();
        one.add(&a);
        one.add(&b);
        let (mut left, mut right) = (RollUp::default(), RollUp::default());
        left.add(&a);
        right.add(&b);
        left.merge(&right);
        assert_eq!(left, one);
        assert_eq!(one.latency_ms(), Some(15));
        assert_eq!((one.observations, one.generations, one.errors), (2, 1, 1));
        assert_eq!(one.max_level_rank(), 3);
        assert_eq!(one.cost.value(), Some(0.5));
        assert_eq!(RollUp::default().max_level_rank(), 1);
    }
}
