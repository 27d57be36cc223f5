//! Writing ingestion events: idempotent upserts that merge like Langfuse's ingestion worker.
//!
//! A batch is one transaction. Within it, `*-create` events are applied before `*-update`
//! events, each group in envelope-timestamp order (as the server sorts), on top of the stored
//! rows. Merge rules (the server's `mergeRecords` / `overwriteObject`):
//!
//! | field | rule |
//! |---|---|
//! | trace `id`, `timestamp`, `environment`; observation `id`, `traceId`, `type`, `startTime`, `environment` | first value wins |
//! | any other field absent from the event | keeps the stored value |
//! | a field that is `null` | overwrites (observation `level` falls back to `DEFAULT`) |
//! | `modelParameters`, `usageDetails`, `costDetails` that are `{}` | keep the stored value |
//! | `input`, `output` | the last truthy value wins (`null`, `""`, `0`, `false` keep) |
//! | `metadata` | deep-merged (JSON merge patch) |
//! | trace `tags` | union, deduplicated, sorted |
//! | trace `public` | `public ?? false` on every trace event |
//! | score | every field of the latest event |
//!
//! Events without an id (a `trace-create` or `score-create` whose body has none) are skipped,
//! as the server skips them. Replaying a batch leaves the store unchanged.
//!
//! After the events, the roll-ups of every touched trace are recomputed from its observations,
//! and observations referring to a trace without a `trace-create` get a trace row.

use std::collections::BTreeSet;
use std::io::BufRead;

use langfuse_otel_core::record::{
    EventBody, IngestionEvent, Level, ObservationBody, ObservationType, ScoreBody, TraceBody,
};
use langfuse_otel_core::time::parse_date_lenient;
use rusqlite::{Transaction, params};
use serde_json::{Map, Value};

use crate::{Store, StoreError, price};

/// What one [`Store::ingest`] call wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// `trace-create` events applied.
    pub traces: u64,
    /// Observation events (`*-create`, `*-update`) applied.
    pub observations: u64,
    /// `score-create` events applied.
    pub scores: u64,
    /// Events skipped because they had no id.
    pub skipped: u64,
    /// Distinct traces whose roll-ups were recomputed.
    pub touched_traces: u64,
}

impl IngestReport {
    fn add(&mut self, other: IngestReport) {
        self.traces += other.traces;
        self.observations += other.observations;
        self.scores += other.scores;
        self.skipped += other.skipped;
        self.touched_traces += other.touched_traces;
    }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Reading the input failed.
    #[error("cannot read input: {0}")]
    Io(#[from] std::io::Error),
    /// A line is not an ingestion event.
    #[error("line {line} is not an ingestion event: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// The parse error.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Lines per transaction when importing a JSON-lines file.
const IMPORT_BATCH: usize = 2_000;

impl Store {
    /// Applies a batch of ingestion events in one transaction (see the [module docs](self)
    /// for the merge rules). Idempotent: ingesting the same events again changes nothing.
    pub fn ingest(&self, events: &[IngestionEvent]) -> Result<IngestReport, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction().map_err(|e| self.sqlite(e))?;
        let report = apply(&tx, events).map_err(|e| self.sqlite(e))?;
        tx.commit().map_err(|e| self.sqlite(e))?;
        Ok(report)
    }

    /// Imports a JSON-lines file of ingestion events (the SDK's offline file: one
    /// `{"id","type","timestamp","body"}` object per line; blank lines are ignored), in
    /// transactions of a few thousand events. A malformed line stops the import with its line
    /// number; the batches before it stay imported (a re-import is harmless: upserts).
    pub fn import_json_lines(&self, input: impl BufRead) -> Result<IngestReport, ImportError> {
        let mut report = IngestReport::default();
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        for (index, line) in input.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let event: IngestionEvent =
                serde_json::from_str(&line).map_err(|e| ImportError::Line {
                    line: index + 1,
                    reason: e.to_string(),
                })?;
            batch.push(event);
            if batch.len() == IMPORT_BATCH {
                report.add(self.ingest(&batch)?);
                batch.clear();
            }
        }
        if !batch.is_empty() {
            report.add(self.ingest(&batch)?);
        }
        Ok(report)
    }
}

fn apply(tx: &Transaction<'_>, events: &[IngestionEvent]) -> rusqlite::Result<IngestReport> {
    let seq: i64 = tx.query_row(
        "UPDATE store_meta SET value = value + 1 WHERE key = 'change_seq' RETURNING value",
        [],
        |r| r.get(0),
    )?;
    // Creates before updates, each in envelope-timestamp order (stable: ties keep batch order).
    let mut order: Vec<&IngestionEvent> = events.iter().collect();
    order.sort_by(|a, b| {
        let key = |e: &IngestionEvent| {
            let update = matches!(
                e.body,
                EventBody::SpanUpdate(_) | EventBody::GenerationUpdate(_)
            );
            (update, e.timestamp.clone().unwrap_or_default())
        };
        key(a).cmp(&key(b))
    });
    let mut report = IngestReport::default();
    let mut touched = BTreeSet::new();
    for event in order {
        let envelope_ts = event.timestamp.as_deref();
        match &event.body {
            EventBody::TraceCreate(body) => match &body.id {
                Some(id) => {
                    upsert_trace(tx, id, body, envelope_ts, seq)?;
                    touched.insert(id.clone());
                    report.traces += 1;
                }
                None => report.skipped += 1,
            },
            EventBody::ObservationCreate(kind, body) => {
                upsert_observation(tx, *kind, body, envelope_ts, &mut touched)?;
                report.observations += 1;
            }
            EventBody::SpanUpdate(body) => {
                upsert_observation(tx, ObservationType::Span, body, envelope_ts, &mut touched)?;
                report.observations += 1;
            }
            EventBody::GenerationUpdate(body) => {
                upsert_observation(
                    tx,
                    ObservationType::Generation,
                    body,
                    envelope_ts,
                    &mut touched,
                )?;
                report.observations += 1;
            }
            EventBody::ScoreCreate(body) => match &body.id {
                Some(id) => {
                    upsert_score(tx, id, body, envelope_ts)?;
                    if let Some(t) = &body.trace_id {
                        touched.insert(t.clone());
                    }
                    report.scores += 1;
                }
                None => report.skipped += 1,
            },
        }
    }
    for trace_id in &touched {
        roll_up(tx, trace_id, seq)?;
    }
    report.touched_traces = touched.len() as u64;
    Ok(report)
}

/// `Some(None)`/`Some(Some(v))` → (set, value); absent → (false, NULL).
fn field<T: Clone>(v: &Option<Option<T>>) -> (bool, Option<T>) {
    match v {
        Some(inner) => (true, inner.clone()),
        None => (false, None),
    }
}

fn json_text(v: &Value) -> String {
    v.to_string()
}

/// JavaScript truthiness, for the "last truthy input/output wins" rule.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0 && !x.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn io_field(v: &Option<Option<Value>>) -> (bool, Option<String>) {
    match v {
        Some(Some(value)) if truthy(value) => (true, Some(json_text(value))),
        _ => (false, None),
    }
}

/// An empty object keeps the stored value.
fn object_field(v: &Option<Option<Map<String, Value>>>) -> (bool, Option<String>) {
    match v {
        Some(Some(map)) if map.is_empty() => (false, None),
        Some(Some(map)) => (true, Some(Value::Object(map.clone()).to_string())),
        Some(None) => (true, None),
        None => (false, None),
    }
}

fn ms(text: Option<&str>) -> Option<i64> {
    text.and_then(parse_date_lenient)
}

fn upsert_trace(
    tx: &Transaction<'_>,
    id: &str,
    body: &TraceBody,
    envelope_ts: Option<&str>,
    seq: i64,
) -> rusqlite::Result<()> {
    let timestamp = body.timestamp.as_deref().or(envelope_ts);
    let (name_set, name) = field(&body.name);
    let (user_set, user) = field(&body.user_id);
    let (session_set, session) = field(&body.session_id);
    let (release_set, release) = field(&body.release);
    let (version_set, version) = field(&body.version);
    let public = body.public.flatten().unwrap_or(false);
    let mut tags: Vec<String> = body.tags.clone().flatten().unwrap_or_default();
    tags.sort();
    tags.dedup();
    let tags_json = serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into());
    let (input_set, input) = io_field(&body.input);
    let (output_set, output) = io_field(&body.output);
    let metadata = body
        .metadata
        .clone()
        .flatten()
        .filter(|m| !m.is_empty())
        .map(|m| m.to_value().to_string());
    let mut stmt = tx.prepare_cached(
        "INSERT INTO traces (id, timestamp, ts_ms, name, user_id, session_id, environment,
             release, version, public, tags, input, output, metadata, change_seq)
         VALUES (?1, ?2, ?3, ?5, ?7, ?9, ?10, ?12, ?14, ?15, ?16, ?18, ?20, ?21, ?22)
         ON CONFLICT (id) DO UPDATE SET
             timestamp = COALESCE(traces.timestamp, excluded.timestamp),
             ts_ms = COALESCE(traces.ts_ms, excluded.ts_ms),
             name = CASE WHEN ?4 THEN excluded.name ELSE traces.name END,
             user_id = CASE WHEN ?6 THEN excluded.user_id ELSE traces.user_id END,
             session_id = CASE WHEN ?8 THEN excluded.session_id ELSE traces.session_id END,
             environment = CASE WHEN traces.timestamp IS NULL THEN excluded.environment
                                ELSE traces.environment END,
             release = CASE WHEN ?11 THEN excluded.release ELSE traces.release END,
             version = CASE WHEN ?13 THEN excluded.version ELSE traces.version END,
             public = excluded.public,
             tags = (SELECT json_group_array(value) FROM (
                        SELECT value FROM json_each(traces.tags)
                        UNION SELECT value FROM json_each(excluded.tags) ORDER BY value)),
             input = CASE WHEN ?17 THEN excluded.input ELSE traces.input END,
             output = CASE WHEN ?19 THEN excluded.output ELSE traces.output END,
             metadata = CASE WHEN excluded.metadata IS NULL THEN traces.metadata
                             WHEN traces.metadata IS NULL THEN excluded.metadata
                             ELSE json_patch(traces.metadata, excluded.metadata) END,
             change_seq = excluded.change_seq",
    )?;
    stmt.execute(params![
        id,
        timestamp,
        ms(timestamp),
        name_set,
        name,
        user_set,
        user,
        session_set,
        session,
        body.environment,
        release_set,
        release,
        version_set,
        version,
        public,
        tags_json,
        input_set,
        input,
        output_set,
        output,
        metadata,
        seq,
    ])?;
    let mut tag_stmt =
        tx.prepare_cached("INSERT OR IGNORE INTO trace_tags (tag, trace_id) VALUES (?1, ?2)")?;
    for tag in &tags {
        tag_stmt.execute(params![tag, id])?;
    }
    Ok(())
}

fn upsert_observation(
    tx: &Transaction<'_>,
    kind: ObservationType,
    body: &ObservationBody,
    envelope_ts: Option<&str>,
    touched: &mut BTreeSet<String>,
) -> rusqlite::Result<()> {
    let trace_id = body.trace_id.clone().flatten();
    let start = body.start_time.clone().flatten();
    let start = start.as_deref().or(envelope_ts);
    let (name_set, name) = field(&body.name);
    let (end_set, end) = field(&body.end_time);
    let end_ms = ms(end.as_deref());
    let (cst_set, cst) = field(&body.completion_start_time);
    let (parent_set, parent) = field(&body.parent_observation_id);
    let (level_set, level) = field(&body.level);
    let level = level.unwrap_or(Level::Default).as_str();
    let (status_set, status) = field(&body.status_message);
    let (version_set, version) = field(&body.version);
    let (model_set, model) = field(&body.model);
    let (params_set, model_params) = object_field(&body.model_parameters);
    let (usage_set, usage) = object_field(&body.usage_details);
    let (cost_set, cost) = object_field(&body.cost_details);
    let (prompt_set, prompt_name) = field(&body.prompt_name);
    let (prompt_v_set, prompt_version) = field(&body.prompt_version);
    let (input_set, input) = io_field(&body.input);
    let (output_set, output) = io_field(&body.output);
    let metadata = body
        .metadata
        .clone()
        .flatten()
        .filter(|m| !m.is_empty())
        .map(|m| m.to_value().to_string());
    let mut stmt = tx.prepare_cached(
        "INSERT INTO observations (id, trace_id, type, name, start_time, start_ms, end_time,
             end_ms, completion_start_time, parent_observation_id, level, status_message, version,
             environment, model, model_parameters, usage_details, cost_details, prompt_name,
             prompt_version, input, output, metadata)
         VALUES (?1, ?2, ?3, ?5, ?6, ?7, ?9, ?10, ?12, ?14, ?16, ?18, ?20, ?21, ?23, ?25, ?27,
             ?29, ?31, ?33, ?35, ?37, ?38)
         ON CONFLICT (id) DO UPDATE SET
             trace_id = COALESCE(observations.trace_id, excluded.trace_id),
             name = CASE WHEN ?4 THEN excluded.name ELSE observations.name END,
             start_time = COALESCE(observations.start_time, excluded.start_time),
             start_ms = COALESCE(observations.start_ms, excluded.start_ms),
             end_time = CASE WHEN ?8 THEN excluded.end_time ELSE observations.end_time END,
             end_ms = CASE WHEN ?8 THEN excluded.end_ms ELSE observations.end_ms END,
             completion_start_time = CASE WHEN ?11 THEN excluded.completion_start_time
                 ELSE observations.completion_start_time END,
             parent_observation_id = CASE WHEN ?13 THEN excluded.parent_observation_id
                 ELSE observations.parent_observation_id END,
             level = CASE WHEN ?15 THEN excluded.level ELSE observations.level END,
             status_message = CASE WHEN ?17 THEN excluded.status_message
                 ELSE observations.status_message END,
             version = CASE WHEN ?19 THEN excluded.version ELSE observations.version END,
             model = CASE WHEN ?22 THEN excluded.model ELSE observations.model END,
             model_parameters = CASE WHEN ?24 THEN excluded.model_parameters
                 ELSE observations.model_parameters END,
             usage_details = CASE WHEN ?26 THEN excluded.usage_details
                 ELSE observations.usage_details END,
             cost_details = CASE WHEN ?28 THEN excluded.cost_details
                 ELSE observations.cost_details END,
             cost_estimated = CASE WHEN ?28 THEN 0 ELSE observations.cost_estimated END,
             prompt_name = CASE WHEN ?30 THEN excluded.prompt_name
                 ELSE observations.prompt_name END,
             prompt_version = CASE WHEN ?32 THEN excluded.prompt_version
                 ELSE observations.prompt_version END,
             input = CASE WHEN ?34 THEN excluded.input ELSE observations.input END,
             output = CASE WHEN ?36 THEN excluded.output ELSE observations.output END,
             metadata = CASE WHEN excluded.metadata IS NULL THEN observations.metadata
                             WHEN observations.metadata IS NULL THEN excluded.metadata
                             ELSE json_patch(observations.metadata, excluded.metadata) END
         RETURNING trace_id, model, usage_details, cost_details, cost_estimated",
    )?;
    let (stored_trace, model_now, usage_now, cost_now, estimated): (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        bool,
    ) = stmt.query_row(
        params![
            body.id,
            trace_id,
            kind.as_str(),
            name_set,
            name,
            start,
            ms(start),
            end_set,
            end,
            end_ms,
            cst_set,
            cst,
            parent_set,
            parent,
            level_set,
            level,
            status_set,
            status,
            version_set,
            version,
            body.environment,
            model_set,
            model,
            params_set,
            model_params,
            usage_set,
            usage,
            cost_set,
            cost,
            prompt_set,
            prompt_name,
            prompt_v_set,
            prompt_version,
            input_set,
            input,
            output_set,
            output,
            metadata,
        ],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    if let Some(t) = stored_trace {
        touched.insert(t);
    }
    if model_set || usage_set || cost_set {
        derive_usage_and_cost(
            tx,
            &body.id,
            model_now.as_deref(),
            usage_now.as_deref(),
            cost_now.as_deref(),
            estimated,
        )?;
    }
    Ok(())
}

/// Token totals and the total cost of one observation; a missing cost is estimated.
fn derive_usage_and_cost(
    tx: &Transaction<'_>,
    id: &str,
    model: Option<&str>,
    usage: Option<&str>,
    cost: Option<&str>,
    estimated: bool,
) -> rusqlite::Result<()> {
    let parse = |text: Option<&str>| -> Option<Map<String, Value>> {
        text.and_then(|t| serde_json::from_str::<Map<String, Value>>(t).ok())
    };
    let usage = parse(usage);
    let mut cost_map = parse(cost);
    let mut cost_estimated = false;
    if cost_map.is_none() || estimated {
        cost_map = match (model, &usage) {
            (Some(m), Some(u)) => price::estimate_cost(m, u),
            _ => None,
        };
        cost_estimated = cost_map.is_some();
    }
    let (input_tokens, output_tokens, total_tokens) = usage.as_ref().map_or((0, 0, 0), tokens);
    let total_cost = cost_map.as_ref().and_then(total_of);
    let cost_text = cost_map.map(|m| Value::Object(m).to_string());
    let mut stmt = tx.prepare_cached(
        "UPDATE observations SET input_tokens = ?2, output_tokens = ?3, total_tokens = ?4,
             total_cost = ?5, cost_details = ?6, cost_estimated = ?7 WHERE id = ?1",
    )?;
    stmt.execute(params![
        id,
        input_tokens,
        output_tokens,
        total_tokens,
        total_cost,
        cost_text,
        cost_estimated
    ])?;
    Ok(())
}

/// (input, output, total) tokens: `total` when given, else the sum of all kinds.
fn tokens(usage: &Map<String, Value>) -> (i64, i64, i64) {
    let mut input = 0;
    let mut output = 0;
    let mut sum = 0;
    for (key, value) in usage {
        let Some(n) = value.as_i64() else { continue };
        if key == "total" {
            continue;
        }
        sum += n;
        if key.starts_with("input") || key.starts_with("prompt") {
            input += n;
        } else if key.starts_with("output") || key.starts_with("completion") {
            output += n;
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
    let values: Vec<f64> = cost.values().filter_map(Value::as_f64).collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn upsert_score(
    tx: &Transaction<'_>,
    id: &str,
    body: &ScoreBody,
    envelope_ts: Option<&str>,
) -> rusqlite::Result<()> {
    let (value, string_value) = match &body.value {
        Value::Number(n) => (n.as_f64(), None),
        Value::Bool(b) => (Some(if *b { 1.0 } else { 0.0 }), None),
        Value::String(s) => (None, Some(s.clone())),
        other => (None, Some(other.to_string())),
    };
    let data_type = body.data_type.map(|d| {
        serde_json::to_value(d)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    });
    let source = body
        .source
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "API".to_owned());
    let mut stmt = tx.prepare_cached(
        "INSERT INTO scores (id, trace_id, observation_id, session_id, name, value, string_value,
             data_type, source, comment, metadata, environment, timestamp)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (id) DO UPDATE SET trace_id = excluded.trace_id,
             observation_id = excluded.observation_id, session_id = excluded.session_id,
             name = excluded.name, value = excluded.value, string_value = excluded.string_value,
             data_type = excluded.data_type, source = excluded.source, comment = excluded.comment,
             metadata = excluded.metadata, environment = excluded.environment,
             timestamp = COALESCE(scores.timestamp, excluded.timestamp)",
    )?;
    stmt.execute(params![
        id,
        body.trace_id,
        body.observation_id,
        body.session_id,
        body.name,
        value,
        string_value,
        data_type,
        source,
        body.comment,
        body.metadata.as_ref().map(json_text),
        body.environment,
        envelope_ts,
    ])?;
    Ok(())
}

fn roll_up(tx: &Transaction<'_>, trace_id: &str, seq: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO traces (id, change_seq) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![trace_id, seq])?;
    tx.prepare_cached(
        "UPDATE traces SET start_ms = a.s, end_ms = a.e, latency_ms = a.e - a.s,
             observation_count = a.n, generation_count = a.g, error_count = a.errors,
             warning_count = a.warnings, max_level = a.lvl, input_tokens = a.tin,
             output_tokens = a.tout, total_tokens = a.tt, total_cost = a.cost,
             cost_estimated = a.est, change_seq = ?2
         FROM (SELECT min(start_ms) AS s, max(max(COALESCE(end_ms, start_ms), start_ms)) AS e,
                   count(*) AS n, COALESCE(sum(type NOT IN ('span', 'event')), 0) AS g,
                   COALESCE(sum(level = 'ERROR'), 0) AS errors,
                   COALESCE(sum(level = 'WARNING'), 0) AS warnings,
                   COALESCE(max(CASE level WHEN 'ERROR' THEN 3 WHEN 'WARNING' THEN 2
                                           WHEN 'DEBUG' THEN 0 ELSE 1 END), 1) AS lvl,
                   COALESCE(sum(input_tokens), 0) AS tin, COALESCE(sum(output_tokens), 0) AS tout,
                   COALESCE(sum(total_tokens), 0) AS tt, sum(total_cost) AS cost,
                   COALESCE(max(cost_estimated AND total_cost IS NOT NULL), 0) AS est
               FROM observations WHERE trace_id = ?1) AS a
         WHERE traces.id = ?1",
    )?
    .execute(params![trace_id, seq])?;
    // A trace known only from its observations starts with its first observation. (Separate
    // from the roll-up so that the common case leaves the time indexes untouched: SQLite
    // rewrites every index on a column named in SET.)
    tx.prepare_cached(
        "UPDATE traces SET ts_ms = start_ms,
             timestamp = strftime('%Y-%m-%dT%H:%M:%fZ', start_ms / 1000.0, 'unixepoch')
         WHERE id = ?1 AND ts_ms IS NULL AND start_ms IS NOT NULL",
    )?
    .execute(params![trace_id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            assert!(!truthy(&v), "{v}");
        }
        for v in [json!("a"), json!(1), json!(true), json!([]), json!({})] {
            assert!(truthy(&v), "{v}");
        }
    }
}
