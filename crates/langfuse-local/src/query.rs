//! Reading the store: trace lists with filters, sorting and paging, one trace with its
//! observations and scores, sessions and users.
//!
//! Every view serializes with Langfuse's public API field names (`userId`, `sessionId`,
//! `parentObservationId`, `usageDetails`, …); latencies are in seconds, costs in USD.
//!
//! ```
//! use langfuse_local::{ScoreCondition, SortKey, TraceFilter};
//!
//! let filter = TraceFilter {
//!     user_id: Some("user-42".into()),
//!     scores: vec!["relevance>=0.8".parse::<ScoreCondition>().unwrap()],
//!     sort: SortKey::Latency,
//!     limit: 20,
//!     ..TraceFilter::default()
//! };
//! assert_eq!(filter.scores[0].name, "relevance");
//! ```

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row, params, params_from_iter};
use serde::Serialize;
use serde_json::Value;

use crate::{Store, StoreError};

/// How a trace list is ordered (always with the trace id as a tie-breaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SortKey {
    /// Trace timestamp.
    #[default]
    Time,
    /// Latency (end of the last observation minus start of the first).
    Latency,
    /// Total cost.
    Cost,
    /// Number of observations at level `ERROR`.
    Errors,
}

impl FromStr for SortKey {
    type Err = String;

    /// `time`, `latency`, `cost` or `errors`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "time" | "timestamp" => Ok(SortKey::Time),
            "latency" => Ok(SortKey::Latency),
            "cost" => Ok(SortKey::Cost),
            "errors" => Ok(SortKey::Errors),
            other => Err(format!(
                "unknown sort key {other:?} (expected time, latency, cost or errors)"
            )),
        }
    }
}

/// Comparison of a score filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreOp {
    /// `>=`
    AtLeast,
    /// `<=`
    AtMost,
    /// `=` (numbers compare numerically, anything else as the categorical/text value)
    Equal,
}

/// A score filter `NAME>=X`, `NAME<=X` or `NAME=X`: the trace has a score of that name (on
/// the trace or any of its observations) that satisfies the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreCondition {
    /// Score name.
    pub name: String,
    /// Comparison.
    pub op: ScoreOp,
    /// The value as given.
    pub value: String,
}

impl FromStr for ScoreCondition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, op, value) = if let Some((n, v)) = s.split_once(">=") {
            (n, ScoreOp::AtLeast, v)
        } else if let Some((n, v)) = s.split_once("<=") {
            (n, ScoreOp::AtMost, v)
        } else if let Some((n, v)) = s.split_once('=') {
            (n, ScoreOp::Equal, v)
        } else {
            return Err(format!(
                "score filter {s:?}: expected NAME>=X, NAME<=X or NAME=X"
            ));
        };
        let name = name.trim();
        let value = value.trim();
        if name.is_empty() {
            return Err(format!("score filter {s:?}: missing score name"));
        }
        if op != ScoreOp::Equal && value.parse::<f64>().is_err() {
            return Err(format!("score filter {s:?}: {value:?} is not a number"));
        }
        Ok(ScoreCondition {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
        })
    }
}

impl fmt::Display for ScoreCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            ScoreOp::AtLeast => ">=",
            ScoreOp::AtMost => "<=",
            ScoreOp::Equal => "=",
        };
        write!(f, "{}{op}{}", self.name, self.value)
    }
}

/// The most tag and score conditions one [`TraceFilter`] may hold (each is a subquery; SQLite
/// refuses deep expression trees, and a viewer's query string must not cost unbounded work).
pub const MAX_FILTER_CONDITIONS: usize = 100;

/// Which traces to list, in what order, which page. At most [`MAX_FILTER_CONDITIONS`] tags
/// and score conditions together ([`StoreError::TooManyConditions`] beyond).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceFilter {
    /// Exact trace name.
    pub name: Option<String>,
    /// Exact user id.
    pub user_id: Option<String>,
    /// Exact session id.
    pub session_id: Option<String>,
    /// Traces carrying all of these tags.
    pub tags: Vec<String>,
    /// Traces at or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// Traces before this time (Unix ms).
    pub until_ms: Option<i64>,
    /// Traces with at least one observation at this level or above (`WARNING` matches
    /// warnings and errors).
    pub min_level: Option<langfuse_otel_core::record::Level>,
    /// Score conditions, all of which must hold.
    pub scores: Vec<ScoreCondition>,
    /// Order.
    pub sort: SortKey,
    /// Ascending instead of descending.
    pub ascending: bool,
    /// Page size (0 means no limit).
    pub limit: u32,
    /// Rows to skip.
    pub offset: u32,
}

impl Default for TraceFilter {
    fn default() -> Self {
        TraceFilter {
            name: None,
            user_id: None,
            session_id: None,
            tags: Vec::new(),
            since_ms: None,
            until_ms: None,
            min_level: None,
            scores: Vec::new(),
            sort: SortKey::Time,
            ascending: false,
            limit: 50,
            offset: 0,
        }
    }
}

/// A score name and value, as shown in trace lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreBrief {
    /// Score name.
    pub name: String,
    /// Numeric value (numeric and boolean scores).
    pub value: Option<f64>,
    /// Categorical or text value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
}

/// One row of a trace list: the trace's own fields and its roll-ups.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceSummary {
    /// Trace id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Start (ISO-8601).
    pub timestamp: Option<String>,
    /// User id.
    pub user_id: Option<String>,
    /// Session id.
    pub session_id: Option<String>,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// Environment.
    pub environment: String,
    /// Release.
    pub release: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Seconds from the first observation's start to the last one's end.
    pub latency: Option<f64>,
    /// Total cost in USD (observations' costs, estimated ones included).
    pub total_cost: Option<f64>,
    /// Whether part of the cost is an estimate from the bundled price table.
    pub cost_estimated: bool,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Total tokens.
    pub total_tokens: i64,
    /// Number of observations.
    pub observation_count: i64,
    /// Number of generation-like observations.
    pub generation_count: i64,
    /// Observations at level `ERROR`.
    pub error_count: i64,
    /// Observations at level `WARNING`.
    pub warning_count: i64,
    /// The highest observation level.
    pub level: &'static str,
    /// The trace's scores (name and value; in a [`TraceDetail`] the full scores instead).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<ScoreBrief>,
}

/// One trace with everything: fields, input/output, metadata, observations and scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceDetail {
    /// The list fields.
    #[serde(flatten)]
    pub summary: TraceSummary,
    /// Input.
    pub input: Option<Value>,
    /// Output.
    pub output: Option<Value>,
    /// Metadata.
    pub metadata: Option<Value>,
    /// Public flag.
    pub public: bool,
    /// Observations ordered by start time.
    pub observations: Vec<ObservationView>,
    /// Scores on the trace and its observations.
    #[serde(rename = "scores")]
    pub score_details: Vec<ScoreView>,
}

impl std::ops::Deref for TraceDetail {
    type Target = TraceSummary;

    fn deref(&self) -> &TraceSummary {
        &self.summary
    }
}

/// One observation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservationView {
    /// Observation id.
    pub id: String,
    /// Trace id.
    pub trace_id: Option<String>,
    /// Parent observation id (`None` at the root).
    pub parent_observation_id: Option<String>,
    /// Type in upper case, as the public API returns it (`GENERATION`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Name.
    pub name: Option<String>,
    /// Start (ISO-8601).
    pub start_time: Option<String>,
    /// End (ISO-8601).
    pub end_time: Option<String>,
    /// First token (ISO-8601).
    pub completion_start_time: Option<String>,
    /// Seconds from start to end.
    pub latency: Option<f64>,
    /// Model.
    pub model: Option<String>,
    /// Model parameters.
    pub model_parameters: Option<Value>,
    /// Usage by kind.
    pub usage_details: Option<Value>,
    /// Cost by kind (USD).
    pub cost_details: Option<Value>,
    /// Total cost (USD).
    pub total_cost: Option<f64>,
    /// Whether the cost is an estimate from the bundled price table.
    pub cost_estimated: bool,
    /// Level.
    pub level: String,
    /// Status message.
    pub status_message: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Environment.
    pub environment: String,
    /// Input.
    pub input: Option<Value>,
    /// Output.
    pub output: Option<Value>,
    /// Metadata.
    pub metadata: Option<Value>,
    /// Linked prompt name.
    pub prompt_name: Option<String>,
    /// Linked prompt version.
    pub prompt_version: Option<i64>,
    #[serde(skip)]
    start_ms: Option<i64>,
    #[serde(skip)]
    end_ms: Option<i64>,
}

impl ObservationView {
    /// Start in Unix milliseconds.
    pub fn start_ms(&self) -> Option<i64> {
        self.start_ms
    }

    /// End in Unix milliseconds.
    pub fn end_ms(&self) -> Option<i64> {
        self.end_ms
    }
}

/// One score.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreView {
    /// Score id.
    pub id: String,
    /// Trace id.
    pub trace_id: Option<String>,
    /// Observation id.
    pub observation_id: Option<String>,
    /// Session id.
    pub session_id: Option<String>,
    /// Name.
    pub name: String,
    /// Numeric value.
    pub value: Option<f64>,
    /// Categorical or text value.
    pub string_value: Option<String>,
    /// `NUMERIC`, `CATEGORICAL`, `BOOLEAN`, …
    pub data_type: Option<String>,
    /// `API`, `EVAL` or `ANNOTATION`.
    pub source: String,
    /// Comment.
    pub comment: Option<String>,
    /// Metadata.
    pub metadata: Option<Value>,
    /// Environment.
    pub environment: Option<String>,
    /// When it was recorded (ISO-8601, the ingestion envelope's time).
    pub timestamp: Option<String>,
}

/// One session: its traces' count, span and totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    /// Session id.
    pub id: String,
    /// Number of traces.
    pub trace_count: i64,
    /// First trace start (ISO-8601).
    pub first_timestamp: Option<String>,
    /// Last trace start (ISO-8601).
    pub last_timestamp: Option<String>,
    /// Users seen in the session.
    pub user_ids: Vec<String>,
    /// Total cost (USD).
    pub total_cost: Option<f64>,
    /// Total tokens.
    pub total_tokens: i64,
    /// Observations at level `ERROR`.
    pub error_count: i64,
}

/// One user: trace count, activity and totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    /// User id.
    pub id: String,
    /// Number of traces.
    pub trace_count: i64,
    /// Number of sessions.
    pub session_count: i64,
    /// First trace (ISO-8601).
    pub first_timestamp: Option<String>,
    /// Last trace (ISO-8601).
    pub last_timestamp: Option<String>,
    /// Total cost (USD).
    pub total_cost: Option<f64>,
    /// Total tokens.
    pub total_tokens: i64,
    /// Observations at level `ERROR`.
    pub error_count: i64,
}

const SUMMARY_COLUMNS: &str = "t.id, t.name, t.timestamp, t.user_id, t.session_id, t.tags,
    t.environment, t.release, t.version, t.latency_ms, t.total_cost, t.cost_estimated,
    t.input_tokens, t.output_tokens, t.total_tokens, t.observation_count, t.generation_count,
    t.error_count, t.warning_count, t.max_level";

fn level_name(max_level: i64) -> &'static str {
    match max_level {
        3 => "ERROR",
        2 => "WARNING",
        0 => "DEBUG",
        _ => "DEFAULT",
    }
}

/// A level's rank in the traces' `max_level` column (`DEBUG` < `DEFAULT` < `WARNING` < `ERROR`).
pub(crate) fn level_rank(level: langfuse_otel_core::record::Level) -> i64 {
    use langfuse_otel_core::record::Level;
    match level {
        Level::Debug => 0,
        Level::Default => 1,
        Level::Warning => 2,
        Level::Error => 3,
        // A level of a newer record model ranks as the default.
        _ => 1,
    }
}

/// The rank of a level as stored in an observation's `level` column (unknown text ranks as
/// `DEFAULT`).
pub(crate) fn stored_level_rank(text: &str) -> i64 {
    use langfuse_otel_core::record::Level;
    [Level::Debug, Level::Warning, Level::Error]
        .into_iter()
        .find(|l| l.as_str() == text)
        .map_or(level_rank(Level::Default), level_rank)
}

fn json_column(text: Option<String>) -> Option<Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

fn seconds(ms: Option<i64>) -> Option<f64> {
    ms.map(|m| m as f64 / 1000.0)
}

fn summary_from_row(r: &Row<'_>) -> rusqlite::Result<TraceSummary> {
    let tags: String = r.get(5)?;
    Ok(TraceSummary {
        id: r.get(0)?,
        name: r.get(1)?,
        timestamp: r.get(2)?,
        user_id: r.get(3)?,
        session_id: r.get(4)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        environment: r.get(6)?,
        release: r.get(7)?,
        version: r.get(8)?,
        latency: seconds(r.get(9)?),
        total_cost: r.get(10)?,
        cost_estimated: r.get(11)?,
        input_tokens: r.get(12)?,
        output_tokens: r.get(13)?,
        total_tokens: r.get(14)?,
        observation_count: r.get(15)?,
        generation_count: r.get(16)?,
        error_count: r.get(17)?,
        warning_count: r.get(18)?,
        level: level_name(r.get(19)?),
        scores: Vec::new(),
    })
}

/// The WHERE clause and its parameters for a filter.
fn where_clause(filter: &TraceFilter) -> (String, Vec<SqlValue>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    let mut push = |clause: &str, value: SqlValue| {
        args.push(value);
        clauses.push(clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(n) = &filter.name {
        push("t.name = ?", SqlValue::Text(n.clone()));
    }
    if let Some(u) = &filter.user_id {
        push("t.user_id = ?", SqlValue::Text(u.clone()));
    }
    if let Some(s) = &filter.session_id {
        push("t.session_id = ?", SqlValue::Text(s.clone()));
    }
    for tag in &filter.tags {
        push(
            "EXISTS (SELECT 1 FROM trace_tags g WHERE g.tag = ? AND g.trace_id = t.id)",
            SqlValue::Text(tag.clone()),
        );
    }
    if let Some(s) = filter.since_ms {
        push("t.ts_ms >= ?", SqlValue::Integer(s));
    }
    if let Some(u) = filter.until_ms {
        push("t.ts_ms < ?", SqlValue::Integer(u));
    }
    if let Some(l) = filter.min_level {
        push("t.max_level >= ?", SqlValue::Integer(level_rank(l)));
    }
    for cond in &filter.scores {
        args.push(SqlValue::Text(cond.name.clone()));
        let name_arg = args.len();
        let number = cond.value.parse::<f64>().ok();
        let test = match (cond.op, number) {
            (ScoreOp::AtLeast, Some(x)) => {
                args.push(SqlValue::Real(x));
                format!("s.value >= ?{}", args.len())
            }
            (ScoreOp::AtMost, Some(x)) => {
                args.push(SqlValue::Real(x));
                format!("s.value <= ?{}", args.len())
            }
            (ScoreOp::Equal, Some(x)) => {
                args.push(SqlValue::Real(x));
                args.push(SqlValue::Text(cond.value.clone()));
                format!(
                    "(s.value = ?{} OR s.string_value = ?{})",
                    args.len() - 1,
                    args.len()
                )
            }
            _ => {
                args.push(SqlValue::Text(cond.value.clone()));
                format!("s.string_value = ?{}", args.len())
            }
        };
        clauses.push(format!(
            "EXISTS (SELECT 1 FROM scores s WHERE s.trace_id = t.id AND s.name = ?{name_arg} AND {test})"
        ));
    }
    // Placeholder rows of traces whose events have not arrived yet are hidden.
    clauses.push("t.timestamp IS NOT NULL".to_owned());
    (format!("WHERE {}", clauses.join(" AND ")), args)
}

fn order_clause(filter: &TraceFilter) -> String {
    // The row id breaks ties (insertion order), so an index on the sort column also serves
    // the tie-break: no temporary sort for the common descending orders. SQLite sorts NULLs
    // first ascending and last descending.
    let dir = if filter.ascending { "ASC" } else { "DESC" };
    let column = match filter.sort {
        SortKey::Time => "t.ts_ms",
        SortKey::Latency => "t.latency_ms",
        SortKey::Cost => "t.total_cost",
        SortKey::Errors => "t.error_count",
    };
    format!("ORDER BY {column} {dir}, t.rowid {dir}")
}

impl TraceFilter {
    /// Tag and score conditions (bounded by [`MAX_FILTER_CONDITIONS`]).
    pub fn conditions(&self) -> usize {
        self.tags.len() + self.scores.len()
    }

    /// [`StoreError::TooManyConditions`] when over the bound.
    pub fn check_bounds(&self) -> Result<(), StoreError> {
        let found = self.conditions();
        if found > MAX_FILTER_CONDITIONS {
            return Err(StoreError::TooManyConditions {
                found,
                limit: MAX_FILTER_CONDITIONS,
            });
        }
        Ok(())
    }
}

impl Store {
    /// Traces matching `filter`, in its order, one page.
    pub fn list_traces(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>, StoreError> {
        filter.check_bounds()?;
        let conn = self.reader()?;
        list_traces(&conn, filter).map_err(|e| self.sqlite(e))
    }

    /// Number of traces matching `filter` (ignoring its paging).
    pub fn count_traces(&self, filter: &TraceFilter) -> Result<u64, StoreError> {
        self.count_traces_up_to(filter, 0)
    }

    /// Number of traces matching `filter`, counting at most `cap` (0: no cap). A viewer shows
    /// "10,000+" instead of paying for an exact count over a large store.
    pub fn count_traces_up_to(&self, filter: &TraceFilter, cap: u64) -> Result<u64, StoreError> {
        filter.check_bounds()?;
        let conn = self.reader()?;
        let (where_sql, mut args) = where_clause(filter);
        args.push(SqlValue::Integer(if cap == 0 {
            -1
        } else {
            i64::try_from(cap).unwrap_or(i64::MAX)
        }));
        let n: i64 = conn
            .query_row(
                &format!(
                    "SELECT count(*) FROM (SELECT 1 FROM traces t {where_sql} LIMIT ?{})",
                    args.len()
                ),
                params_from_iter(args),
                |r| r.get(0),
            )
            .map_err(|e| self.sqlite(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// One trace with its observations (by start time) and scores; `None` when unknown.
    pub fn trace(&self, id: &str) -> Result<Option<TraceDetail>, StoreError> {
        let conn = self.reader()?;
        trace(&conn, id).map_err(|e| self.sqlite(e))
    }

    /// Sessions, most recently active first (`limit` 0: all).
    pub fn sessions(&self, limit: u32, offset: u32) -> Result<Vec<SessionSummary>, StoreError> {
        let conn = self.reader()?;
        sessions(&conn, limit, offset).map_err(|e| self.sqlite(e))
    }

    /// Users, most recently active first (`limit` 0: all).
    pub fn users(&self, limit: u32, offset: u32) -> Result<Vec<UserSummary>, StoreError> {
        let conn = self.reader()?;
        users(&conn, limit, offset).map_err(|e| self.sqlite(e))
    }
}

fn limit_sql(limit: u32) -> i64 {
    if limit == 0 { -1 } else { i64::from(limit) }
}

fn list_traces(conn: &Connection, filter: &TraceFilter) -> rusqlite::Result<Vec<TraceSummary>> {
    let (where_sql, mut args) = where_clause(filter);
    args.push(SqlValue::Integer(limit_sql(filter.limit)));
    args.push(SqlValue::Integer(i64::from(filter.offset)));
    let n = args.len();
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM traces t {where_sql} {} LIMIT ?{} OFFSET ?{n}",
        order_clause(filter),
        n - 1
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut traces = stmt
        .query_map(params_from_iter(args), summary_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    attach_score_briefs(conn, &mut traces)?;
    Ok(traces)
}

fn attach_score_briefs(conn: &Connection, traces: &mut [TraceSummary]) -> rusqlite::Result<()> {
    if traces.is_empty() {
        return Ok(());
    }
    let index: HashMap<String, usize> = traces
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.clone(), i))
        .collect();
    let marks = vec!["?"; traces.len()].join(",");
    let sql = format!(
        "SELECT trace_id, name, value, string_value FROM scores WHERE trace_id IN ({marks})
         ORDER BY name, timestamp, id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(traces.iter().map(|t| t.id.clone())), |r| {
        Ok((
            r.get::<_, String>(0)?,
            ScoreBrief {
                name: r.get(1)?,
                value: r.get(2)?,
                string_value: r.get(3)?,
            },
        ))
    })?;
    for row in rows {
        let (trace_id, brief) = row?;
        if let Some(&i) = index.get(&trace_id) {
            traces[i].scores.push(brief);
        }
    }
    Ok(())
}

fn trace(conn: &Connection, id: &str) -> rusqlite::Result<Option<TraceDetail>> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, t.input, t.output, t.metadata, t.public FROM traces t
         WHERE t.id = ?1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![id])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let summary = summary_from_row(row)?;
    let input = json_column(row.get(20)?);
    let output = json_column(row.get(21)?);
    let metadata = json_column(row.get(22)?);
    let public: bool = row.get(23)?;
    drop(rows);
    let mut obs_stmt = conn.prepare_cached(
        "SELECT id, trace_id, parent_observation_id, type, name, start_time, end_time,
             completion_start_time, start_ms, end_ms, model, model_parameters, usage_details,
             cost_details, total_cost, cost_estimated, level, status_message, version,
             environment, input, output, metadata, prompt_name, prompt_version
         FROM observations WHERE trace_id = ?1 ORDER BY start_ms, id",
    )?;
    let observations = obs_stmt
        .query_map(params![id], |r| {
            let start_ms: Option<i64> = r.get(8)?;
            let end_ms: Option<i64> = r.get(9)?;
            let kind: String = r.get(3)?;
            Ok(ObservationView {
                id: r.get(0)?,
                trace_id: r.get(1)?,
                parent_observation_id: r.get(2)?,
                kind: kind.to_ascii_uppercase(),
                name: r.get(4)?,
                start_time: r.get(5)?,
                end_time: r.get(6)?,
                completion_start_time: r.get(7)?,
                latency: match (start_ms, end_ms) {
                    (Some(s), Some(e)) => Some((e - s).max(0) as f64 / 1000.0),
                    _ => None,
                },
                model: r.get(10)?,
                model_parameters: json_column(r.get(11)?),
                usage_details: json_column(r.get(12)?),
                cost_details: json_column(r.get(13)?),
                total_cost: r.get(14)?,
                cost_estimated: r.get(15)?,
                level: r.get(16)?,
                status_message: r.get(17)?,
                version: r.get(18)?,
                environment: r.get(19)?,
                input: json_column(r.get(20)?),
                output: json_column(r.get(21)?),
                metadata: json_column(r.get(22)?),
                prompt_name: r.get(23)?,
                prompt_version: r.get(24)?,
                start_ms,
                end_ms,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut score_stmt = conn.prepare_cached(
        "SELECT id, trace_id, observation_id, session_id, name, value, string_value, data_type,
             source, comment, metadata, environment, timestamp
         FROM scores WHERE trace_id = ?1 ORDER BY timestamp, name, id",
    )?;
    let score_details = score_stmt
        .query_map(params![id], |r| {
            Ok(ScoreView {
                id: r.get(0)?,
                trace_id: r.get(1)?,
                observation_id: r.get(2)?,
                session_id: r.get(3)?,
                name: r.get(4)?,
                value: r.get(5)?,
                string_value: r.get(6)?,
                data_type: r.get(7)?,
                source: r.get(8)?,
                comment: r.get(9)?,
                metadata: json_column(r.get(10)?),
                environment: r.get(11)?,
                timestamp: r.get(12)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(TraceDetail {
        summary,
        input,
        output,
        metadata,
        public,
        observations,
        score_details,
    }))
}

fn sessions(conn: &Connection, limit: u32, offset: u32) -> rusqlite::Result<Vec<SessionSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT session_id, count(*), min(timestamp), max(timestamp),
             json_group_array(DISTINCT user_id) FILTER (WHERE user_id IS NOT NULL),
             sum(total_cost), sum(total_tokens), sum(error_count)
         FROM traces WHERE session_id IS NOT NULL AND timestamp IS NOT NULL
         GROUP BY session_id ORDER BY max(ts_ms) DESC, session_id LIMIT ?1 OFFSET ?2",
    )?;
    stmt.query_map(params![limit_sql(limit), offset], |r| {
        let users: Option<String> = r.get(4)?;
        Ok(SessionSummary {
            id: r.get(0)?,
            trace_count: r.get(1)?,
            first_timestamp: r.get(2)?,
            last_timestamp: r.get(3)?,
            user_ids: users
                .and_then(|u| serde_json::from_str(&u).ok())
                .unwrap_or_default(),
            total_cost: r.get(5)?,
            total_tokens: r.get(6)?,
            error_count: r.get(7)?,
        })
    })?
    .collect()
}

fn users(conn: &Connection, limit: u32, offset: u32) -> rusqlite::Result<Vec<UserSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, count(*), count(DISTINCT session_id), min(timestamp), max(timestamp),
             sum(total_cost), sum(total_tokens), sum(error_count)
         FROM traces WHERE user_id IS NOT NULL AND timestamp IS NOT NULL
         GROUP BY user_id ORDER BY max(ts_ms) DESC, user_id LIMIT ?1 OFFSET ?2",
    )?;
    stmt.query_map(params![limit_sql(limit), offset], |r| {
        Ok(UserSummary {
            id: r.get(0)?,
            trace_count: r.get(1)?,
            session_count: r.get(2)?,
            first_timestamp: r.get(3)?,
            last_timestamp: r.get(4)?,
            total_cost: r.get(5)?,
            total_tokens: r.get(6)?,
            error_count: r.get(7)?,
        })
    })?
    .collect()
}
