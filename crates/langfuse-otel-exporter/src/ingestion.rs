//! The Langfuse native ingestion destination: translated events, `POST /api/public/ingestion`.
//!
//! Events are sent in batches of at most 3.5 MB. The server answers 207 with per-event
//! results; events that failed with 5xx or 429 are sent again (within the export timeout),
//! 4xx per-event errors are final and reported once per distinct message.

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use langfuse_otel_core::otlp::batch_from_span_data;
use langfuse_otel_core::record::EventBody;
use langfuse_otel_core::time::format_iso_millis;
use langfuse_otel_core::translate::Translator;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::SpanData;
use serde::Deserialize;

use crate::exporter::Diagnostics;
use crate::http::{HttpSender, Outcome, RetryPolicy};
use crate::stats::Stats;

/// The documented request limit of `/api/public/ingestion`.
pub const MAX_BATCH_BYTES: usize = 3_500_000;

/// What Langfuse answers for trace and observation events since it accepts only scores on the
/// ingestion endpoint (Cloud, 2026-11-16).
const NOT_ACCEPTED: &str = "Event type not accepted";

/// One serialized event awaiting delivery.
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent {
    pub(crate) id: String,
    pub(crate) event_type: &'static str,
    pub(crate) json: String,
    /// Observation events stand for one span each.
    pub(crate) is_observation: bool,
}

#[derive(Debug, Deserialize, Default)]
struct IngestionResponse {
    /// Successes need no handling: an event not listed in `errors` was accepted.
    #[serde(default)]
    errors: Vec<EventResult>,
}

#[derive(Debug, Deserialize)]
struct EventResult {
    id: serde_json::Value,
    #[serde(default)]
    status: u16,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Debug)]
pub(crate) struct IngestionTransport {
    sender: HttpSender,
    retry: RetryPolicy,
    max_batch_bytes: usize,
    translator: Mutex<Translator>,
}

impl IngestionTransport {
    pub(crate) fn new(sender: HttpSender, retry: RetryPolicy, max_batch_bytes: usize) -> Self {
        IngestionTransport {
            sender,
            retry,
            max_batch_bytes,
            translator: Mutex::new(Translator::new()),
        }
    }

    pub(crate) fn url(&self) -> &str {
        self.sender.url()
    }

    pub(crate) fn export(
        &self,
        spans: &[SpanData],
        resource: &Resource,
        deadline: Instant,
        stats: &Stats,
        diag: &Diagnostics,
    ) -> OTelSdkResult {
        let events = translate_events(&self.translator, spans, resource);
        let mut ok = true;
        let mut chunk: Vec<PendingEvent> = Vec::new();
        let mut chunk_bytes = BATCH_OVERHEAD;
        for ev in events {
            let size = ev.json.len() + 1;
            if size + BATCH_OVERHEAD > self.max_batch_bytes {
                self.fail(&[ev], stats);
                diag.once(
                    "ingestion-event-too-large",
                    "an ingestion event is larger than the batch limit and is dropped",
                );
                ok = false;
                continue;
            }
            if chunk_bytes + size > self.max_batch_bytes {
                ok &= self.send(std::mem::take(&mut chunk), deadline, stats, diag);
                chunk_bytes = BATCH_OVERHEAD;
            }
            chunk_bytes += size;
            chunk.push(ev);
        }
        if !chunk.is_empty() {
            ok &= self.send(chunk, deadline, stats, diag);
        }
        if ok {
            Ok(())
        } else {
            Err(OTelSdkError::InternalFailure(
                "some ingestion events were not accepted".into(),
            ))
        }
    }

    fn fail(&self, events: &[PendingEvent], stats: &Stats) {
        stats.add_rejected_events(events.len() as u64);
        stats.add_dropped(events.iter().filter(|e| e.is_observation).count() as u64);
    }

    /// Sends one chunk until every event succeeded or finally failed; true if all succeeded.
    fn send(
        &self,
        mut pending: Vec<PendingEvent>,
        deadline: Instant,
        stats: &Stats,
        diag: &Diagnostics,
    ) -> bool {
        let mut all_ok = true;
        let mut round = 0u32;
        while !pending.is_empty() {
            round += 1;
            let body = batch_body(&pending);
            match self.sender.post(body.as_bytes(), None, deadline, stats) {
                Outcome::Delivered { status, body } => {
                    stats.add_requests(1);
                    let resp: IngestionResponse = match serde_json::from_slice(&body) {
                        Ok(r) => r,
                        Err(_) => {
                            if status == 207 {
                                // Per-event results unknown: counted as accepted, said once.
                                diag.once(
                                    "ingestion-unreadable-207",
                                    "an ingestion 207 answer had an unreadable body; its events \
                                     are counted as accepted",
                                );
                            }
                            IngestionResponse::default()
                        }
                    };
                    let (retry, failed) = self.settle(pending, &resp, stats, diag);
                    all_ok &= failed == 0;
                    pending = retry;
                    if pending.is_empty() {
                        break;
                    }
                    let delay = self.retry.backoff(round);
                    if round >= self.retry.max_attempts || Instant::now() + delay >= deadline {
                        diag.once(
                            "ingestion-retry-exhausted",
                            "ingestion events kept failing with 5xx/429 and are dropped",
                        );
                        self.fail(&pending, stats);
                        return false;
                    }
                    stats.add_retried(1);
                    std::thread::sleep(delay);
                }
                Outcome::TooLarge => {
                    if pending.len() < 2 {
                        self.fail(&pending, stats);
                        return false;
                    }
                    let second = pending.split_off(pending.len() / 2);
                    let a = self.send(pending, deadline, stats, diag);
                    let b = self.send(second, deadline, stats, diag);
                    return all_ok && a && b;
                }
                Outcome::Rejected { status, message } => {
                    diag.once(
                        &format!("ingestion-rejected-{status}"),
                        &format!(
                            "{} rejected an ingestion batch with HTTP {status}: {message}",
                            self.sender.url()
                        ),
                    );
                    self.fail(&pending, stats);
                    return false;
                }
                Outcome::GaveUp { reason, .. } => {
                    diag.once(
                        "ingestion-gave-up",
                        &format!("ingestion to {} gave up: {reason}", self.sender.url()),
                    );
                    self.fail(&pending, stats);
                    return false;
                }
            }
        }
        all_ok
    }

    /// Applies a 207 body: returns the events to retry and the number finally failed.
    fn settle(
        &self,
        pending: Vec<PendingEvent>,
        resp: &IngestionResponse,
        stats: &Stats,
        diag: &Diagnostics,
    ) -> (Vec<PendingEvent>, usize) {
        let id_of = |v: &serde_json::Value| v.as_str().map(str::to_string);
        let mut errors = std::collections::HashMap::new();
        for e in &resp.errors {
            if let Some(id) = id_of(&e.id) {
                errors.insert(id, e);
            }
        }
        let mut retry = Vec::new();
        let mut failed = Vec::new();
        let mut not_accepted = 0usize;
        for ev in pending {
            match errors.get(&ev.id) {
                None => {
                    // Listed as success, or not listed at all (the server reports what it
                    // skipped as 201): delivered.
                    stats.add_sent_events(1);
                    if ev.is_observation {
                        stats.add_exported(1);
                    }
                }
                Some(e) if e.status == 429 || e.status >= 500 => retry.push(ev),
                Some(e) => {
                    let message = e.message.clone().unwrap_or_default();
                    let detail = e
                        .error
                        .as_ref()
                        .map(|v| match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .unwrap_or_default();
                    if message.contains(NOT_ACCEPTED) || detail.contains(NOT_ACCEPTED) {
                        not_accepted += 1;
                    } else {
                        diag.once(
                            &format!("ingestion-event-{}-{message}", e.status),
                            &format!(
                                "Langfuse rejected a {} event with {}: {message} {detail}",
                                ev.event_type, e.status
                            ),
                        );
                    }
                    failed.push(ev);
                }
            }
        }
        if not_accepted > 0 {
            diag.once(
                "ingestion-not-accepted",
                "Langfuse rejected trace/observation events on /api/public/ingestion \
                 (\"Event type not accepted\"): Langfuse Cloud accepts only score-create there \
                 since 2026-11-16. Send spans over OTLP instead: build the exporter with keys \
                 and without `.ingestion()` (endpoint /api/public/otel/v1/traces).",
            );
        }
        let n_failed = failed.len();
        self.fail(&failed, stats);
        (retry, n_failed)
    }
}

/// `{"batch":[` + `]}`.
const BATCH_OVERHEAD: usize = 12;

fn batch_body(events: &[PendingEvent]) -> String {
    let len: usize = events.iter().map(|e| e.json.len() + 1).sum();
    let mut body = String::with_capacity(len + BATCH_OVERHEAD);
    body.push_str("{\"batch\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&e.json);
    }
    body.push_str("]}");
    body
}

/// Translates spans to events with envelope ids and timestamps, serialized.
pub(crate) fn translate_events(
    translator: &Mutex<Translator>,
    spans: &[SpanData],
    resource: &Resource,
) -> Vec<PendingEvent> {
    let batch = batch_from_span_data(spans, resource);
    let translation = match translator.lock() {
        Ok(mut t) => t.translate(&batch),
        Err(poisoned) => poisoned.into_inner().translate(&batch),
    };
    let now = format_iso_millis(now_ms());
    translation
        .events
        .into_iter()
        .filter_map(|mut ev| {
            let id = new_event_id();
            ev.id = Some(id.clone());
            if ev.timestamp.is_none() {
                ev.timestamp = Some(now.clone());
            }
            let json = serde_json::to_string(&ev).ok()?;
            Some(PendingEvent {
                id,
                event_type: ev.event_type(),
                is_observation: !matches!(
                    ev.body,
                    EventBody::TraceCreate(_) | EventBody::ScoreCreate(_)
                ),
                json,
            })
        })
        .collect()
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A random UUID v4: the id of an ingestion event envelope (the server's de-duplication key)
/// or of a score.
///
/// ```
/// let id = langfuse_otel_exporter::new_event_id();
/// assert_eq!((id.len(), &id[14..15]), (36, "4"));
/// ```
pub fn new_event_id() -> String {
    let mut b: [u8; 16] = fastrand::u128(..).to_le_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_uuid_v4() {
        let id = new_event_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_event_id());
    }

    #[test]
    fn batch_body_is_a_json_batch() {
        let ev = |id: &str| PendingEvent {
            id: id.into(),
            event_type: "span-create",
            json: format!(r#"{{"id":"{id}"}}"#),
            is_observation: true,
        };
        let body = batch_body(&[ev("a"), ev("b")]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["batch"][1]["id"], "b");
    }
}
