//! Writing ingestion events: idempotent upserts that merge like Langfuse's ingestion worker,
//! with core's merge rules ([`langfuse_otel_core::fold`], shared with the bridge).
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
//! | legacy `usage` (`input`, `output`, `total`, `inputCost`, …) | read as usage and cost details, as the server does |
//! | `input`, `output` | the last truthy value wins (`null`, `""`, `0`, `false` keep) |
//! | `metadata` | deep-merged (JSON merge patch) |
//! | trace `tags` | union, deduplicated, sorted |
//! | trace `public` | `public ?? false` on every trace event |
//! | score | every field of the latest event |
//!
//! Events without an id (a `trace-create` or `score-create` whose body has none) are skipped,
//! as the server skips them. Replaying a batch leaves the store unchanged.
//!
//! Observations referring to a trace without a `trace-create` get a trace row, which starts
//! with its first observation.
//!
//! How a batch is written: the events are grouped by id and each id's events are folded in
//! memory (the rules above, core's `fold`), so an id new to the store costs one insert; a stored
//! id is read, merged and rewritten. Each trace's roll-ups (latency, tokens, cost, error,
//! warning and observation counts) grow by its new observations in the same insert or in one
//! update, and are recomputed from all its observations when a stored observation changed.

mod merge;
mod write;

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::BufRead;

use langfuse_otel_core::fold;
use langfuse_otel_core::record::{EventBody, IngestionEvent, ObservationBody, TraceBody};
use rusqlite::Transaction;

use crate::{Store, StoreError};
use merge::{ObservationRow, RollUp, Text, TraceRow};
use write::Statements;

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
    /// Nothing is committed when the database file was deleted or replaced since the store
    /// opened it ([`StoreError::FileDeleted`], [`StoreError::FileReplaced`]).
    pub fn ingest(&self, events: &[IngestionEvent]) -> Result<IngestReport, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction().map_err(|e| self.sqlite(e))?;
        let report = apply(&tx, events).map_err(|e| self.sqlite(e))?;
        // A deleted or replaced file would take the batch with it: roll back, say so.
        self.check_file()?;
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

/// One trace's work in a batch: its `trace-create` events, the roll-ups of its observations
/// that are new to the store, and whether a stored observation changed (which needs the
/// roll-ups recomputed from all its observations).
struct TraceWork<'a> {
    id: Text<'a>,
    events: Vec<(&'a TraceBody, Option<&'a str>)>,
    new_observations: RollUp,
    recompute: bool,
}

/// One observation's events in a batch, in the order they apply.
struct ObservationEvents<'a> {
    id: &'a str,
    kind: &'static str,
    events: Vec<(&'a ObservationBody, Option<&'a str>)>,
}

impl<'a> ObservationEvents<'a> {
    /// The events folded onto `row` (`fresh`: the row is new, the first event sets the
    /// first-value-wins fields).
    fn fold(&self, row: &mut ObservationRow<'a>, fresh: bool) {
        for (i, (body, ts)) in self.events.iter().enumerate() {
            row.apply(body, *ts, fresh && i == 0);
        }
        row.derive();
    }
}

/// The traces a batch touches, in the order it first touches them.
#[derive(Default)]
struct TraceWorks<'a> {
    works: Vec<TraceWork<'a>>,
    index: HashMap<Text<'a>, usize>,
}

impl<'a> TraceWorks<'a> {
    fn get(&mut self, id: Text<'a>) -> &mut TraceWork<'a> {
        let next = self.works.len();
        let at = *self.index.entry(id.clone()).or_insert(next);
        if at == next {
            self.works.push(TraceWork {
                id,
                events: Vec::new(),
                new_observations: RollUp::default(),
                recompute: false,
            });
        }
        &mut self.works[at]
    }
}

fn apply(tx: &Transaction<'_>, events: &[IngestionEvent]) -> rusqlite::Result<IngestReport> {
    let seq: i64 = tx.query_row(
        "UPDATE store_meta SET value = value + 1 WHERE key = 'change_seq' RETURNING value",
        [],
        |r| r.get(0),
    )?;
    // Creates before updates, each in envelope-timestamp order (core's one definition).
    let order = fold::apply_order(events);

    // Group by id, keeping each id's events in order: the rules apply per id.
    let mut report = IngestReport::default();
    let mut traces = TraceWorks::default();
    let mut observations: Vec<ObservationEvents<'_>> = Vec::new();
    let mut observation_index: HashMap<&str, usize> = HashMap::new();
    let mut scores = Vec::new();
    for event in order {
        let envelope_ts = event.timestamp.as_deref();
        let (kind, body) = match &event.body {
            EventBody::TraceCreate(body) => {
                match &body.id {
                    Some(id) => {
                        traces
                            .get(Cow::Borrowed(id))
                            .events
                            .push((body, envelope_ts));
                        report.traces += 1;
                    }
                    None => report.skipped += 1,
                }
                continue;
            }
            EventBody::ScoreCreate(body) => {
                match &body.id {
                    Some(id) => {
                        scores.push((id.as_str(), body, envelope_ts));
                        report.scores += 1;
                    }
                    None => report.skipped += 1,
                }
                continue;
            }
            // An observation event, or one of a newer record model with nothing of this
            // store's schema to write.
            _ => match fold::observation_event(event) {
                Some(observation) => observation,
                None => {
                    report.skipped += 1;
                    continue;
                }
            },
        };
        report.observations += 1;
        let next = observations.len();
        let at = *observation_index.entry(&body.id).or_insert(next);
        if at == next {
            observations.push(ObservationEvents {
                id: &body.id,
                kind: kind.as_str(),
                events: Vec::with_capacity(1),
            });
        }
        observations[at].events.push((body, envelope_ts));
    }

    let mut sql = Statements::prepare(tx)?;
    // Observations: a new id is one insert of its folded events; a stored one is read,
    // merged and rewritten. New observations add to their trace's roll-ups; a changed one
    // has them recomputed.
    for group in &observations {
        let mut row = ObservationRow::new(group.kind);
        group.fold(&mut row, true);
        if sql.insert_observation(group.id, &row)? {
            if let Some(trace_id) = row.trace_id.clone() {
                traces.get(trace_id).new_observations.add(&row);
            }
            continue;
        }
        let Some(mut stored) = sql.select_observation(group.id)? else {
            continue;
        };
        group.fold(&mut stored, false);
        sql.update_observation(group.id, &stored)?;
        if let Some(trace_id) = stored.fields.trace_id {
            traces.get(Cow::Owned(trace_id.into_owned())).recompute = true;
        }
    }
    for (id, body, envelope_ts) in scores {
        sql.upsert_score(id, body, envelope_ts)?;
        if let Some(trace_id) = &body.trace_id {
            traces.get(Cow::Borrowed(trace_id));
        }
    }
    // Traces: a new id is one insert of its fields and roll-ups; a stored one gets its fields
    // merged and its roll-ups added to (or recomputed).
    for work in &traces.works {
        let id = work.id.as_ref();
        let mut row = TraceRow::default();
        for (body, ts) in &work.events {
            row.apply(body, *ts);
        }
        if sql.insert_trace(id, &row, &work.new_observations, seq)? {
            sql.insert_tags(id, &row)?;
            if work.recompute {
                sql.recompute_roll_up(id, seq)?;
            }
            continue;
        }
        if !work.events.is_empty()
            && let Some(mut stored) = sql.select_trace(id)?
        {
            for (body, ts) in &work.events {
                stored.apply(body, *ts);
            }
            sql.update_trace_fields(id, &stored, seq)?;
            sql.insert_tags(id, &stored)?;
        }
        if work.recompute {
            sql.recompute_roll_up(id, seq)?;
        } else if work.new_observations.observations > 0 {
            let mut roll_up = sql.select_roll_up(id)?;
            roll_up.merge(&work.new_observations);
            sql.update_roll_up(id, &roll_up, seq)?;
        } else {
            sql.touch_trace(id, seq)?;
        }
        sql.timestamp_from_start(id)?;
    }
    report.touched_traces = traces.works.len() as u64;
    Ok(report)
}
