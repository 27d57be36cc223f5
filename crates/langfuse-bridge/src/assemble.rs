//! Trace assembly: between the spool and a destination, records are grouped by trace and held
//! until the trace is quiet for the window (`--assemble-window`, default 10 s; 0 turns it
//! off), then emitted once.
//!
//! Why (Langfuse v4): its OTLP endpoint writes one row per span with the trace-level fields
//! of that span only, and stores a re-sent span id as another row. So before spans go to
//! Langfuse, the trace-level attributes any span of the trace set are put on every span that
//! does not set its own, a span id seen twice within the window is sent once (both on the
//! encoded spans, without decoding them: [`langfuse_otel_core::otlp::wire`]), and the events
//! of a legacy ingestion client are folded per id across its requests (an update after its
//! create, a trace update after the observations) before they become spans.
//!
//! [`Assembler`] holds the parts; it is pure (no I/O, the caller passes the time). Durability
//! is the caller's: held parts stay in the spool, and the destination's cursor may move only
//! below [`Assembler::low_water`], the oldest record with a part still held or not yet
//! delivered. Memory is bounded by `--assemble-max-traces` (default 100,000): past it the trace
//! quiet the longest is emitted early ([`Emitted::early`]).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use langfuse_otel_core::otlp::wire::{self, TracePart};
use langfuse_otel_core::record::{EventBody, IngestionEvent};
use langfuse_otel_core::{OtlpMode, otlp};
use langfuse_spool::{RecordKind, SpoolRecord};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::Value;

use crate::shape::{MAX_BYTES, Unit, legacy_units};
use crate::sources::receive::Signal;

/// The default quiet window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// The default bound on traces held.
pub const DEFAULT_MAX_TRACES: usize = 100_000;

/// One record's contribution to one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Part<T> {
    /// The spool sequence of the record it came from.
    pub sequence: u64,
    /// The contribution.
    pub item: T,
}

/// A trace released by the assembler.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted<T> {
    /// The trace key (trace id, with the credentials it travels with).
    pub trace: Arc<str>,
    /// Its parts, in arrival order.
    pub parts: Vec<Part<T>>,
    /// Emitted before its window ended because the bound on held traces was reached.
    pub early: bool,
}

/// A trace held. Its first part is kept in place and the key is shared with the quiet order:
/// a trace of one part costs no allocation beyond its key (held memory is read again only
/// when the trace is sent, seconds later, so the fewer places it is spread over the better).
#[derive(Debug)]
struct Held<T> {
    first: Part<T>,
    more: Vec<Part<T>>,
    last: Instant,
    generation: u64,
}

/// Parts grouped by trace, held until quiet (see the docs of the `assemble` module).
#[derive(Debug)]
pub struct Assembler<T> {
    window: Duration,
    max_traces: usize,
    traces: HashMap<Arc<str>, Held<T>>,
    /// (last touched, generation) → trace: quiet order.
    quiet: BTreeMap<(Instant, u64), Arc<str>>,
    /// Parts per record sequence not yet released (held, or emitted and not delivered).
    pending: BTreeMap<u64, usize>,
    generation: u64,
}

impl<T> Assembler<T> {
    /// An assembler with a quiet `window` (zero: every part is due at once) holding at most
    /// `max_traces` traces (at least one).
    pub fn new(window: Duration, max_traces: usize) -> Self {
        Assembler {
            window,
            max_traces: max_traces.max(1),
            traces: HashMap::new(),
            quiet: BTreeMap::new(),
            pending: BTreeMap::new(),
            generation: 0,
        }
    }

    /// Traces held.
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// Adds a part of `trace` from record `sequence`; returns the traces emitted early to keep
    /// within the bound.
    pub fn push(&mut self, trace: &str, sequence: u64, item: T, now: Instant) -> Vec<Emitted<T>> {
        *self.pending.entry(sequence).or_insert(0) += 1;
        self.generation += 1;
        let generation = self.generation;
        match self.traces.get_mut(trace) {
            Some(held) => {
                let name = self
                    .quiet
                    .remove(&(held.last, held.generation))
                    .unwrap_or_else(|| Arc::from(trace));
                held.last = now;
                held.generation = generation;
                held.more.push(Part { sequence, item });
                self.quiet.insert((now, generation), name);
            }
            None => {
                let name: Arc<str> = Arc::from(trace);
                self.traces.insert(
                    Arc::clone(&name),
                    Held {
                        first: Part { sequence, item },
                        more: Vec::new(),
                        last: now,
                        generation,
                    },
                );
                self.quiet.insert((now, generation), name);
            }
        }
        let mut early = Vec::new();
        while self.traces.len() > self.max_traces {
            match self.pop_oldest() {
                Some(mut emitted) => {
                    emitted.early = true;
                    early.push(emitted);
                }
                None => break,
            }
        }
        early
    }

    fn pop_oldest(&mut self) -> Option<Emitted<T>> {
        let (_, trace) = self.quiet.pop_first()?;
        let held = self.traces.remove(&trace)?;
        let mut parts = Vec::with_capacity(1 + held.more.len());
        parts.push(held.first);
        parts.extend(held.more);
        Some(Emitted {
            trace,
            parts,
            early: false,
        })
    }

    /// The traces quiet for the window at `now`, oldest first.
    pub fn due(&mut self, now: Instant) -> Vec<Emitted<T>> {
        let mut out = Vec::new();
        while let Some(((last, _), _)) = self.quiet.first_key_value() {
            if now.saturating_duration_since(*last) < self.window {
                break;
            }
            match self.pop_oldest() {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }

    /// Every trace held (on shutdown).
    pub fn drain(&mut self) -> Vec<Emitted<T>> {
        let mut out = Vec::with_capacity(self.traces.len());
        while let Some(e) = self.pop_oldest() {
            out.push(e);
        }
        out
    }

    /// How often a forwarder collects the due traces: a tenth of the window, at most 100 ms.
    /// Traces that become quiet close together then go out in the same requests, instead of
    /// one small request each.
    pub fn emit_every(&self) -> Duration {
        (self.window / 10).min(Duration::from_millis(100))
    }

    /// When the next trace becomes due.
    pub fn next_due(&self) -> Option<Instant> {
        self.quiet
            .first_key_value()
            .map(|((last, _), _)| *last + self.window)
    }

    /// Releases the parts of emitted traces once the destination took them (or they went to
    /// the dead-letter file), by their record sequences (one entry per part): those records
    /// no longer hold the cursor back.
    pub fn release_sequences(&mut self, sequences: &[u64]) {
        for sequence in sequences {
            if let Some(n) = self.pending.get_mut(sequence) {
                *n -= 1;
                if *n == 0 {
                    self.pending.remove(sequence);
                }
            }
        }
    }

    /// The oldest record with a part not yet released: the cursor may be committed up to the
    /// record before it (and up to the last record read when this is `None`).
    pub fn low_water(&self) -> Option<u64> {
        self.pending.keys().next().copied()
    }
}

/// What one record gives one trace.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// OTLP spans of the trace, encoded, under their resource and scope.
    Spans(TracePart),
    /// Legacy ingestion events of the trace.
    Events(Vec<IngestionEvent>),
}

/// A record split for assembly: pieces held per trace key (the credentials and the trace id:
/// records of different credentials never share a request; [`credentials_of`] reads them
/// back), and what goes on at once.
#[derive(Debug, Default)]
pub struct Split {
    /// `(key, piece)`.
    pub held: Vec<(String, Piece)>,
    /// Units sent without assembly (scores).
    pub now: Vec<Unit>,
}

/// The key of a trace: its credentials (the record's `Authorization`), a NUL, its id.
fn key(authorization: Option<&str>, trace: &str) -> String {
    let authorization = authorization.unwrap_or_default();
    let mut key = String::with_capacity(authorization.len() + 1 + trace.len());
    key.push_str(authorization);
    key.push('\0');
    key.push_str(trace);
    key
}

/// The credentials a trace key was made with (`None`: the records had none).
pub fn credentials_of(key: &str) -> Option<String> {
    key.split_once('\0')
        .map(|(authorization, _)| authorization)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
}

/// Splits a record for assembly; `None` for a record assembly does not take (the shaper's
/// ordinary path then handles it): scores, other signals, a coding agent's exports (the
/// coding-agent stage assembles those per turn), and OTLP/JSON whose ids are not hex.
pub fn split(record: &SpoolRecord) -> Option<Split> {
    let auth = record.authorization.as_deref();
    let mut out = Split::default();
    match record.record_kind() {
        // A coding agent's export goes to the coding-agent stage (its turns are its traces).
        RecordKind::OtlpProtobuf | RecordKind::OtlpJson if holds_agent(record) => {
            return None;
        }
        RecordKind::OtlpProtobuf | RecordKind::OtlpJson => {
            // Cut at the wire level: spans stay encoded (OTLP/JSON is encoded once first).
            let parts = match record.record_kind() {
                RecordKind::OtlpProtobuf => wire::split_by_trace(&record.body).ok()?,
                _ => {
                    let request =
                        serde_json::from_slice::<ExportTraceServiceRequest>(&record.body).ok()?;
                    wire::split_by_trace(&request.encode_to_vec()).ok()?
                }
            };
            for part in parts {
                let key = key(auth, &langfuse_otel_transport::hex(part.trace_id()));
                out.held.push((key, Piece::Spans(part)));
            }
        }
        RecordKind::IngestionBatch => {
            let body: Value = serde_json::from_slice(&record.body).ok()?;
            let mut at: HashMap<String, usize> = HashMap::new();
            let mut scores = Vec::new();
            for event in body
                .get("batch")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                // `sdk-log` (answered and logged on receipt) and events outside the record
                // model (refused on receipt) have no record.
                let Ok(event) = serde_json::from_value::<IngestionEvent>(event) else {
                    continue;
                };
                let trace = match &event.body {
                    // A score goes with its trace (sent once, after it); one of a session or
                    // a dataset run at once.
                    EventBody::ScoreCreate(score) => match &score.trace_id {
                        Some(trace) => trace.clone(),
                        None => {
                            scores.push(score.clone());
                            continue;
                        }
                    },
                    EventBody::TraceCreate(t) => t.id.clone().unwrap_or_default(),
                    other => match other.observation() {
                        Some(o) => o.trace_id.clone().flatten().unwrap_or_else(|| o.id.clone()),
                        None => continue,
                    },
                };
                let i = *at.entry(trace.clone()).or_insert_with(|| {
                    out.held
                        .push((key(auth, &trace), Piece::Events(Vec::new())));
                    out.held.len() - 1
                });
                if let Piece::Events(events) = &mut out.held[i].1 {
                    events.push(event);
                }
            }
            if !scores.is_empty() {
                out.now.push(Unit::Scores {
                    scores: scores
                        .iter()
                        .filter_map(|s| serde_json::to_value(s).ok())
                        .collect(),
                    authorization: record.authorization.clone(),
                });
            }
        }
        _ => return None,
    }
    Some(out)
}

/// Whether an OTLP record holds a coding agent's spans (a byte search first, so other
/// applications' exports are not decoded for it).
fn holds_agent(record: &SpoolRecord) -> bool {
    if !crate::assemble_agents::may_hold_agent(&record.body) {
        return false;
    }
    let batch = match record.record_kind() {
        RecordKind::OtlpProtobuf => otlp::decode_protobuf(&record.body),
        _ => otlp::decode_json(&record.body),
    };
    batch.is_ok_and(|batch| {
        batch.resource_spans.iter().any(|rs| {
            rs.scope_spans.iter().any(|ss| {
                langfuse_otel_core::agents::Agent::detect(&rs.resource.attributes, &ss.scope)
                    .is_some()
            })
        })
    })
}

/// Turns an emitted trace into units, and remembers legacy events for late updates.
#[derive(Debug)]
pub struct Finisher {
    mode: OtlpMode,
    /// Legacy events of traces already emitted, by key (bounded, oldest out first).
    emitted: HashMap<String, Vec<IngestionEvent>>,
    order: VecDeque<String>,
    capacity: usize,
    /// Spans dropped as re-sent within the window.
    pub duplicates: u64,
}

impl Finisher {
    /// A finisher for `mode`, remembering the legacy events of up to `capacity` traces.
    pub fn new(mode: OtlpMode, capacity: usize) -> Self {
        Finisher {
            mode,
            emitted: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            duplicates: 0,
        }
    }

    /// Appends the units of one emitted trace (`authorization`: its credentials) to `units`:
    /// its spans written into the last export of the same credentials while it has room
    /// ([`MAX_BYTES`]), else into a new one whose buffer comes from `spare` (buffers of sent
    /// requests, so that their memory is used again).
    pub fn finish(
        &mut self,
        key: &str,
        authorization: Option<String>,
        pieces: Vec<Piece>,
        units: &mut Vec<Unit>,
        spare: &mut Vec<Vec<u8>>,
    ) {
        let mut parts = Vec::new();
        let mut events = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Spans(part) => parts.push(part),
                Piece::Events(ev) => events.extend(ev),
            }
        }
        if !parts.is_empty() {
            let parts: Vec<&TracePart> = parts.iter().collect();
            match self.mode {
                OtlpMode::Canonical => {
                    if let Some(unit) = self.canonical_unit(&parts, authorization.clone()) {
                        crate::shape::push_unit(units, unit);
                    }
                }
                _ => self.write_spans(&parts, authorization.clone(), units, spare),
            }
        }
        if !events.is_empty() {
            for unit in self.events_units(key, events, authorization) {
                crate::shape::push_unit(units, unit);
            }
        }
    }

    /// The trace's spans as one export ([`wire::assemble`]: each span id once, the
    /// trace-level fields on every span), written into the last unit when it can take them.
    fn write_spans(
        &mut self,
        parts: &[&TracePart],
        authorization: Option<String>,
        units: &mut Vec<Unit>,
        spare: &mut Vec<Vec<u8>>,
    ) {
        let fits = matches!(
            units.last(),
            Some(Unit::Otlp {
                signal: Signal::Traces,
                content_type: "application/x-protobuf",
                authorization: a,
                body,
                ..
            }) if *a == authorization && body.len() < MAX_BYTES
        );
        if !fits {
            let mut body = spare.pop().unwrap_or_default();
            body.clear();
            units.push(Unit::Otlp {
                signal: Signal::Traces,
                body,
                content_type: "application/x-protobuf",
                authorization: authorization.clone(),
                spans: 0,
            });
        }
        let Some(Unit::Otlp { body, spans, .. }) = units.last_mut() else {
            return;
        };
        let start = body.len();
        let assembled = wire::assemble(parts, body);
        self.duplicates += assembled.duplicates as u64;
        *spans += assembled.spans;
        if start > 0 && body.len() > MAX_BYTES {
            // Past the bound: this trace goes in a request of its own.
            let tail = body.split_off(start);
            *spans -= assembled.spans;
            units.push(Unit::Otlp {
                signal: Signal::Traces,
                body: tail,
                content_type: "application/x-protobuf",
                authorization,
                spans: assembled.spans,
            });
        } else if *spans == 0 {
            // Every span was a duplicate: no request.
            if let Some(Unit::Otlp { body, .. }) = units.pop() {
                spare.push(body);
            }
        }
    }

    /// The trace's spans assembled, then converted to the canonical `langfuse.*` attributes.
    fn canonical_unit(
        &mut self,
        parts: &[&TracePart],
        authorization: Option<String>,
    ) -> Option<Unit> {
        let mut assembled_body = Vec::new();
        let assembled = wire::assemble(parts, &mut assembled_body);
        self.duplicates += assembled.duplicates as u64;
        if assembled.spans == 0 {
            return None;
        }
        let body = match ExportTraceServiceRequest::decode(&assembled_body[..]) {
            Ok(request) => {
                langfuse_otel_core::canonical::canonical_request(&otlp::batch_from_request(request))
                    .encode_to_vec()
            }
            // Written from spans that decoded on receipt, so only a decoder change gets
            // here: sent as assembled rather than lost.
            Err(e) => {
                tracing::warn!(error = %e, "an assembled trace does not decode; sent without the canonical conversion");
                assembled_body
            }
        };
        Some(Unit::Otlp {
            signal: Signal::Traces,
            body,
            content_type: "application/x-protobuf",
            authorization,
            spans: assembled.spans,
        })
    }

    fn events_units(
        &mut self,
        key: &str,
        events: Vec<IngestionEvent>,
        authorization: Option<String>,
    ) -> Vec<Unit> {
        let Some(before) = self.emitted.get(key) else {
            let units = legacy_units(&events, authorization);
            self.remember(key, events);
            return units;
        };
        // Late events of a trace already sent: the touched records' whole state again.
        let touched: HashSet<String> = events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::TraceCreate(t) => {
                    t.id.as_deref()
                        .map(langfuse_otel_core::legacy::trace_span_id)
                }
                other => other.id().map(str::to_owned),
            })
            .collect();
        let late_scores: Vec<Value> = events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::ScoreCreate(score) => serde_json::to_value(score).ok(),
                _ => None,
            })
            .collect();
        let mut all = before.clone();
        all.extend(events);
        let folded = langfuse_otel_core::fold::fold(&all);
        let spans: Vec<_> = langfuse_otel_core::legacy::spans(&folded)
            .into_iter()
            .filter(|s| touched.contains(&s.span_id))
            .collect();
        let mut units = Vec::new();
        if !spans.is_empty() {
            let count = spans.len();
            units.push(Unit::Otlp {
                signal: Signal::Traces,
                body: langfuse_otel_core::legacy::export_request(&spans).into_bytes(),
                content_type: "application/json",
                authorization: authorization.clone(),
                spans: count,
            });
        }
        if !late_scores.is_empty() {
            units.push(Unit::Scores {
                scores: late_scores,
                authorization,
            });
        }
        self.emitted.insert(key.to_owned(), all);
        units
    }

    fn remember(&mut self, key: &str, events: Vec<IngestionEvent>) {
        if self.emitted.insert(key.to_owned(), events).is_none() {
            self.order.push_back(key.to_owned());
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.emitted.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        Instant::now()
    }

    fn release<T>(a: &mut Assembler<T>, emitted: &Emitted<T>) {
        let sequences: Vec<u64> = emitted.parts.iter().map(|p| p.sequence).collect();
        a.release_sequences(&sequences);
    }

    #[test]
    fn a_trace_is_emitted_once_after_it_is_quiet_for_the_window() {
        let start = t0();
        let window = Duration::from_secs(10);
        let mut a = Assembler::new(window, 10);
        a.push("t1", 1, "a", start);
        a.push("t2", 2, "b", start + Duration::from_secs(1));
        a.push("t1", 3, "c", start + Duration::from_secs(5));
        assert!(a.due(start + Duration::from_secs(9)).is_empty());
        // t2 is quiet from 1 s + window; t1 only from 5 s + window (the last part counts).
        let due = a.due(start + Duration::from_secs(11));
        assert_eq!(due.len(), 1);
        assert_eq!(&*due[0].trace, "t2");
        assert_eq!(a.next_due(), Some(start + Duration::from_secs(5) + window));
        let due = a.due(start + Duration::from_secs(15));
        assert_eq!(&*due[0].trace, "t1");
        assert_eq!(
            due[0].parts.iter().map(|p| p.item).collect::<Vec<_>>(),
            ["a", "c"]
        );
        assert!(a.is_empty() && a.due(start + Duration::from_secs(100)).is_empty());
    }

    #[test]
    fn the_cursor_waits_for_held_and_undelivered_parts() {
        let start = t0();
        let mut a = Assembler::new(Duration::from_secs(10), 10);
        a.push("t1", 1, (), start);
        a.push("t2", 2, (), start + Duration::from_secs(3));
        a.push("t1", 3, (), start + Duration::from_secs(1));
        assert_eq!(a.low_water(), Some(1));
        let due = a.due(start + Duration::from_secs(12));
        assert_eq!(due.len(), 1, "t1 quiet since 1 s");
        // Emitted but not delivered yet: still holds the cursor.
        assert_eq!(a.low_water(), Some(1));
        release(&mut a, &due[0]);
        assert_eq!(a.low_water(), Some(2), "record 2 (t2) is still held");
        let rest = a.drain();
        release(&mut a, &rest[0]);
        assert_eq!(a.low_water(), None);
    }

    #[test]
    fn past_the_bound_the_quietest_trace_is_emitted_early() {
        let start = t0();
        let mut a = Assembler::new(Duration::from_secs(10), 2);
        assert!(a.push("t1", 1, (), start).is_empty());
        assert!(a.push("t2", 2, (), start).is_empty());
        a.push("t1", 3, (), start + Duration::from_secs(1));
        let early = a.push("t3", 4, (), start + Duration::from_secs(2));
        assert_eq!(early.len(), 1);
        assert_eq!((&*early[0].trace, early[0].early), ("t2", true));
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn a_zero_window_emits_at_once() {
        let start = t0();
        let mut a = Assembler::new(Duration::ZERO, 10);
        a.push("t1", 1, (), start);
        assert_eq!(a.due(start).len(), 1);
    }
}
