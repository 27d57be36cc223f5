//! Shaping: spool records become upstream requests ([`Unit`]s) in the shape a sink takes.
//!
//! | sink shape | OTLP records | ingestion batches | scores |
//! |---|---|---|---|
//! | [`Shape::Langfuse`] | OTLP (as received, or canonical; through the [assembly stage](crate::assemble) when its window is on) | folded and converted for Langfuse v4: OTLP/JSON spans and scores ([`legacy_units`]) | scores |
//! | [`Shape::Events`] (`--to ingestion`, a local store) | translated events (one [`Translator`] for the bridge: the seen-trace set spans requests) | ingestion events as sent | `score-create` events, the score objects unchanged |
//! | [`Shape::OtlpOnly`] (a collector) | OTLP as received | dead-lettered, counted | dead-lettered, counted |
//! | [`Shape::Kafka`] (`--to kafka`) | OTLP as received | ingestion events as sent | scores |
//!
//! OTLP records are decoded in the format their kind (the request's content type) declares,
//! with the decoder the receiver validated them with ([`otlp::decode_as`]).
//!
//! Translated events get envelope ids derived from the record's sequence and the event
//! ([`stable_id`], stable across restarts), so a re-sent event carries the id of its first
//! sending.
//!
//! What a shape cannot carry is handed back as a [`Refusal`] for the
//! [dead-letter file](crate::sinks::dead_letter).

use langfuse_otel_core::canonical::canonical_request;
use langfuse_otel_core::otlp::wire;
use langfuse_otel_core::record::{EventBody, IngestionEvent};
use langfuse_otel_core::time::format_iso_millis;
use langfuse_otel_core::{OtlpMode, Translator, otlp};
use prost::Message;
use serde_json::{Value, json};

use crate::assemble_agents::{AgentStage, StageCounts, may_hold_agent};
use crate::sinks::dead_letter::{Reason, Refusal};
use crate::sources::receive::{Signal, otlp_format, signal_kind, signal_of};
use langfuse_otel_core::SpanBatch;
use langfuse_otel_core::agents::AssembledTurn;
use langfuse_spool::{RecordKind, SpoolRecord};

/// What a destination takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Langfuse's OTLP endpoint plus its scores and ingestion endpoints.
    Langfuse(OtlpMode),
    /// Ingestion events only (translated).
    Events,
    /// OTLP only.
    OtlpOnly,
    /// Everything as received (OTLP, ingestion events as sent, scores): a Kafka topic.
    Kafka,
}

/// One upstream request's worth of records.
#[derive(Debug, Clone, PartialEq)]
pub enum Unit {
    /// An OTLP export (traces; logs and metrics only for an OTLP collector).
    Otlp {
        /// Which signal's export it is.
        signal: Signal,
        /// Encoded export.
        body: Vec<u8>,
        /// `application/x-protobuf` or `application/json`.
        content_type: &'static str,
        /// The client's credentials (None: configured ones).
        authorization: Option<String>,
        /// Spans in it.
        spans: usize,
    },
    /// Ingestion events (whole envelopes `{id, type, timestamp, body}`).
    Events {
        /// The events.
        events: Vec<Event>,
        /// The client's credentials.
        authorization: Option<String>,
    },
    /// Score objects (`POST /api/public/scores`).
    Scores {
        /// The scores.
        scores: Vec<Value>,
        /// The client's credentials.
        authorization: Option<String>,
    },
}

/// One ingestion event of a [`Unit::Events`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Translated from OTLP by the bridge (envelope id and timestamp set): kept typed, so a
    /// local store takes it without a round trip through JSON.
    Translated(Box<IngestionEvent>),
    /// As a client sent it in an ingestion batch: forwarded unchanged, unknown keys included.
    Sent(Value),
}

impl Event {
    /// The event as JSON, as an ingestion endpoint takes it.
    pub fn into_json(self) -> Value {
        match self {
            Event::Translated(event) => serde_json::to_value(&event).unwrap_or(Value::Null),
            Event::Sent(value) => value,
        }
    }

    /// The event type (`"span-create"`, …; empty when a client sent none).
    pub fn event_type(&self) -> &str {
        match self {
            Event::Translated(event) => event.event_type(),
            Event::Sent(value) => value["type"].as_str().unwrap_or_default(),
        }
    }
}

impl Unit {
    /// Items (spans, events, scores) in it.
    pub fn items(&self) -> usize {
        match self {
            Unit::Otlp { spans, .. } => *spans,
            Unit::Events { events, .. } => events.len(),
            Unit::Scores { scores, .. } => scores.len(),
        }
    }

    /// Bytes of an encoded body (0 for events and scores, encoded when sent).
    pub fn body_len(&self) -> usize {
        match self {
            Unit::Otlp { body, .. } => body.len(),
            Unit::Events { .. } | Unit::Scores { .. } => 0,
        }
    }

    /// The credentials it travels with (None: the configured ones).
    pub fn authorization(&self) -> Option<&str> {
        match self {
            Unit::Otlp { authorization, .. }
            | Unit::Events { authorization, .. }
            | Unit::Scores { authorization, .. } => authorization.as_deref(),
        }
    }

    /// The whole unit, as sent, refused for `reason` (for the dead-letter file).
    pub fn refusal(&self, reason: Reason, detail: impl Into<String>) -> Refusal {
        let (kind, body) = match self {
            Unit::Otlp {
                signal,
                body,
                content_type,
                ..
            } => {
                let kind = if *content_type == "application/json" {
                    RecordKind::OtlpJson
                } else {
                    RecordKind::OtlpProtobuf
                };
                (signal_kind(*signal, kind), body.clone())
            }
            Unit::Events { events, .. } => {
                let events: Vec<Value> = events.iter().cloned().map(Event::into_json).collect();
                (
                    RecordKind::IngestionBatch,
                    serde_json::to_vec(&json!({ "batch": events })).unwrap_or_default(),
                )
            }
            Unit::Scores { scores, .. } => (
                RecordKind::Scores,
                serde_json::to_vec(scores).unwrap_or_default(),
            ),
        };
        Refusal {
            reason,
            detail: detail.into(),
            kind,
            authorization: self.authorization().map(str::to_owned),
            items: self.items(),
            body,
        }
    }
}

/// A spool record refused as a whole (a kind the destination cannot carry, an export that no
/// longer decodes).
fn record_refusal(record: &SpoolRecord, reason: Reason, detail: String) -> Refusal {
    Refusal {
        reason,
        detail,
        kind: record.record_kind(),
        authorization: record.authorization.clone(),
        items: record.item_count as usize,
        body: record.body.to_vec(),
    }
}

/// `items` of a record that become no trace: log records of other applications (without
/// `--logs events`, or without a span to attach to) and a coding agent's records that fit no
/// turn (its internal spans with `--agent-spans turns`). They were acknowledged, so the
/// record is kept in the dead-letter file, not dropped.
fn outside_turns(record: &SpoolRecord, items: usize) -> Refusal {
    Refusal {
        items,
        ..record_refusal(
            record,
            Reason::UnsupportedByDestination,
            format!(
                "{items} log records or spans that become no trace: other applications' logs \
                 (`--logs events` makes those with a span id Langfuse events) or a coding \
                 agent's records outside its turns (`--agent-spans all` keeps its spans)"
            ),
        )
    }
}

/// A spooled export that no longer decodes (`e`), logged and refused as a whole.
fn undecodable(record: &SpoolRecord, e: &impl std::fmt::Display) -> Refusal {
    tracing::error!(sequence = record.sequence, error = %e, "spooled export no longer decodes");
    record_refusal(record, Reason::Undecodable, e.to_string())
}

/// Turns spool records into units for one shape.
pub struct Shaper {
    shape: Shape,
    translator: Translator,
    agents: AgentStage,
}

/// Most records read per forwarding round.
pub(crate) const MAX_RECORDS: usize = 2048;
/// About the most body bytes read per forwarding round.
pub(crate) const MAX_BYTES: usize = 4 << 20;

impl Shaper {
    /// A shaper with its own translator (seen-trace set) and the default coding-agent stage.
    pub fn new(shape: Shape, translator: Translator) -> Shaper {
        Shaper {
            shape,
            translator,
            agents: AgentStage::default(),
        }
    }

    /// The shaper with this coding-agent stage.
    pub(crate) fn with_agents(mut self, agents: AgentStage) -> Shaper {
        self.agents = agents;
        self
    }

    /// The first spool sequence whose coding-agent items are held: a cursor stays below it.
    pub(crate) fn held_from(&self) -> Option<u64> {
        self.agents.held_from()
    }

    /// Whether coding-agent items are held (turns not emitted yet).
    pub(crate) fn holds_turns(&self) -> bool {
        self.agents.holds()
    }

    /// What the coding-agent stage emitted and let go since the last call.
    pub(crate) fn take_agent_counts(&mut self) -> StageCounts {
        self.agents.take_counts()
    }

    /// The coding-agent turns quiet for the window at `now_ms` (every held turn when
    /// `drain`), as units.
    pub(crate) fn turns(&mut self, now_ms: i64, drain: bool) -> (Vec<Unit>, Vec<Refusal>) {
        let mut units = Vec::new();
        let mut unsupported = Vec::new();
        let turns = self.agents.turns(now_ms, drain);
        self.push_turns(&mut units, &mut unsupported, turns, now_ms);
        (units, unsupported)
    }

    fn push_turns(
        &mut self,
        units: &mut Vec<Unit>,
        unsupported: &mut Vec<Refusal>,
        turns: Vec<AssembledTurn>,
        now_ms: i64,
    ) {
        for turn in turns {
            if let Shape::Langfuse(_) = self.shape
                && turn.batch.span_count() > 0
            {
                // Langfuse v4 reads a trace's user, session and tags from each span's own
                // attributes: a turn's go on every span of it.
                let (body, spans) = trace_fields_on_every_span(
                    canonical_request(&turn.batch).encode_to_vec(),
                    turn.batch.span_count(),
                );
                push_protobuf(units, body, turn.tenant, spans);
                continue;
            }
            let key = format!("agent:{}", turn.trace_id);
            self.push_spans(units, unsupported, &turn.batch, &key, turn.tenant, now_ms);
        }
    }

    /// Spans the bridge made (agent turns, log events) in the shape of the sink; `key`
    /// prefixes the envelope ids of translated events.
    fn push_spans(
        &mut self,
        units: &mut Vec<Unit>,
        unsupported: &mut Vec<Refusal>,
        batch: &SpanBatch<'_>,
        key: &str,
        auth: Option<String>,
        now_ms: i64,
    ) {
        if batch.span_count() == 0 {
            return;
        }
        match self.shape {
            Shape::Langfuse(_) => {
                let body = canonical_request(batch).encode_to_vec();
                push_protobuf(units, body, auth, batch.span_count());
            }
            Shape::Events => {
                self.translate_into(units, unsupported, batch, key, auth, now_ms);
            }
            // (Never called for a collector or Kafka: they get traces as received.)
            Shape::OtlpOnly | Shape::Kafka => {}
        }
    }

    /// Translates `batch` into events with envelope ids derived from `key`.
    fn translate_into(
        &mut self,
        units: &mut Vec<Unit>,
        unsupported: &mut Vec<Refusal>,
        batch: &SpanBatch<'_>,
        key: &str,
        auth: Option<String>,
        now_ms: i64,
    ) {
        let translation = self.translator.translate(batch);
        // `--compat server` leaves out what the server's schema drops: kept in the dead-letter
        // file, never just gone.
        for dropped in translation.dropped {
            let body = serde_json::json!({ "batch": [dropped.event] });
            unsupported.push(Refusal {
                reason: Reason::ServerRules,
                detail: dropped.errors.join("; "),
                kind: RecordKind::IngestionBatch,
                authorization: auth.clone(),
                items: 1,
                body: body.to_string().into_bytes(),
            });
        }
        let mut events = Vec::with_capacity(translation.events.len());
        let mut pending_trace: Vec<IngestionEvent> = Vec::new();
        for mut event in translation.events {
            if matches!(event.body, EventBody::TraceCreate(_)) {
                pending_trace.push(event);
                continue;
            }
            let span = event.body.id().unwrap_or_default().to_owned();
            for (i, mut trace) in pending_trace.drain(..).enumerate() {
                set_envelope(
                    &mut trace,
                    &format!("{key}/{span}/trace-create/{i}"),
                    now_ms,
                );
                events.push(Event::Translated(Box::new(trace)));
            }
            // (The type is quoted in the key, as ids of earlier versions.)
            let event_key = format!("{key}/{span}/\"{}\"", event.event_type());
            set_envelope(&mut event, &event_key, now_ms);
            events.push(Event::Translated(Box::new(event)));
        }
        for (i, mut trace) in pending_trace.into_iter().enumerate() {
            set_envelope(&mut trace, &format!("{key}//trace-create/{i}"), now_ms);
            events.push(Event::Translated(Box::new(trace)));
        }
        push_events(units, events, auth);
    }

    /// Shapes records (in order) into units; returns them and the records the shape cannot
    /// carry (or that no longer decode), for the dead-letter file.
    pub fn prepare(&mut self, records: &[SpoolRecord], now_ms: i64) -> (Vec<Unit>, Vec<Refusal>) {
        let mut units: Vec<Unit> = Vec::new();
        let mut unsupported = Vec::new();
        // Legacy ingestion events per credentials (for `Shape::Langfuse`).
        let mut legacy: Vec<(Option<String>, Vec<IngestionEvent>)> = Vec::new();
        for record in records {
            let auth = record.authorization.clone();
            match (record.record_kind(), self.shape) {
                (
                    RecordKind::OtlpProtobuf | RecordKind::OtlpJson,
                    Shape::Langfuse(OtlpMode::Passthrough),
                ) if may_hold_agent(&record.body) => match decode_record(record) {
                    Ok(batch) => {
                        let spans = batch.span_count();
                        let (rest, discarded) =
                            self.agents
                                .take_spans(batch, record.sequence, auth.as_deref(), now_ms);
                        if discarded > 0 {
                            unsupported.push(outside_turns(record, discarded));
                        }
                        if rest.span_count() == spans {
                            // No agent in it after all: as received.
                            push_record(&mut units, record, auth);
                        } else {
                            // The other spans of an export that also held an agent's.
                            let key = record.sequence.to_string();
                            self.push_spans(
                                &mut units,
                                &mut unsupported,
                                &rest,
                                &key,
                                auth,
                                now_ms,
                            );
                        }
                    }
                    Err(e) => unsupported.push(undecodable(record, &e)),
                },
                (
                    RecordKind::OtlpProtobuf,
                    Shape::Langfuse(OtlpMode::Passthrough) | Shape::OtlpOnly | Shape::Kafka,
                ) => {
                    push_protobuf(
                        &mut units,
                        record.body.to_vec(),
                        auth,
                        record.item_count as usize,
                    );
                }
                (
                    RecordKind::OtlpJson,
                    Shape::Langfuse(OtlpMode::Passthrough) | Shape::OtlpOnly | Shape::Kafka,
                ) => {
                    push_record(&mut units, record, auth);
                }
                (RecordKind::OtlpProtobuf | RecordKind::OtlpJson, Shape::Langfuse(_)) => {
                    match decode_record(record) {
                        Ok(batch) => {
                            let (batch, discarded) = self.agents.take_spans(
                                batch,
                                record.sequence,
                                auth.as_deref(),
                                now_ms,
                            );
                            if discarded > 0 {
                                unsupported.push(outside_turns(record, discarded));
                            }
                            if batch.span_count() > 0 {
                                let body = canonical_request(&batch).encode_to_vec();
                                push_protobuf(&mut units, body, auth, batch.span_count());
                            }
                        }
                        // Validated on receipt, so only a decoder change gets here.
                        Err(e) => unsupported.push(undecodable(record, &e)),
                    }
                }
                (RecordKind::OtlpProtobuf | RecordKind::OtlpJson, Shape::Events) => {
                    match decode_record(record) {
                        Ok(batch) => {
                            let (batch, discarded) = self.agents.take_spans(
                                batch,
                                record.sequence,
                                auth.as_deref(),
                                now_ms,
                            );
                            if discarded > 0 {
                                unsupported.push(outside_turns(record, discarded));
                            }
                            let key = record.sequence.to_string();
                            self.translate_into(
                                &mut units,
                                &mut unsupported,
                                &batch,
                                &key,
                                auth,
                                now_ms,
                            );
                        }
                        Err(e) => unsupported.push(undecodable(record, &e)),
                    }
                }
                (
                    RecordKind::OtlpLogsProtobuf
                    | RecordKind::OtlpLogsJson
                    | RecordKind::OtlpMetricsProtobuf
                    | RecordKind::OtlpMetricsJson,
                    Shape::OtlpOnly,
                ) => {
                    // A collector gets every signal as received.
                    let (signal, format) = signal_of(record.record_kind())
                        .unwrap_or((Signal::Logs, otlp::Format::Protobuf));
                    units.push(Unit::Otlp {
                        signal,
                        body: record.body.to_vec(),
                        content_type: match format {
                            otlp::Format::Json => "application/json",
                            otlp::Format::Protobuf => "application/x-protobuf",
                        },
                        authorization: auth,
                        spans: record.item_count as usize,
                    });
                }
                (
                    RecordKind::OtlpLogsProtobuf | RecordKind::OtlpLogsJson,
                    Shape::Langfuse(_) | Shape::Events,
                ) => {
                    let format =
                        signal_of(record.record_kind()).map_or(otlp::Format::Protobuf, |(_, f)| f);
                    match otlp::decode_logs_as(format, &record.body) {
                        Ok(batch) => {
                            let (events, left_out) = self.agents.take_logs(
                                batch,
                                record.sequence,
                                auth.as_deref(),
                                now_ms,
                            );
                            if left_out > 0 {
                                unsupported.push(outside_turns(record, left_out));
                            }
                            if let Some(events) = events {
                                let key = format!("{}/logs", record.sequence);
                                self.push_spans(
                                    &mut units,
                                    &mut unsupported,
                                    &events,
                                    &key,
                                    auth,
                                    now_ms,
                                );
                            }
                        }
                        Err(e) => unsupported.push(undecodable(record, &e)),
                    }
                }
                (RecordKind::IngestionBatch, Shape::Langfuse(_)) => {
                    // Legacy ingestion for Langfuse v4: folded per id with the round's other
                    // events of the same credentials, sent as spans and scores (below).
                    let mut events = Vec::new();
                    for event in batch_events(&record.body) {
                        match serde_json::from_value::<IngestionEvent>(event.clone()) {
                            Ok(event) => events.push(event),
                            // `sdk-log` (answered and logged on receipt) has no record.
                            Err(_) if event["type"] == "sdk-log" => {}
                            Err(e) => unsupported.push(Refusal {
                                reason: Reason::UnsupportedByDestination,
                                detail: format!("not an ingestion event of the record model: {e}"),
                                kind: RecordKind::IngestionBatch,
                                authorization: auth.clone(),
                                items: 1,
                                body: json!({ "batch": [event] }).to_string().into_bytes(),
                            }),
                        }
                    }
                    match legacy.iter_mut().find(|(a, _)| *a == auth) {
                        Some((_, all)) => all.extend(events),
                        None => legacy.push((auth, events)),
                    }
                }
                (RecordKind::IngestionBatch, Shape::Events | Shape::Kafka) => {
                    let events = batch_events(&record.body).into_iter().map(Event::Sent);
                    push_events(&mut units, events.collect(), auth);
                }
                (RecordKind::Scores, Shape::Langfuse(_) | Shape::Kafka) => {
                    let scores = json_array(&record.body);
                    match units.last_mut() {
                        Some(Unit::Scores {
                            scores: s,
                            authorization,
                        }) if *authorization == auth => {
                            s.extend(scores);
                        }
                        _ => units.push(Unit::Scores {
                            scores,
                            authorization: auth,
                        }),
                    }
                }
                (RecordKind::Scores, Shape::Events) => {
                    let events = json_array(&record.body)
                        .into_iter()
                        .map(|score| {
                            let key = format!("score/{}", score["id"].as_str().unwrap_or_default());
                            Event::Sent(json!({
                                "id": stable_id(&key),
                                "type": "score-create",
                                "timestamp": format_iso_millis(now_ms),
                                "body": score,
                            }))
                        })
                        .collect();
                    push_events(&mut units, events, auth);
                }
                (RecordKind::IngestionBatch | RecordKind::Scores, Shape::OtlpOnly)
                | (
                    RecordKind::OtlpMetricsProtobuf | RecordKind::OtlpMetricsJson,
                    Shape::Langfuse(_) | Shape::Events,
                )
                // The Kafka sink carries traces (one message per trace), ingestion batches and
                // scores; logs and metrics have no message kind there yet.
                | (
                    RecordKind::OtlpLogsProtobuf
                    | RecordKind::OtlpLogsJson
                    | RecordKind::OtlpMetricsProtobuf
                    | RecordKind::OtlpMetricsJson,
                    Shape::Kafka,
                )
                | (RecordKind::Unspecified, _) => {
                    unsupported.push(record_refusal(
                        record,
                        Reason::UnsupportedByDestination,
                        format!(
                            "the destination does not carry {}",
                            crate::sinks::dead_letter::kind_label(record.record_kind())
                        ),
                    ));
                }
            }
        }
        let turns = self.agents.turns(now_ms, false);
        self.push_turns(&mut units, &mut unsupported, turns, now_ms);
        for (auth, events) in legacy {
            units.extend(legacy_units(&events, auth));
        }
        (units, unsupported)
    }
}

/// A protobuf export of `spans` spans with the trace-level fields any span of a trace sets put
/// on every span of it that lacks them ([`wire::assemble`]), and its span count; as it was
/// when it does not cut (it was just encoded, so only a decoder change gets there).
fn trace_fields_on_every_span(body: Vec<u8>, spans: usize) -> (Vec<u8>, usize) {
    match wire::split_by_trace(&body) {
        Ok(parts) => {
            let mut out = Vec::with_capacity(body.len() + body.len() / 4);
            let spans = parts
                .iter()
                .map(|part| wire::assemble(&[part], &mut out).spans)
                .sum();
            (out, spans)
        }
        Err(_) => (body, spans),
    }
}

/// A trace record as received.
fn push_record(units: &mut Vec<Unit>, record: &SpoolRecord, auth: Option<String>) {
    if record.record_kind() == RecordKind::OtlpJson {
        units.push(Unit::Otlp {
            signal: Signal::Traces,
            body: record.body.to_vec(),
            content_type: "application/json",
            authorization: auth,
            spans: record.item_count as usize,
        });
    } else {
        push_protobuf(
            units,
            record.body.to_vec(),
            auth,
            record.item_count as usize,
        );
    }
}

/// Legacy ingestion events as Langfuse v4 takes them ([`langfuse_otel_core::legacy`]): folded
/// with Langfuse's merge rules, the traces and observations as one OTLP/JSON export (ids kept
/// verbatim), the scores for `POST /api/public/scores`.
pub fn legacy_units(events: &[IngestionEvent], authorization: Option<String>) -> Vec<Unit> {
    let folded = langfuse_otel_core::fold::fold(events);
    let mut units = Vec::with_capacity(2);
    let spans = langfuse_otel_core::legacy::spans(&folded);
    if !spans.is_empty() {
        let count = spans.len();
        let export = langfuse_otel_core::legacy::export_request(&spans);
        units.push(Unit::Otlp {
            signal: Signal::Traces,
            body: export.into_bytes(),
            content_type: "application/json",
            authorization: authorization.clone(),
            spans: count,
        });
    }
    if !folded.scores.is_empty() {
        units.push(Unit::Scores {
            scores: folded
                .scores
                .iter()
                .filter_map(|s| serde_json::to_value(s).ok())
                .collect(),
            authorization,
        });
    }
    units
}

/// An OTLP record decoded in the format its kind declares (never sniffed).
fn decode_record(
    record: &SpoolRecord,
) -> Result<langfuse_otel_core::SpanBatch<'static>, otlp::DecodeError> {
    match otlp_format(record.record_kind()) {
        Some(format) => otlp::decode_as(format, &record.body),
        None => Err(otlp::DecodeError::Shape("not an OTLP record".into())),
    }
}

fn set_envelope(event: &mut IngestionEvent, key: &str, now_ms: i64) {
    event.id = Some(stable_id(key));
    if event.timestamp.is_none() {
        event.timestamp = Some(format_iso_millis(now_ms));
    }
}

/// A UUID-shaped id derived from `key` (two FNV-1a 64-bit hashes): the same key gives the
/// same id after a restart.
pub fn stable_id(key: &str) -> String {
    let fnv = |seed: u64| {
        key.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let hi = fnv(0xcbf2_9ce4_8422_2325);
    let lo = fnv(0x8422_2325_cbf2_9ce4);
    langfuse_otel_transport::uuid_string(&((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes())
}

/// Appends `unit`, merged into the last unit when both are protobuf exports or score lists of
/// the same credentials (within [`MAX_BYTES`] for exports).
pub(crate) fn push_unit(units: &mut Vec<Unit>, unit: Unit) {
    match unit {
        Unit::Otlp {
            signal: Signal::Traces,
            body,
            content_type: "application/x-protobuf",
            authorization,
            spans,
        } => push_protobuf(units, body, authorization, spans),
        Unit::Scores {
            scores,
            authorization,
        } => match units.last_mut() {
            Some(Unit::Scores {
                scores: s,
                authorization: a,
            }) if *a == authorization => s.extend(scores),
            _ => units.push(Unit::Scores {
                scores,
                authorization,
            }),
        },
        other => units.push(other),
    }
}

fn push_protobuf(units: &mut Vec<Unit>, body: Vec<u8>, auth: Option<String>, spans: usize) {
    // Concatenated protobuf messages merge: two exports appended are one export holding the
    // resource spans of both.
    if let Some(Unit::Otlp {
        signal: Signal::Traces,
        body: b,
        content_type: "application/x-protobuf",
        authorization,
        spans: s,
    }) = units.last_mut()
        && *authorization == auth
        && b.len() + body.len() <= MAX_BYTES
    {
        b.extend_from_slice(&body);
        *s += spans;
        return;
    }
    units.push(Unit::Otlp {
        signal: Signal::Traces,
        body,
        content_type: "application/x-protobuf",
        authorization: auth,
        spans,
    });
}

fn push_events(units: &mut Vec<Unit>, events: Vec<Event>, auth: Option<String>) {
    if let Some(Unit::Events {
        events: e,
        authorization,
    }) = units.last_mut()
        && *authorization == auth
    {
        e.extend(events);
        return;
    }
    units.push(Unit::Events {
        events,
        authorization: auth,
    });
}

fn batch_events(body: &[u8]) -> Vec<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|mut v| v.get_mut("batch").map(Value::take))
        .and_then(|v| match v {
            Value::Array(a) => Some(a),
            _ => None,
        })
        .unwrap_or_default()
}

fn json_array(body: &[u8]) -> Vec<Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(a)) => a,
        Ok(other @ Value::Object(_)) => vec![other],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        seq: u64,
        kind: RecordKind,
        body: &[u8],
        auth: Option<&str>,
        items: u32,
    ) -> SpoolRecord {
        SpoolRecord {
            sequence: seq,
            kind: kind as i32,
            received_unix_ms: 0,
            authorization: auth.map(str::to_owned),
            body: bytes::Bytes::copy_from_slice(body),
            item_count: items,
        }
    }

    const EXPORT: &[u8] = br#"{"resourceSpans":[{"scopeSpans":[{"scope":{"name":"app"},"spans":[{
        "traceId":"f7a0e8d1f86e1d6a80854c2106aa25fb","spanId":"99180b94af7b795a","parentSpanId":"1111111111111111","name":"child",
        "startTimeUnixNano":"1767258000000000000","endTimeUnixNano":"1767258000250000000"}]}]}]}"#;

    #[test]
    fn the_seen_trace_set_spans_requests() {
        let mut shaper = Shaper::new(Shape::Events, Translator::new());
        let r1 = record(1, RecordKind::OtlpJson, EXPORT, None, 1);
        let (first, _) = shaper.prepare(&[r1], 0);
        let (second, _) = shaper.prepare(&[record(2, RecordKind::OtlpJson, EXPORT, None, 1)], 0);
        let count = |units: &[Unit]| match &units[0] {
            Unit::Events { events, .. } => events
                .iter()
                .filter(|e| e.event_type() == "trace-create")
                .count(),
            _ => 0,
        };
        // A child-only export: a shallow trace-create the first time only, as the server.
        assert_eq!(count(&first), 1);
        assert_eq!(count(&second), 0);
    }

    #[test]
    fn a_traces_fields_set_on_one_span_reach_every_span_of_it() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        let span = |id: u8, attributes: Vec<KeyValue>| Span {
            trace_id: vec![1; 16],
            span_id: vec![id; 8],
            parent_span_id: if id == 1 { Vec::new() } else { vec![1; 8] },
            name: format!("s{id}"),
            attributes,
            ..Span::default()
        };
        let session = KeyValue {
            key: "langfuse.session.id".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("turn-session".into())),
            }),
            ..KeyValue::default()
        };
        let export = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span(1, vec![session]), span(2, vec![]), span(3, vec![])],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        let (body, spans) = trace_fields_on_every_span(export.encode_to_vec(), 3);
        assert_eq!(spans, 3);
        let out = ExportTraceServiceRequest::decode(&body[..]).unwrap();
        let rows = &out.resource_spans[0].scope_spans[0].spans;
        assert_eq!(rows.len(), 3);
        for row in rows {
            assert!(
                row.attributes
                    .iter()
                    .any(|kv| kv.key == "langfuse.session.id"),
                "{} lacks the session",
                row.name
            );
        }
    }

    #[test]
    fn records_of_different_credentials_never_share_a_request() {
        let mut shaper = Shaper::new(Shape::Langfuse(OtlpMode::Passthrough), Translator::new());
        let (units, _) = shaper.prepare(
            &[
                record(1, RecordKind::OtlpProtobuf, b"", Some("Basic a"), 0),
                record(2, RecordKind::OtlpProtobuf, b"", Some("Basic a"), 0),
                record(3, RecordKind::OtlpProtobuf, b"", Some("Basic b"), 0),
            ],
            0,
        );
        let auths: Vec<_> = units.iter().map(Unit::authorization).collect();
        assert_eq!(auths, vec![Some("Basic a"), Some("Basic b")]);
    }

    #[test]
    fn envelope_ids_are_stable_across_restarts() {
        let mut a = Shaper::new(Shape::Events, Translator::new());
        let mut b = Shaper::new(Shape::Events, Translator::new());
        let r = record(7, RecordKind::OtlpJson, EXPORT, None, 1);
        assert_eq!(
            a.prepare(std::slice::from_ref(&r), 0).0,
            b.prepare(&[r], 0).0
        );
    }

    #[test]
    fn what_server_rules_leave_out_is_dead_lettered() {
        // A numeric `langfuse.version`: the server's schema drops the observation.
        let export = br#"{"resourceSpans":[{"scopeSpans":[{"scope":{"name":"app"},"spans":[{
            "traceId":"f7a0e8d1f86e1d6a80854c2106aa25fb","spanId":"99180b94af7b795a","name":"step",
            "startTimeUnixNano":"1767258000000000000","endTimeUnixNano":"1767258000250000000",
            "attributes":[{"key":"langfuse.version","value":{"intValue":"3"}}]}]}]}]}"#;
        let server = Translator::with_options(langfuse_otel_core::translate::TranslateOptions {
            compatibility: langfuse_otel_core::translate::Compatibility::Server,
            ..Default::default()
        });
        let mut shaper = Shaper::new(Shape::Events, server);
        let (_, refused) = shaper.prepare(&[record(1, RecordKind::OtlpJson, export, None, 1)], 0);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].reason, Reason::ServerRules);
        let body: Value = serde_json::from_slice(&refused[0].body).unwrap();
        assert_eq!(body["batch"][0]["type"], "span-create");
        // Repair mode keeps it.
        let mut repair = Shaper::new(Shape::Events, Translator::new());
        let (_, refused) = repair.prepare(&[record(1, RecordKind::OtlpJson, export, None, 1)], 0);
        assert!(refused.is_empty());
    }

    #[test]
    fn a_collector_cannot_carry_scores() {
        let mut shaper = Shaper::new(Shape::OtlpOnly, Translator::new());
        let (units, unsupported) = shaper.prepare(
            &[record(1, RecordKind::Scores, br#"[{"name":"q"}]"#, None, 1)],
            0,
        );
        assert!(units.is_empty());
        assert_eq!(unsupported.len(), 1);
        assert_eq!(unsupported[0].reason, Reason::UnsupportedByDestination);
        assert_eq!(unsupported[0].body, br#"[{"name":"q"}]"#);
    }

    #[test]
    fn kafka_takes_traces_batches_and_scores_as_received_and_refuses_logs() {
        let mut shaper = Shaper::new(Shape::Kafka, Translator::new());
        let logs = br#"{"resourceLogs":[]}"#;
        let (units, unsupported) = shaper.prepare(
            &[
                record(1, RecordKind::OtlpJson, EXPORT, None, 1),
                record(2, RecordKind::Scores, br#"[{"name":"q"}]"#, None, 1),
                record(3, RecordKind::OtlpLogsJson, logs, None, 0),
            ],
            0,
        );
        assert!(
            matches!(&units[0], Unit::Otlp { body, .. } if body.as_slice() == EXPORT),
            "{units:?}"
        );
        assert!(matches!(&units[1], Unit::Scores { scores, .. } if scores.len() == 1));
        assert_eq!(unsupported.len(), 1);
        assert_eq!(unsupported[0].reason, Reason::UnsupportedByDestination);
        assert_eq!(unsupported[0].body, logs);
    }
}
