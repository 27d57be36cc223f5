//! The SQL side of ingest: the statements one batch uses, prepared once per batch, and the
//! conversions between rows in memory and rows in SQLite.

use std::borrow::Cow;
use std::sync::LazyLock;

use langfuse_otel_core::record::ScoreBody;
use langfuse_otel_core::time::format_iso_millis;
use rusqlite::types::ToSql;
use rusqlite::{CachedStatement, OptionalExtension, Row, Transaction, params, params_from_iter};
use serde_json::{Map, Value};

use langfuse_otel_core::fold;

use super::merge::{Json, ObservationRow, RollUp, Sum, TraceRow, json_text};

/// Every statement of a batch, prepared (or taken from the connection's cache) once.
pub(super) struct Statements<'c> {
    insert_observation: CachedStatement<'c>,
    select_observation: CachedStatement<'c>,
    update_observation: CachedStatement<'c>,
    insert_trace: CachedStatement<'c>,
    select_trace: CachedStatement<'c>,
    update_trace_fields: CachedStatement<'c>,
    select_roll_up: CachedStatement<'c>,
    update_roll_up: CachedStatement<'c>,
    recompute_roll_up: CachedStatement<'c>,
    timestamp_from_start: CachedStatement<'c>,
    touch_trace: CachedStatement<'c>,
    insert_tag: CachedStatement<'c>,
    upsert_score: CachedStatement<'c>,
}

const OBSERVATION_COLUMNS: &str = "trace_id, type, name, start_time, start_ms, end_time, end_ms,
    completion_start_time, parent_observation_id, level, status_message, version, environment,
    model, model_parameters, usage_details, cost_details, cost_estimated, prompt_name,
    prompt_version, input, output, metadata, input_tokens, output_tokens, total_tokens,
    total_cost";

const ROLL_UP_COLUMNS: &str = "start_ms, end_ms, latency_ms, observation_count, generation_count,
    error_count, warning_count, max_level, input_tokens, output_tokens, total_tokens, total_cost,
    cost_estimated";

/// The statements whose text is built from the column lists above (built once).
struct GeneratedSql {
    insert_observation: String,
    select_observation: String,
    update_observation: String,
    insert_trace: String,
    select_roll_up: String,
    update_roll_up: String,
}

static GENERATED_SQL: LazyLock<GeneratedSql> = LazyLock::new(|| {
    let placeholders = |from: usize, n: usize| {
        (from..from + n)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let assignments = |columns: &str, from: usize| {
        columns
            .split(',')
            .enumerate()
            .map(|(i, c)| format!("{} = ?{}", c.trim(), from + i))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let obs_n = OBSERVATION_COLUMNS.split(',').count();
    let roll_n = ROLL_UP_COLUMNS.split(',').count();
    GeneratedSql {
        insert_observation: format!(
            "INSERT INTO observations (id, {OBSERVATION_COLUMNS}) VALUES (?1, {})
             ON CONFLICT (id) DO NOTHING",
            placeholders(2, obs_n)
        ),
        select_observation: format!("SELECT {OBSERVATION_COLUMNS} FROM observations WHERE id = ?1"),
        update_observation: format!(
            "UPDATE observations SET {} WHERE id = ?1",
            assignments(OBSERVATION_COLUMNS, 2)
        ),
        insert_trace: format!(
            "INSERT INTO traces (id, change_seq, timestamp, ts_ms, name, user_id, session_id,
                 environment, release, version, public, tags, input, output, metadata,
                 {ROLL_UP_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, {})
             ON CONFLICT (id) DO NOTHING",
            placeholders(16, roll_n)
        ),
        select_roll_up: format!("SELECT {ROLL_UP_COLUMNS} FROM traces WHERE id = ?1"),
        update_roll_up: format!(
            "UPDATE traces SET change_seq = ?2, {} WHERE id = ?1",
            assignments(ROLL_UP_COLUMNS, 3)
        ),
    }
});

impl<'c> Statements<'c> {
    pub fn prepare(tx: &'c Transaction<'_>) -> rusqlite::Result<Statements<'c>> {
        let sql = &*GENERATED_SQL;
        Ok(Statements {
            insert_observation: tx.prepare_cached(&sql.insert_observation)?,
            select_observation: tx.prepare_cached(&sql.select_observation)?,
            update_observation: tx.prepare_cached(&sql.update_observation)?,
            insert_trace: tx.prepare_cached(&sql.insert_trace)?,
            select_trace: tx.prepare_cached(
                "SELECT timestamp, ts_ms, name, user_id, session_id, environment, release,
                     version, public, tags, input, output, metadata
                 FROM traces WHERE id = ?1",
            )?,
            update_trace_fields: tx.prepare_cached(
                "UPDATE traces SET change_seq = ?2, timestamp = ?3, ts_ms = ?4, name = ?5,
                     user_id = ?6, session_id = ?7, environment = ?8, release = ?9,
                     version = ?10, public = ?11, tags = ?12, input = ?13, output = ?14,
                     metadata = ?15
                 WHERE id = ?1",
            )?,
            select_roll_up: tx.prepare_cached(&sql.select_roll_up)?,
            update_roll_up: tx.prepare_cached(&sql.update_roll_up)?,
            recompute_roll_up: tx.prepare_cached(
                "UPDATE traces SET start_ms = a.s, end_ms = a.e, latency_ms = a.e - a.s,
                     observation_count = a.n, generation_count = a.g, error_count = a.errors,
                     warning_count = a.warnings, max_level = a.lvl, input_tokens = a.tin,
                     output_tokens = a.tout, total_tokens = a.tt, total_cost = a.cost,
                     cost_estimated = a.est, change_seq = ?2
                 FROM (SELECT min(start_ms) AS s,
                           max(max(COALESCE(end_ms, start_ms), start_ms)) AS e,
                           count(*) AS n, COALESCE(sum(type NOT IN ('span', 'event')), 0) AS g,
                           COALESCE(sum(level = 'ERROR'), 0) AS errors,
                           COALESCE(sum(level = 'WARNING'), 0) AS warnings,
                           COALESCE(max(CASE level WHEN 'ERROR' THEN 3 WHEN 'WARNING' THEN 2
                                                   WHEN 'DEBUG' THEN 0 ELSE 1 END), 1) AS lvl,
                           COALESCE(sum(input_tokens), 0) AS tin,
                           COALESCE(sum(output_tokens), 0) AS tout,
                           COALESCE(sum(total_tokens), 0) AS tt, sum(total_cost) AS cost,
                           COALESCE(max(cost_estimated AND total_cost IS NOT NULL), 0) AS est
                       FROM observations WHERE trace_id = ?1) AS a
                 WHERE traces.id = ?1",
            )?,
            // A trace known only from its observations starts with its first observation.
            timestamp_from_start: tx.prepare_cached(
                "UPDATE traces SET ts_ms = start_ms,
                     timestamp = strftime('%Y-%m-%dT%H:%M:%fZ', start_ms / 1000.0, 'unixepoch')
                 WHERE id = ?1 AND ts_ms IS NULL AND start_ms IS NOT NULL",
            )?,
            touch_trace: tx.prepare_cached(
                "INSERT INTO traces (id, change_seq) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET change_seq = excluded.change_seq",
            )?,
            insert_tag: tx.prepare_cached(
                "INSERT OR IGNORE INTO trace_tags (tag, trace_id) VALUES (?1, ?2)",
            )?,
            upsert_score: tx.prepare_cached(
                "INSERT INTO scores (id, trace_id, observation_id, session_id, name, value,
                     string_value, data_type, source, comment, metadata, environment, timestamp)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (id) DO UPDATE SET trace_id = excluded.trace_id,
                     observation_id = excluded.observation_id, session_id = excluded.session_id,
                     name = excluded.name, value = excluded.value,
                     string_value = excluded.string_value, data_type = excluded.data_type,
                     source = excluded.source, comment = excluded.comment,
                     metadata = excluded.metadata, environment = excluded.environment,
                     timestamp = COALESCE(scores.timestamp, excluded.timestamp)",
            )?,
        })
    }

    /// Inserts a new observation; `false` when the id is already stored (nothing written).
    pub fn insert_observation(
        &mut self,
        id: &str,
        row: &ObservationRow<'_>,
    ) -> rusqlite::Result<bool> {
        Ok(execute_observation(&mut self.insert_observation, id, row)? > 0)
    }

    /// Rewrites a stored observation.
    pub fn update_observation(
        &mut self,
        id: &str,
        row: &ObservationRow<'_>,
    ) -> rusqlite::Result<()> {
        execute_observation(&mut self.update_observation, id, row).map(drop)
    }

    /// The stored observation `id`.
    pub fn select_observation(
        &mut self,
        id: &str,
    ) -> rusqlite::Result<Option<ObservationRow<'static>>> {
        self.select_observation
            .query_row([id], |r| {
                Ok(ObservationRow {
                    fields: fold::ObservationRow {
                        trace_id: text(r, 0)?,
                        kind: Cow::Owned(r.get(1)?),
                        name: text(r, 2)?,
                        start_time: text(r, 3)?,
                        start_ms: r.get(4)?,
                        end_time: text(r, 5)?,
                        end_ms: r.get(6)?,
                        completion_start_time: text(r, 7)?,
                        parent_observation_id: text(r, 8)?,
                        level: Cow::Owned(r.get(9)?),
                        status_message: text(r, 10)?,
                        version: text(r, 11)?,
                        environment: Cow::Owned(r.get(12)?),
                        model: text(r, 13)?,
                        model_parameters: object(r, 14)?,
                        usage_details: object(r, 15)?,
                        cost_details: object(r, 16)?,
                        prompt_name: text(r, 18)?,
                        prompt_version: r.get(19)?,
                        input: stored_json(r, 20)?,
                        output: stored_json(r, 21)?,
                        metadata: stored_json(r, 22)?,
                    },
                    cost_estimated: r.get(17)?,
                    input_tokens: r.get(23)?,
                    output_tokens: r.get(24)?,
                    total_tokens: r.get(25)?,
                    total_cost: r.get(26)?,
                })
            })
            .optional()
    }

    /// Inserts a new trace with its roll-ups (a trace only known from its observations
    /// starts with its first observation); `false` when the id is already stored.
    pub fn insert_trace(
        &mut self,
        id: &str,
        row: &TraceRow<'_>,
        roll_up: &RollUp,
        seq: i64,
    ) -> rusqlite::Result<bool> {
        let fields = TraceFieldValues::new(row, roll_up.start_ms);
        let roll_up = RollUpValues::new(roll_up);
        let head: [&dyn ToSql; 2] = [&id, &seq];
        bind(
            &mut self.insert_trace,
            head.into_iter()
                .chain(fields.params())
                .chain(roll_up.params()),
        )?;
        drop(fields);
        Ok(execute_bound(&mut self.insert_trace)? > 0)
    }

    /// The stored fields of trace `id`.
    pub fn select_trace(&mut self, id: &str) -> rusqlite::Result<Option<TraceRow<'static>>> {
        self.select_trace
            .query_row([id], |r| {
                let tags: Option<String> = r.get(9)?;
                let tags: Vec<String> = tags
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default();
                Ok(TraceRow {
                    timestamp: text(r, 0)?,
                    ts_ms: r.get(1)?,
                    name: text(r, 2)?,
                    user_id: text(r, 3)?,
                    session_id: text(r, 4)?,
                    environment: Cow::Owned(r.get(5)?),
                    release: text(r, 6)?,
                    version: text(r, 7)?,
                    public: r.get(8)?,
                    tags: tags.into_iter().map(Cow::Owned).collect(),
                    input: stored_json(r, 10)?,
                    output: stored_json(r, 11)?,
                    metadata: stored_json(r, 12)?,
                })
            })
            .optional()
    }

    /// Rewrites the fields of a stored trace.
    pub fn update_trace_fields(
        &mut self,
        id: &str,
        row: &TraceRow<'_>,
        seq: i64,
    ) -> rusqlite::Result<()> {
        let fields = TraceFieldValues::new(row, None);
        let head: [&dyn ToSql; 2] = [&id, &seq];
        bind(
            &mut self.update_trace_fields,
            head.into_iter().chain(fields.params()),
        )?;
        drop(fields);
        execute_bound(&mut self.update_trace_fields).map(drop)
    }

    /// Records the trace's tags in the tag index.
    pub fn insert_tags(&mut self, id: &str, row: &TraceRow<'_>) -> rusqlite::Result<()> {
        for tag in &row.tags {
            self.insert_tag.execute(params![tag, id])?;
        }
        Ok(())
    }

    /// The stored roll-ups of trace `id` (all zero for a trace without observations).
    pub fn select_roll_up(&mut self, id: &str) -> rusqlite::Result<RollUp> {
        let stored = self
            .select_roll_up
            .query_row([id], |r| {
                let observations: i64 = r.get(3)?;
                let mut cost = Sum::default();
                if let Some(c) = r.get::<_, Option<f64>>(11)? {
                    cost.add(c);
                }
                Ok(RollUp {
                    start_ms: r.get(0)?,
                    end_ms: r.get(1)?,
                    observations,
                    generations: r.get(4)?,
                    errors: r.get(5)?,
                    warnings: r.get(6)?,
                    max_level: if observations > 0 { r.get(7)? } else { None },
                    input_tokens: r.get(8)?,
                    output_tokens: r.get(9)?,
                    total_tokens: r.get(10)?,
                    cost,
                    cost_estimated: r.get(12)?,
                })
            })
            .optional()?;
        Ok(stored.unwrap_or_default())
    }

    /// Writes a trace's roll-ups.
    pub fn update_roll_up(&mut self, id: &str, roll_up: &RollUp, seq: i64) -> rusqlite::Result<()> {
        let roll_up = RollUpValues::new(roll_up);
        let head: [&dyn ToSql; 2] = [&id, &seq];
        self.update_roll_up
            .execute(params_from_iter(head.into_iter().chain(roll_up.params())))?;
        Ok(())
    }

    /// Recomputes a trace's roll-ups from all its stored observations.
    pub fn recompute_roll_up(&mut self, id: &str, seq: i64) -> rusqlite::Result<()> {
        self.recompute_roll_up.execute(params![id, seq])?;
        Ok(())
    }

    /// Gives a stored trace without a timestamp its first observation's start.
    pub fn timestamp_from_start(&mut self, id: &str) -> rusqlite::Result<()> {
        self.timestamp_from_start.execute([id])?;
        Ok(())
    }

    /// Makes sure trace `id` exists and marks it changed in batch `seq`.
    pub fn touch_trace(&mut self, id: &str, seq: i64) -> rusqlite::Result<()> {
        self.touch_trace.execute(params![id, seq])?;
        Ok(())
    }

    /// Writes a score: every field of the latest event, the first timestamp.
    pub fn upsert_score(
        &mut self,
        id: &str,
        body: &ScoreBody,
        envelope_ts: Option<&str>,
    ) -> rusqlite::Result<()> {
        let (value, string_value) = match &body.value {
            Value::Number(n) => (n.as_f64(), None),
            Value::Bool(b) => (Some(if *b { 1.0 } else { 0.0 }), None),
            Value::String(s) => (None, Some(Cow::Borrowed(s.as_str()))),
            other => (None, Some(Cow::Owned(other.to_string()))),
        };
        let data_type = body.data_type.map(|d| d.as_str());
        let source = body
            .source
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "API".to_owned());
        self.upsert_score.execute(params![
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
            body.metadata.as_ref().map(Value::to_string),
            body.environment,
            envelope_ts,
        ])?;
        Ok(())
    }
}

/// Binds an observation as `id` and [`OBSERVATION_COLUMNS`] in order (the insert's values
/// and the update's assignments number them alike) and runs the statement.
fn execute_observation(
    stmt: &mut CachedStatement<'_>,
    id: &str,
    row: &ObservationRow<'_>,
) -> rusqlite::Result<usize> {
    let object = |m: &Option<Cow<'_, Map<String, Value>>>| {
        m.as_deref().and_then(|m| serde_json::to_string(m).ok())
    };
    let (input, output, metadata) = (
        json_text(&row.input),
        json_text(&row.output),
        json_text(&row.metadata),
    );
    bind(
        stmt,
        params![
            id,
            row.trace_id,
            row.kind,
            row.name,
            row.start_time,
            row.start_ms,
            row.end_time,
            row.end_ms,
            row.completion_start_time,
            row.parent_observation_id,
            row.level,
            row.status_message,
            row.version,
            row.environment,
            row.model,
            object(&row.model_parameters),
            object(&row.usage_details),
            object(&row.cost_details),
            row.cost_estimated,
            row.prompt_name,
            row.prompt_version,
            input,
            output,
            metadata,
            row.input_tokens,
            row.output_tokens,
            row.total_tokens,
            row.total_cost,
        ],
    )?;
    drop((input, output, metadata));
    execute_bound(stmt)
}

/// Binds `params` in order (1-based). SQLite keeps its own copy of bound text, so the
/// caller's JSON texts can go before [`execute_bound`] runs the statement: a large input
/// (tens of MiB) is then held once by SQLite instead of once more by us.
fn bind<P: ToSql>(
    stmt: &mut CachedStatement<'_>,
    params: impl IntoIterator<Item = P>,
) -> rusqlite::Result<()> {
    for (i, param) in params.into_iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, param)?;
    }
    Ok(())
}

/// Runs a statement bound by [`bind`], then clears its bindings: a cached statement would
/// otherwise hold the last row's texts until the batch ends.
fn execute_bound(stmt: &mut CachedStatement<'_>) -> rusqlite::Result<usize> {
    let result = stmt.raw_execute();
    stmt.clear_bindings();
    result
}

/// A trace's stored fields as statement parameters, in the order of the statements' columns
/// after `id, change_seq` (`timestamp` … `metadata`).
struct TraceFieldValues<'r> {
    row: &'r TraceRow<'r>,
    timestamp: Option<Cow<'r, str>>,
    ts_ms: Option<i64>,
    tags: String,
    input: Option<Cow<'r, str>>,
    output: Option<Cow<'r, str>>,
    metadata: Option<Cow<'r, str>>,
}

impl<'r> TraceFieldValues<'r> {
    /// `first_start`: a new trace without a timestamp of its own takes it.
    fn new(row: &'r TraceRow<'r>, first_start: Option<i64>) -> Self {
        let (timestamp, ts_ms) = match (row.ts_ms, first_start) {
            (None, Some(start)) => (Some(Cow::Owned(format_iso_millis(start))), Some(start)),
            _ => (row.timestamp.as_deref().map(Cow::Borrowed), row.ts_ms),
        };
        TraceFieldValues {
            row,
            timestamp,
            ts_ms,
            tags: row.tags_json(),
            input: json_text(&row.input),
            output: json_text(&row.output),
            metadata: json_text(&row.metadata),
        }
    }

    fn params(&self) -> [&dyn ToSql; 13] {
        let row = self.row;
        [
            &self.timestamp,
            &self.ts_ms,
            &row.name,
            &row.user_id,
            &row.session_id,
            &row.environment,
            &row.release,
            &row.version,
            &row.public,
            &self.tags,
            &self.input,
            &self.output,
            &self.metadata,
        ]
    }
}

/// A trace's roll-ups as statement parameters, in the order of [`ROLL_UP_COLUMNS`].
struct RollUpValues<'r> {
    roll_up: &'r RollUp,
    latency_ms: Option<i64>,
    max_level: i64,
    cost: Option<f64>,
}

impl<'r> RollUpValues<'r> {
    fn new(roll_up: &'r RollUp) -> Self {
        RollUpValues {
            roll_up,
            latency_ms: roll_up.latency_ms(),
            max_level: roll_up.max_level_rank(),
            cost: roll_up.cost.value(),
        }
    }

    fn params(&self) -> [&dyn ToSql; 13] {
        let r = self.roll_up;
        [
            &r.start_ms,
            &r.end_ms,
            &self.latency_ms,
            &r.observations,
            &r.generations,
            &r.errors,
            &r.warnings,
            &self.max_level,
            &r.input_tokens,
            &r.output_tokens,
            &r.total_tokens,
            &self.cost,
            &r.cost_estimated,
        ]
    }
}

fn stored_json(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<Json<'static>>> {
    Ok(r.get::<_, Option<String>>(i)?.map(Json::Stored))
}

fn text(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<Cow<'static, str>>> {
    Ok(r.get::<_, Option<String>>(i)?.map(Cow::Owned))
}

/// A stored JSON object column (anything else reads as absent).
fn object(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<Cow<'static, Map<String, Value>>>> {
    Ok(r.get::<_, Option<String>>(i)?
        .and_then(|t| serde_json::from_str::<Map<String, Value>>(&t).ok())
        .map(Cow::Owned))
}
