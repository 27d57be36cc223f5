//! What the network sinks share: the retry policy of one send round, credentials per request,
//! settling a transport outcome into [`Sent`] (refusals kept for the dead-letter file), and
//! JSON batches (ingestion events, scores) with per-item results.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use langfuse_otel_transport::{JsonBatchSender, JsonItem, Outcome, RetryPolicy, Secret, Status};
use langfuse_spool::RecordKind;
use serde_json::Value;

use super::contract::{Retry, Sent};
use super::dead_letter::{Reason, Refusal};
use crate::shape::{Event, Unit};

pub(super) fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        jitter: 0.2,
    }
}

pub(super) fn per_request(auth: Option<&str>) -> Vec<(String, Secret)> {
    auth.map(|a| vec![("authorization".to_owned(), Secret::new(a))])
        .unwrap_or_default()
}

/// Whether a final refusal must keep the items (configured keys refused: fix the keys).
pub(super) fn keep_on_refusal(
    status: Option<Status>,
    keys_configured: bool,
    client_auth: bool,
) -> bool {
    matches!(
        status,
        Some(Status::Http(401 | 403)) | Some(Status::Grpc(7 | 16))
    ) && keys_configured
        && !client_auth
}

pub(super) fn settle_outcome(outcome: Outcome, unit: &Unit, keys_configured: bool) -> Sent {
    let items = unit.items();
    let client_auth = unit.authorization().is_some();
    match outcome {
        Outcome::Delivered { .. } => Sent {
            delivered: items,
            ..Sent::default()
        },
        Outcome::Rejected { status, reason, .. } => {
            if keep_on_refusal(status, keys_configured, client_auth) {
                Sent {
                    retry: Some(Retry {
                        reason: format!("the upstream refused the configured keys: {reason}"),
                        delay: Some(Duration::from_secs(10)),
                    }),
                    ..Sent::default()
                }
            } else {
                tracing::warn!(%reason, items, "the upstream refused items for good");
                Sent {
                    rejected: items,
                    refused: vec![unit.refusal(Reason::UpstreamRejected, reason)],
                    ..Sent::default()
                }
            }
        }
        Outcome::Undelivered { reason, .. } => Sent {
            retry: Some(Retry {
                reason,
                delay: None,
            }),
            ..Sent::default()
        },
        _ => Sent {
            retry: Some(Retry {
                reason: "unknown outcome".into(),
                delay: None,
            }),
            ..Sent::default()
        },
    }
}

/// What [`send_json`] sends: score objects, or ingestion events.
pub(super) trait JsonUnit {
    /// The id the upstream's answer refers to.
    fn id(&self) -> &str;
    /// The JSON text sent.
    fn json(&self) -> String;
}

impl JsonUnit for Value {
    fn id(&self) -> &str {
        self["id"].as_str().unwrap_or_default()
    }

    fn json(&self) -> String {
        self.to_string()
    }
}

impl JsonUnit for Event {
    fn id(&self) -> &str {
        match self {
            Event::Translated(event) => event.id.as_deref().unwrap_or_default(),
            Event::Sent(value) => value.id(),
        }
    }

    fn json(&self) -> String {
        match self {
            // Straight to text: through a `Value` first, a large input would be copied once more.
            Event::Translated(event) => serde_json::to_string(event).unwrap_or_default(),
            Event::Sent(value) => value.to_string(),
        }
    }
}

pub(super) fn items_of<T: JsonUnit>(values: &[T], kind: &'static str) -> Vec<JsonItem> {
    values
        .iter()
        .map(|v| JsonItem::new(v.id().to_owned(), kind, v.json()))
        .collect()
}

/// Sends JSON items; keeps in `values` only what must be sent again. Items refused for good
/// come back one [`Refusal`] each, of `refused_kind`.
pub(super) fn send_json<T: JsonUnit>(
    sender: &JsonBatchSender,
    values: &mut Vec<T>,
    kind: &'static str,
    refused_kind: RecordKind,
    auth: Option<&str>,
    deadline: Instant,
    keys_configured: bool,
) -> Sent {
    let report = sender.send_with_headers(items_of(values, kind), &per_request(auth), deadline);
    let mut sent = Sent {
        delivered: report.delivered.len(),
        rejected: report.rejected.len(),
        refused: Vec::new(),
        retry: None,
    };
    let mut again: HashSet<String> = report.undelivered.iter().map(|i| i.id.clone()).collect();
    // Refused with the configured keys: keep them (see the module docs).
    let refused_keys = keep_on_refusal(report.last_status, keys_configured, auth.is_some());
    if refused_keys {
        again.extend(report.rejected.iter().map(|(i, _)| i.id.clone()));
        sent.rejected = 0;
    } else {
        for (item, reason) in &report.rejected {
            tracing::warn!(id = %item.id, %reason, "the upstream refused an item for good");
            // One line per item, as it was sent: an event in a batch, a score in a list.
            let body = match refused_kind {
                RecordKind::IngestionBatch => format!("{{\"batch\":[{}]}}", item.json),
                _ => format!("[{}]", item.json),
            };
            sent.refused.push(Refusal {
                reason: Reason::UpstreamRejected,
                detail: reason.clone(),
                kind: refused_kind,
                authorization: auth.map(str::to_owned),
                items: 1,
                body: body.into_bytes(),
            });
        }
    }
    if !again.is_empty() {
        values.retain(|v| again.contains(v.id()));
        sent.retry = Some(Retry {
            reason: report
                .last_error
                .unwrap_or_else(|| "the upstream did not accept every item".into()),
            delay: refused_keys.then_some(Duration::from_secs(10)),
        });
    }
    sent
}
