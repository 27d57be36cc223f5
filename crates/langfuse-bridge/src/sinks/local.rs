//! The embedded trace store as a sink (`--to local`).

use std::time::{Duration, Instant};

use super::contract::{Retry, Sent, Sink};
use super::dead_letter::{Reason, Refusal};
use crate::shape::{Event, Shape, Unit};
use langfuse_spool::RecordKind;

/// The embedded trace store (`--to local`): translated events are upserted (idempotent, so a
/// re-sent record changes nothing). When the store fails — its database file deleted or
/// replaced under the running bridge included — the records stay in the spool and are
/// retried (never committed, never dropped), and an error names the problem.
pub struct LocalSink {
    store: langfuse_local::Store,
    /// Whether the last write failed (the error is logged once per failing streak).
    failing: bool,
}

impl LocalSink {
    /// Writes into `store`.
    pub fn new(store: langfuse_local::Store) -> LocalSink {
        LocalSink {
            store,
            failing: false,
        }
    }
}

impl Sink for LocalSink {
    fn shape(&self) -> Shape {
        Shape::Events
    }

    fn send(&mut self, unit: &mut Unit, _deadline: Instant) -> Sent {
        let Unit::Events {
            events,
            authorization,
        } = unit
        else {
            return Sent::unsupported(unit, "the local store takes ingestion events only");
        };
        // Translated events go in as they are; a client's are read into the same model. One
        // that does not fit, or that the store would skip, is refused for good (dead-lettered).
        let mut parsed = Vec::with_capacity(events.len());
        let mut refused = Vec::new();
        let refuse = |event: Event, detail: String| {
            let event = event.into_json();
            Refusal {
                reason: Reason::StoreRejected,
                detail,
                kind: RecordKind::IngestionBatch,
                authorization: authorization.clone(),
                items: 1,
                body: serde_json::to_vec(&serde_json::json!({ "batch": [event] }))
                    .unwrap_or_default(),
            }
        };
        for event in events.drain(..) {
            let typed = match event {
                Event::Translated(e) => *e,
                Event::Sent(value) => {
                    match <langfuse_otel_core::IngestionEvent as serde::Deserialize>::deserialize(
                        &value,
                    ) {
                        Ok(e) => e,
                        Err(e) => {
                            refused.push(refuse(Event::Sent(value), e.to_string()));
                            continue;
                        }
                    }
                }
            };
            if typed.body.id().is_none() {
                let detail = format!(
                    "a {} without body.id: the store skips it, as Langfuse does",
                    typed.event_type()
                );
                refused.push(refuse(Event::Translated(Box::new(typed)), detail));
                continue;
            }
            parsed.push(typed);
        }
        let rejected = refused.len();
        match self.store.ingest(&parsed) {
            Ok(_) => {
                if std::mem::replace(&mut self.failing, false) {
                    tracing::info!("the local store accepts writes again");
                }
                Sent {
                    delivered: parsed.len(),
                    rejected,
                    refused,
                    retry: None,
                }
            }
            Err(e) => {
                let lost = e.is_file_lost();
                if !std::mem::replace(&mut self.failing, true) {
                    if lost {
                        tracing::error!(error = %e, events = parsed.len(), "the local store's database file is gone; records stay in the spool until the bridge is restarted");
                    } else {
                        tracing::error!(error = %e, events = parsed.len(), "the local store failed; records stay in the spool and are retried");
                    }
                }
                events.extend(parsed.into_iter().map(|e| Event::Translated(Box::new(e))));
                Sent {
                    rejected,
                    refused,
                    retry: Some(Retry {
                        reason: format!("the local store failed: {e}"),
                        // Only a restart brings a lost file back: retry seldom.
                        delay: Some(Duration::from_secs(if lost { 5 } else { 1 })),
                    }),
                    ..Sent::default()
                }
            }
        }
    }
}
