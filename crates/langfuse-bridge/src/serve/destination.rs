//! The network destinations, built on `langfuse-otel-transport` (its one retry loop and
//! classification; the forwarder only decides what to do with what remains).
//!
//! | `--to` | units | requests |
//! |---|---|---|
//! | `langfuse` | OTLP, ingestion events, scores | `URL/api/public/otel/v1/traces` (with `x-langfuse-ingestion-version: 4`), `URL/api/public/ingestion`, `URL/api/public/scores` |
//! | `ingestion` | ingestion events | `URL/api/public/ingestion` (207 per-event results honoured) |
//! | `otlp` | OTLP | `URL` over HTTP, or OTLP/gRPC for `grpc://host:port` |
//!
//! Credentials: the configured keys, or the unit's own `Authorization` (the client's, kept in
//! the spool). A refusal for good (4xx) hands the unit's items back to the forwarder with the
//! upstream's answer ([`Sent::refused`], for the dead-letter file), except 401/403 with the
//! configured keys: that is a configuration error, so the items stay spooled and are retried
//! until the keys are fixed.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use langfuse_otel_transport::{
    ContentEncoding, GrpcSender, HttpSender, JsonBatchSender, JsonItem, Outcome, Payload,
    RetryPolicy, Secret, Status, langfuse, langfuse_headers,
};
use serde_json::Value;

use super::config::{ConfigError, Destination as To, ServeConfig};
use super::forward::{Destination, Event, Retry, Sent, Shape, Unit};
use crate::dead_letter::{Reason, Refusal};
use crate::spool::RecordKind;

/// Langfuse (`--to langfuse` and `--to ingestion`).
pub struct LangfuseDestination {
    shape: Shape,
    otlp: HttpSender,
    ingestion: JsonBatchSender,
    scores: JsonBatchSender,
    keys_configured: bool,
}

/// An OTLP collector (`--to otlp`).
pub struct OtlpDestination {
    target: OtlpTarget,
}

enum OtlpTarget {
    Http(HttpSender),
    /// One gRPC sender per credentials (gRPC metadata is fixed per sender).
    Grpc {
        endpoint: String,
        fixed: Vec<(String, Secret)>,
        senders: HashMap<Option<String>, GrpcSender>,
    },
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        jitter: 0.2,
    }
}

fn build_err(e: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid(format!("cannot set up the upstream: {e}"))
}

fn fixed_headers(config: &ServeConfig) -> Result<Vec<(String, Secret)>, ConfigError> {
    Ok(match config.keys()? {
        Some((public, secret)) => langfuse_headers(&public, &Secret::new(secret)),
        None => Vec::new(),
    })
}

/// Builds the destination the configuration names.
pub fn from_config(config: &ServeConfig) -> Result<Box<dyn Destination>, ConfigError> {
    let url = config.upstream_url()?;
    let fixed = fixed_headers(config)?;
    let http = |path: &str| {
        HttpSender::builder(format!("{url}{path}"))
            .headers(fixed.clone())
            .retry(retry_policy())
            .attempt_timeout(Some(Duration::from_secs(
                config.upstream_timeout_secs.max(1),
            )))
            .build()
            .map_err(build_err)
    };
    match config.destination()? {
        to @ (To::Langfuse | To::Ingestion) => {
            let otlp = HttpSender::builder(format!("{url}{}", langfuse::OTLP_PATH))
                .headers(fixed.clone())
                .header("x-langfuse-ingestion-version", "4")
                .retry(retry_policy())
                .build()
                .map_err(build_err)?;
            Ok(Box::new(LangfuseDestination {
                shape: if to == To::Langfuse {
                    Shape::Langfuse(config.otlp_mode)
                } else {
                    Shape::Events
                },
                otlp,
                ingestion: JsonBatchSender::ingestion(http(langfuse::INGESTION_PATH)?),
                scores: JsonBatchSender::scores(http(langfuse::SCORES_PATH)?),
                keys_configured: config.keys()?.is_some(),
            }))
        }
        To::Local => Err(ConfigError::Invalid(
            "the local store is opened by the bridge itself".into(),
        )),
        To::Otlp => {
            let lower = url.to_ascii_lowercase();
            let target = if let Some(rest) = lower.strip_prefix("grpc://") {
                OtlpTarget::Grpc {
                    endpoint: format!("http://{}", &url[url.len() - rest.len()..]),
                    fixed,
                    senders: HashMap::new(),
                }
            } else {
                OtlpTarget::Http(
                    HttpSender::builder(url.clone())
                        .headers(fixed)
                        .retry(retry_policy())
                        .build()
                        .map_err(build_err)?,
                )
            };
            Ok(Box::new(OtlpDestination { target }))
        }
    }
}

fn per_request(auth: Option<&str>) -> Vec<(String, Secret)> {
    auth.map(|a| vec![("authorization".to_owned(), Secret::new(a))])
        .unwrap_or_default()
}

/// Whether a final refusal must keep the items (configured keys refused: fix the keys).
fn keep_on_refusal(status: Option<Status>, keys_configured: bool, client_auth: bool) -> bool {
    matches!(
        status,
        Some(Status::Http(401 | 403)) | Some(Status::Grpc(7 | 16))
    ) && keys_configured
        && !client_auth
}

fn settle_outcome(outcome: Outcome, unit: &Unit, keys_configured: bool) -> Sent {
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
trait JsonUnit {
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

fn items_of<T: JsonUnit>(values: &[T], kind: &'static str) -> Vec<JsonItem> {
    values
        .iter()
        .map(|v| JsonItem::new(v.id().to_owned(), kind, v.json()))
        .collect()
}

/// Sends JSON items; keeps in `values` only what must be sent again. Items refused for good
/// come back one [`Refusal`] each, of `refused_kind`.
fn send_json<T: JsonUnit>(
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

impl Destination for LangfuseDestination {
    fn shape(&self) -> Shape {
        self.shape
    }

    fn send(&mut self, unit: &mut Unit, deadline: Instant) -> Sent {
        let keys = self.keys_configured;
        match unit {
            Unit::Otlp {
                body,
                content_type,
                authorization,
                spans,
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

impl Destination for OtlpDestination {
    fn shape(&self) -> Shape {
        Shape::OtlpOnly
    }

    fn send(&mut self, unit: &mut Unit, deadline: Instant) -> Sent {
        let Unit::Otlp {
            body,
            content_type,
            authorization,
            spans,
        } = unit
        else {
            return Sent::unsupported(unit, "an OTLP collector takes OTLP only");
        };
        let keys = match &self.target {
            OtlpTarget::Http(_) => false,
            OtlpTarget::Grpc { fixed, .. } => !fixed.is_empty(),
        };
        let outcome = match &mut self.target {
            OtlpTarget::Http(http) => {
                let payload = Payload::new(
                    std::mem::take(body),
                    *content_type,
                    ContentEncoding::Identity,
                    *spans,
                );
                let o = http.send_with_headers(
                    &payload,
                    &per_request(authorization.as_deref()),
                    deadline,
                );
                *body = payload.body;
                o
            }
            OtlpTarget::Grpc {
                endpoint,
                fixed,
                senders,
            } => {
                if *content_type != "application/x-protobuf" {
                    // gRPC carries protobuf only: convert OTLP/JSON through the decoder.
                    match json_to_protobuf(body) {
                        Some(pb) => {
                            *body = pb;
                            *content_type = "application/x-protobuf";
                        }
                        None => {
                            let spans = *spans;
                            return Sent {
                                rejected: spans,
                                refused: vec![unit.refusal(
                                    Reason::UpstreamRejected,
                                    "OTLP/JSON that does not convert to protobuf for gRPC",
                                )],
                                ..Sent::default()
                            };
                        }
                    }
                }
                let sender = match senders.entry(authorization.clone()) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let mut headers = fixed.clone();
                        if let Some(a) = authorization.as_deref() {
                            headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
                            headers.push(("authorization".into(), Secret::new(a)));
                        }
                        match GrpcSender::new(endpoint.clone(), headers, true, retry_policy(), None)
                        {
                            Ok(s) => v.insert(s),
                            Err(e) => {
                                return Sent {
                                    retry: Some(Retry {
                                        reason: format!("cannot set up gRPC: {e}"),
                                        delay: Some(Duration::from_secs(5)),
                                    }),
                                    ..Sent::default()
                                };
                            }
                        }
                    }
                };
                let payload = Payload::new(
                    std::mem::take(body),
                    "application/x-protobuf",
                    ContentEncoding::Identity,
                    *spans,
                );
                let o = sender.send(&payload, deadline);
                *body = payload.body;
                o
            }
        };
        settle_outcome(outcome, unit, keys)
    }
}

/// The embedded trace store (`--to local`): translated events are upserted (idempotent, so a
/// re-sent record changes nothing). When the store fails — its database file deleted or
/// replaced under the running bridge included — the records stay in the spool and are
/// retried (never committed, never dropped), and an error names the problem.
pub struct LocalDestination {
    store: langfuse_store::Store,
    /// Whether the last write failed (the error is logged once per failing streak).
    failing: bool,
}

impl LocalDestination {
    /// Writes into `store`.
    pub fn new(store: langfuse_store::Store) -> LocalDestination {
        LocalDestination {
            store,
            failing: false,
        }
    }
}

impl Destination for LocalDestination {
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

fn json_to_protobuf(body: &[u8]) -> Option<Vec<u8>> {
    use prost::Message;
    let request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
        serde_json::from_slice(body).ok()?;
    Some(request.encode_to_vec())
}
