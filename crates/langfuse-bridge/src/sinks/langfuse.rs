//! Langfuse as a sink (`--to langfuse`, `--to ingestion`): OTLP to `/api/public/otel/v1/traces`
//! (with `x-langfuse-ingestion-version: 4`), ingestion events to `/api/public/ingestion` (207
//! per-event results honoured), scores to `/api/public/scores`.

use std::time::Instant;

use langfuse_otel_transport::{ContentEncoding, HttpSender, JsonBatchSender, Payload};

use super::contract::{Sent, Sink};
use super::upstream::{per_request, send_json, settle_outcome};
use crate::shape::{Shape, Unit};
use crate::sources::receive::Signal;
use langfuse_spool::RecordKind;

/// Langfuse (`--to langfuse` and `--to ingestion`).
pub struct LangfuseSink {
    pub(super) shape: Shape,
    pub(super) otlp: HttpSender,
    pub(super) ingestion: JsonBatchSender,
    pub(super) scores: JsonBatchSender,
    pub(super) keys_configured: bool,
}

impl Sink for LangfuseSink {
    fn shape(&self) -> Shape {
        self.shape
    }

    fn send(&mut self, unit: &mut Unit, deadline: Instant) -> Sent {
        let keys = self.keys_configured;
        match unit {
            Unit::Otlp { signal, .. } if *signal != Signal::Traces => {
                Sent::unsupported(unit, "Langfuse takes OTLP traces only")
            }
            Unit::Otlp {
                body,
                content_type,
                authorization,
                spans,
                ..
            } => {
                let payload = Payload::new(
                    std::mem::take(body),
                    *content_type,
                    ContentEncoding::Identity,
                    *spans,
                );
                let outcome = self.otlp.send_with_headers(
                    &payload,
                    &per_request(authorization.as_deref()),
                    deadline,
                );
                *body = payload.body;
                settle_outcome(outcome, unit, keys)
            }
            Unit::Events {
                events,
                authorization,
            } => send_json(
                &self.ingestion,
                events,
                "event",
                RecordKind::IngestionBatch,
                authorization.as_deref(),
                deadline,
                keys,
            ),
            Unit::Scores {
                scores,
                authorization,
            } => send_json(
                &self.scores,
                scores,
                "score",
                RecordKind::Scores,
                authorization.as_deref(),
                deadline,
                keys,
            ),
        }
    }
}
