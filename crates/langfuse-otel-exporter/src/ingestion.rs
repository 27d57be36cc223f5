//! The Langfuse native ingestion destination: translated events, `POST /api/public/ingestion`.
//!
//! Events are sent in batches of at most 3.5 MB. The server answers 207 with per-event
//! results; events that failed with 5xx or 429 are sent again (within the export timeout),
//! 4xx per-event errors are final and reported once per distinct message.
//!
//! Langfuse v4 (Langfuse Cloud since 2026-11-16, and self-hosted v4 in its default
//! `events_only` write mode) refuses every event but scores there with a per-event 400
//! `"Event type not accepted"`. On that answer the transport switches to OTLP for good: one
//! diagnostic names the cause, and the refused batch and every later one go to the same
//! Langfuse's OTLP endpoint (`/api/public/otel/v1/traces`, same keys) — the exporter still
//! holds the spans, so nothing is lost.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use langfuse_otel_core::otlp::batch_from_span_data;
use langfuse_otel_core::record::EventBody;
use langfuse_otel_core::time::format_iso_millis;
use langfuse_otel_core::translate::Translator;
use langfuse_otel_transport::{HttpSender, JsonBatchSender, JsonItem};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::SpanData;

use crate::config::Compression;
use crate::stats::Stats;
use langfuse_otel_transport::Diagnostics;

/// The documented request limit of `/api/public/ingestion`.
pub const MAX_BATCH_BYTES: usize = langfuse_otel_transport::batch::MAX_INGESTION_BATCH_BYTES;

/// What Langfuse v4 answers for trace and observation events on the ingestion endpoint
/// (`filterBatchForEventsOnly`; Cloud since 2026-11-16, self-hosted v4 by default).
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
    /// The same Langfuse's OTLP endpoint, for when ingestion refuses spans (Langfuse v4).
    otlp: HttpSender,
    /// The compression of `otlp` requests.
    compression: Compression,
    /// Set once Langfuse refused span events: every batch goes over `otlp` from then on.
    switched: AtomicBool,
}

/// What an ingestion export came to.
#[derive(Debug)]
pub(crate) enum Exported {
    /// Every event delivered, or the failures counted and reported.
    Done(OTelSdkResult),
    /// Langfuse refused span events as v4 does: the batch (nothing of it counted) goes over
    /// OTLP, and so does everything after it.
    SwitchToOtlp,
}

impl IngestionTransport {
    pub(crate) fn new(
        http: HttpSender,
        otlp: HttpSender,
        compression: Compression,
        max_batch_bytes: usize,
    ) -> Self {
        IngestionTransport {
            sender: JsonBatchSender::ingestion(http).max_bytes(max_batch_bytes),
            translator: Mutex::new(Translator::new()),
            otlp,
            compression,
            switched: AtomicBool::new(false),
        }
    }

    pub(crate) fn url(&self) -> &str {
        self.sender.http().url()
    }

    /// The OTLP sender, once ingestion refused spans (see the [module docs](self)).
    pub(crate) fn switched_to(&self) -> Option<(&HttpSender, Compression)> {
        self.switched
            .load(Ordering::Acquire)
            .then_some((&self.otlp, self.compression))
    }

    pub(crate) fn export(
        &self,
        spans: &[SpanData],
        resource: &Resource,
        deadline: Instant,
        stats: &Stats,
        diag: &Diagnostics,
    ) -> Exported {
        let events = translate_events(&self.translator, spans, resource);
        let report = self.sender.send(events, deadline);
        let spans_of = |items: &mut dyn Iterator<Item = &JsonItem>| {
            items.filter(|i| is_span_event(i)).count() as u64
        };
        stats.add_requests(u64::from(report.requests));
        stats.add_retried(u64::from(report.retries));
        if report
            .rejected
            .iter()
            .any(|(item, reason)| is_span_event(item) && reason.contains(NOT_ACCEPTED))
        {
            // Langfuse v4: the spans go over OTLP, counted there. Scores it took stay sent.
            stats.add_sent_events(
                report
                    .delivered
                    .iter()
                    .filter(|i| !is_span_event(i))
                    .count() as u64,
            );
            if !self.switched.swap(true, Ordering::AcqRel) {
                diag.warn_once(
                    "ingestion-events-only",
                    &format!(
                        "{} refused span events (\"{NOT_ACCEPTED}\"): this Langfuse runs v4 \
                         (Langfuse Cloud, or self-hosted in the default \
                         LANGFUSE_MIGRATION_V4_WRITE_MODE=events_only), which takes only \
                         scores on /api/public/ingestion. Sending this batch and every later \
                         one over OTLP to {} instead; to start there, build the exporter \
                         without `.ingestion()`.",
                        self.url(),
                        self.otlp.url()
                    ),
                );
            }
            return Exported::SwitchToOtlp;
        }
        stats.add_sent_events(report.delivered.len() as u64);
        stats.add_exported(spans_of(&mut report.delivered.iter()));
        let failed = report.rejected.len() + report.undelivered.len();
        stats.add_rejected_events(failed as u64);
        stats.add_dropped(
            spans_of(&mut report.rejected.iter().map(|(i, _)| i))
                + spans_of(&mut report.undelivered.iter()),
        );
        for (item, reason) in &report.rejected {
            diag.warn_once(
                &format!(
                    "ingestion-rejected-{}",
                    reason.split(' ').next().unwrap_or("")
                ),
                &format!("{} rejected a {} event: {reason}", self.url(), item.kind),
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
        Exported::Done(if failed == 0 {
            Ok(())
        } else {
            Err(OTelSdkError::InternalFailure(
                "some ingestion events were not accepted".into(),
            ))
        })
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
