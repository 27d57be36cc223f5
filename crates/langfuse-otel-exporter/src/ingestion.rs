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
use langfuse_otel_transport::{HttpSender, JsonBatchSender, JsonItem};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::SpanData;

use crate::stats::Stats;
use langfuse_otel_transport::Diagnostics;

/// The documented request limit of `/api/public/ingestion`.
pub const MAX_BATCH_BYTES: usize = langfuse_otel_transport::batch::MAX_INGESTION_BATCH_BYTES;

/// What Langfuse answers for trace and observation events since it accepts only scores on the
/// ingestion endpoint (Cloud, 2026-11-16).
const NOT_ACCEPTED: &str = "Event type not accepted";

/// The `kind` of items that do not stand for a span.
const TRACE_OR_SCORE: [&str; 2] = ["trace-create", "score-create"];

/// Whether an event stands for one span (not a trace or a score).
pub(crate) fn is_span_event(item: &JsonItem) -> bool {
    !TRACE_OR_SCORE.contains(&item.kind)
}

#[derive(Debug)]
pub(crate) struct IngestionTransport {
    sender: JsonBatchSender,
    translator: Mutex<Translator>,
}

impl IngestionTransport {
    pub(crate) fn new(http: HttpSender, max_batch_bytes: usize) -> Self {
        IngestionTransport {
            sender: JsonBatchSender::ingestion(http).max_bytes(max_batch_bytes),
            translator: Mutex::new(Translator::new()),
        }
    }

    pub(crate) fn url(&self) -> &str {
        self.sender.http().url()
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
        let report = self.sender.send(events, deadline);
        let spans_of = |items: &mut dyn Iterator<Item = &JsonItem>| {
            items.filter(|i| is_span_event(i)).count() as u64
        };
        stats.add_requests(u64::from(report.requests));
        stats.add_retried(u64::from(report.retries));
        stats.add_sent_events(report.delivered.len() as u64);
        stats.add_exported(spans_of(&mut report.delivered.iter()));
        let failed = report.rejected.len() + report.undelivered.len();
        stats.add_rejected_events(failed as u64);
        stats.add_dropped(
            spans_of(&mut report.rejected.iter().map(|(i, _)| i))
                + spans_of(&mut report.undelivered.iter()),
        );
        let mut not_accepted = false;
        for (item, reason) in &report.rejected {
            if reason.contains(NOT_ACCEPTED) {
                not_accepted = true;
            } else {
                diag.warn_once(
                    &format!(
                        "ingestion-rejected-{}",
                        reason.split(' ').next().unwrap_or("")
                    ),
                    &format!("{} rejected a {} event: {reason}", self.url(), item.kind),
                );
            }
        }
        if not_accepted {
            diag.warn_once(
                "ingestion-not-accepted",
                "Langfuse rejected trace/observation events on /api/public/ingestion \
                 (\"Event type not accepted\"): Langfuse Cloud accepts only score-create there \
                 since 2026-11-16. Send spans over OTLP instead: build the exporter with keys \
                 and without `.ingestion()` (endpoint /api/public/otel/v1/traces).",
            );
        }
        if !report.undelivered.is_empty() {
            diag.warn_once(
                "ingestion-gave-up",
                &format!(
                    "ingestion to {} gave up on {} events: {}",
                    self.url(),
                    report.undelivered.len(),
                    report
                        .last_error
                        .as_deref()
                        .unwrap_or("not delivered in time")
                ),
            );
        }
        if failed == 0 {
            Ok(())
        } else {
            Err(OTelSdkError::InternalFailure(
                "some ingestion events were not accepted".into(),
            ))
        }
    }
}

/// Translates spans to events with envelope ids and timestamps, serialized.
pub(crate) fn translate_events(
    translator: &Mutex<Translator>,
    spans: &[SpanData],
    resource: &Resource,
) -> Vec<JsonItem> {
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
            let kind = match ev.body {
                EventBody::TraceCreate(_) => "trace-create",
                EventBody::ScoreCreate(_) => "score-create",
                _ => ev.event_type(),
            };
            Some(JsonItem { id, kind, json })
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
    langfuse_otel_transport::new_uuid()
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
}
