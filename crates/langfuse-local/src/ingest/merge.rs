//! The store's side of the merge: the rules themselves are core's
//! ([`langfuse_otel_core::fold`], shared with the bridge's legacy conversion); here the
//! fields the store derives from a folded observation (token totals, total cost, an estimated
//! cost from the price table) and a trace's roll-ups.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};

use langfuse_otel_core::fold;
use langfuse_otel_core::record::ObservationBody;
use serde_json::{Map, Value};

use crate::price;
use crate::query::stored_level_rank;

pub(super) use langfuse_otel_core::fold::{Json, Text, TraceRow, json_text};

/// The stored fields of an observation: the folded record fields (core's row, reached through
/// `Deref`) and the ones the store derives from usage and cost.
#[derive(Debug, Clone)]
pub(super) struct ObservationRow<'a> {
    pub fields: fold::ObservationRow<'a>,
    /// Whether `cost_details` is an estimate from the price table.
    pub cost_estimated: bool,
    /// Derived by [`ObservationRow::derive`].
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub total_tokens: i64,
    pub total_cost: Option<f64>,
}

impl<'a> Deref for ObservationRow<'a> {
    type Target = fold::ObservationRow<'a>;

    fn deref(&self) -> &Self::Target {
        &self.fields
    }
}

impl DerefMut for ObservationRow<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.fields
    }
}

impl<'a> ObservationRow<'a> {
    /// The row an observation starts from: its first event's type, nothing else.
    pub fn new(kind: &'static str) -> Self {
        ObservationRow {
            fields: fold::ObservationRow::new(kind),
            cost_estimated: false,
            input_tokens: 0,
            output_tokens: 0,
            total_tokens: 0,
            total_cost: None,
        }
    }

    /// Applies one observation event (core's rules); a given cost replaces an estimate.
    pub fn apply(&mut self, body: &'a ObservationBody, envelope_ts: Option<&'a str>, first: bool) {
        if self.fields.apply(body, envelope_ts, first).cost_details {
            self.cost_estimated = false;
        }
    }

    /// Recomputes the token totals and the total cost; a row without a given cost gets an
    /// estimate from the price table (or none, when the model or usage is unknown).
    pub fn derive(&mut self) {
        if self.fields.cost_details.is_none() || self.cost_estimated {
            let estimate = match (&self.fields.model, &self.fields.usage_details) {
                (Some(model), Some(usage)) => price::estimate_cost(model, usage),
                _ => None,
            };
            self.cost_estimated = estimate.is_some();
            self.fields.cost_details = estimate.map(Cow::Owned);
        }
        (self.input_tokens, self.output_tokens, self.total_tokens) = self
            .fields
            .usage_details
            .as_deref()
            .map_or((0, 0, 0), tokens);
        self.total_cost = self.fields.cost_details.as_deref().and_then(total_of);
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
