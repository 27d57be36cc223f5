//! The SQLite schema (version 1).
//!
//! JSON-valued fields (`input`, `output`, `metadata`, `tags`, `usageDetails`, …) are stored as
//! JSON text; times are stored twice, as the ISO-8601 text Langfuse returns and as Unix
//! milliseconds for ordering and filtering. Tags also live in `trace_tags` so a tag filter is an
//! index lookup. The roll-up columns of `traces` (after `metadata`) are kept up to date by every
//! batch that touches the trace (see [`crate::ingest`]).

/// Applied once when the database is created (idempotent statements).
pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS store_meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO store_meta (key, value) VALUES ('schema_version', 1), ('change_seq', 0);

CREATE TABLE IF NOT EXISTS traces (
    id TEXT PRIMARY KEY,
    timestamp TEXT,
    ts_ms INTEGER,
    name TEXT,
    user_id TEXT,
    session_id TEXT,
    environment TEXT NOT NULL DEFAULT 'default',
    release TEXT,
    version TEXT,
    public INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    input TEXT,
    output TEXT,
    metadata TEXT,
    -- roll-ups over the trace's observations
    start_ms INTEGER,
    end_ms INTEGER,
    latency_ms INTEGER,
    observation_count INTEGER NOT NULL DEFAULT 0,
    generation_count INTEGER NOT NULL DEFAULT 0,
    error_count INTEGER NOT NULL DEFAULT 0,
    warning_count INTEGER NOT NULL DEFAULT 0,
    max_level INTEGER NOT NULL DEFAULT 1,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens INTEGER NOT NULL DEFAULT 0,
    total_cost REAL,
    cost_estimated INTEGER NOT NULL DEFAULT 0,
    change_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS traces_ts ON traces (ts_ms);
CREATE INDEX IF NOT EXISTS traces_name_ts ON traces (name, ts_ms);
CREATE INDEX IF NOT EXISTS traces_user_ts ON traces (user_id, ts_ms);
CREATE INDEX IF NOT EXISTS traces_session_ts ON traces (session_id, ts_ms);
CREATE INDEX IF NOT EXISTS traces_latency ON traces (latency_ms);
CREATE INDEX IF NOT EXISTS traces_cost ON traces (total_cost);
CREATE INDEX IF NOT EXISTS traces_errors ON traces (error_count, ts_ms);
CREATE INDEX IF NOT EXISTS traces_level_ts ON traces (max_level, ts_ms);

CREATE TABLE IF NOT EXISTS trace_tags (
    tag TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    PRIMARY KEY (tag, trace_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS observations (
    id TEXT PRIMARY KEY,
    trace_id TEXT,
    type TEXT NOT NULL,
    name TEXT,
    start_time TEXT,
    start_ms INTEGER,
    end_time TEXT,
    end_ms INTEGER,
    completion_start_time TEXT,
    parent_observation_id TEXT,
    level TEXT NOT NULL DEFAULT 'DEFAULT',
    status_message TEXT,
    version TEXT,
    environment TEXT NOT NULL DEFAULT 'default',
    model TEXT,
    model_parameters TEXT,
    usage_details TEXT,
    cost_details TEXT,
    cost_estimated INTEGER NOT NULL DEFAULT 0,
    total_tokens INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    total_cost REAL,
    input TEXT,
    output TEXT,
    metadata TEXT,
    prompt_name TEXT,
    prompt_version INTEGER
);
CREATE INDEX IF NOT EXISTS observations_trace ON observations (trace_id, start_ms);

CREATE TABLE IF NOT EXISTS scores (
    id TEXT PRIMARY KEY,
    trace_id TEXT,
    observation_id TEXT,
    session_id TEXT,
    name TEXT NOT NULL,
    value REAL,
    string_value TEXT,
    data_type TEXT,
    source TEXT NOT NULL DEFAULT 'API',
    comment TEXT,
    metadata TEXT,
    environment TEXT,
    timestamp TEXT
);
-- serves both a trace's scores and the score filter's correlated lookup
CREATE INDEX IF NOT EXISTS scores_trace_name ON scores (trace_id, name, value);
"#;
