//! `serve --to kafka`: the spool's records as Kafka messages (the format: `crate::kafka`).
//!
//! An idempotent producer with `acks=all`: a unit counts as delivered only when the broker
//! acknowledged every one of its messages, so the forwarder commits the spool cursor only
//! then. While the broker is unreachable, librdkafka keeps retrying the messages it holds and
//! the forwarder keeps the records spooled; a message that is still on its way when a round's
//! deadline passes is waited for in the next round, never produced twice by the bridge
//! (librdkafka's idempotence covers its own retries).
//!
//! Keys: the trace id in hex, and `partitioner=murmur2_random` (the Java client's and the
//! Collector's hash), so the spans of one trace land in one partition whoever produced them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use langfuse_otel_core::otlp::wire;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use serde_json::{Value, json};

use super::contract::{Retry, Sent, Sink};
use super::dead_letter::{Reason, Refusal};
use crate::kafka::{AUTHORIZATION_HEADER, KIND_HEADER, KafkaSettings, KafkaSettingsError, kind};
use crate::shape::{Event, Shape, Unit};
use crate::sources::receive::Signal;
use langfuse_spool::RecordKind;

/// What a unit of another signal is refused with.
const UNSUPPORTED: &str = "the Kafka sink carries traces, ingestion batches and scores";

/// The producer options the bridge sets before the user's (which may override them).
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("partitioner", "murmur2_random"),
    ("linger.ms", "5"),
];

/// A delivery report: `Err((permanent, reason))` for a failure.
type Report = Result<(), (bool, String)>;

/// Delivery reports, by message id, filled by librdkafka's callback during `poll`.
#[derive(Default)]
struct Deliveries {
    results: Mutex<HashMap<usize, Report>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err((permanent(e), e.to_string())),
        };
        if let Ok(mut results) = self.results.lock() {
            results.insert(id, outcome);
        }
    }
}

/// Whether a produce error is final for this message (it will never fit or never be valid).
fn permanent(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidTimestamp
        )
    )
}

/// One message of a unit and where it stands.
#[derive(Debug, Clone, PartialEq)]
struct Outgoing {
    key: Option<String>,
    payload: Vec<u8>,
    kind: &'static str,
    items: usize,
    state: State,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Not handed to librdkafka (or to be handed again).
    Waiting,
    /// Handed over with this id; no report yet.
    Queued(usize),
    /// Acknowledged by the broker.
    Delivered,
    /// Refused for good, with the reason.
    Refused(String),
}

/// The Kafka sink of `serve --to kafka`.
pub struct KafkaSink {
    producer: BaseProducer<Deliveries>,
    topic: String,
    forward_credentials: bool,
    /// The messages of the unit being sent (kept across the forwarder's retries of it).
    pending: Vec<Outgoing>,
    next_id: usize,
}

/// Why the producer could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaSinkError {
    /// The settings are incomplete.
    #[error(transparent)]
    Settings(#[from] KafkaSettingsError),
    /// librdkafka refused the configuration (an unknown option, TLS in a build without it, …).
    #[error("cannot create the Kafka producer: {0}")]
    Client(#[source] KafkaError),
}

impl KafkaSink {
    /// A producer for `settings` (nothing is connected yet: an unreachable broker shows as
    /// records staying spooled, not as an error here).
    ///
    /// # Errors
    /// Incomplete settings, or options librdkafka refuses.
    pub fn new(settings: &KafkaSettings) -> Result<KafkaSink, KafkaSinkError> {
        let mut config = ClientConfig::new();
        for (key, value) in PRODUCER_DEFAULTS {
            config.set(*key, *value);
        }
        for (key, value) in settings.client_options()? {
            config.set(key, value);
        }
        config.set("client.id", "langfuse-bridge");
        let producer = config
            .create_with_context(Deliveries::default())
            .map_err(KafkaSinkError::Client)?;
        Ok(KafkaSink {
            producer,
            topic: settings.topic.clone(),
            forward_credentials: settings.forward_credentials,
            pending: Vec::new(),
            next_id: 0,
        })
    }

    /// The messages a unit becomes, all [`State::Waiting`].
    fn messages(unit: &Unit) -> Result<Vec<Outgoing>, String> {
        let message = |key, payload, kind, items| Outgoing {
            key,
            payload,
            kind,
            items,
            state: State::Waiting,
        };
        Ok(match unit {
            Unit::Otlp {
                signal: Signal::Traces,
                body,
                content_type,
                ..
            } => by_trace(body, content_type)?
                .into_iter()
                .map(|t| message(Some(t.key), t.export, kind::OTLP_PROTO, t.spans))
                .collect(),
            Unit::Otlp { .. } => {
                return Err(UNSUPPORTED.into());
            }
            Unit::Events { events, .. } => {
                let batch: Vec<Value> = events.iter().cloned().map(Event::into_json).collect();
                let body = serde_json::to_vec(&json!({ "batch": batch })).unwrap_or_default();
                vec![message(None, body, kind::INGESTION_BATCH, events.len())]
            }
            Unit::Scores { scores, .. } => {
                let body = serde_json::to_vec(scores).unwrap_or_default();
                vec![message(None, body, kind::SCORES, scores.len())]
            }
        })
    }

    /// Hands the waiting messages to librdkafka (its queue full: serves it until `deadline`).
    fn produce(&mut self, authorization: Option<&str>, deadline: Instant) {
        for i in 0..self.pending.len() {
            if self.pending[i].state != State::Waiting {
                continue;
            }
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            let mut headers = OwnedHeaders::new().insert(Header {
                key: KIND_HEADER,
                value: Some(self.pending[i].kind),
            });
            if self.forward_credentials
                && let Some(auth) = authorization
            {
                headers = headers.insert(Header {
                    key: AUTHORIZATION_HEADER,
                    value: Some(auth),
                });
            }
            let message = &self.pending[i];
            let mut record = BaseRecord::with_opaque_to(&self.topic, id)
                .payload(&message.payload)
                .headers(headers);
            if let Some(key) = &message.key {
                record = record.key(key);
            }
            let mut record = Some(record);
            let state = loop {
                let Some(r) = record.take() else {
                    break State::Waiting;
                };
                match self.producer.send(r) {
                    Ok(()) => break State::Queued(id),
                    Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                        if Instant::now() >= deadline {
                            break State::Waiting;
                        }
                        self.producer.poll(Duration::from_millis(50));
                        record = Some(r);
                    }
                    Err((e, _)) if permanent(&e) => break State::Refused(e.to_string()),
                    Err((e, _)) => {
                        tracing::warn!(error = %e, "the Kafka producer did not take a message");
                        break State::Waiting;
                    }
                }
            };
            self.pending[i].state = state;
            if self.pending[i].state == State::Waiting {
                return;
            }
        }
    }

    /// Serves delivery reports until nothing is queued or `deadline` passes; returns the last
    /// retriable failure seen.
    fn await_reports(&mut self, deadline: Instant) -> Option<String> {
        let mut failure = None;
        loop {
            let queued = self
                .pending
                .iter()
                .any(|m| matches!(m.state, State::Queued(_)));
            if !queued {
                return failure;
            }
            let now = Instant::now();
            if now >= deadline {
                return failure.or_else(|| Some("the broker has not acknowledged yet".into()));
            }
            self.producer
                .poll((deadline - now).min(Duration::from_millis(100)));
            let mut results = match self.producer.context().results.lock() {
                Ok(r) => r,
                Err(poisoned) => poisoned.into_inner(),
            };
            for message in &mut self.pending {
                if let State::Queued(id) = message.state
                    && let Some(result) = results.remove(&id)
                {
                    message.state = match result {
                        Ok(()) => State::Delivered,
                        Err((true, reason)) => State::Refused(reason),
                        Err((false, reason)) => {
                            failure = Some(reason);
                            State::Waiting
                        }
                    };
                }
            }
        }
    }
}

/// A unit holding only `messages` (the traces still to deliver, as one protobuf export).
fn remaining_unit(unit: &Unit, messages: &[Outgoing]) -> Unit {
    match unit {
        Unit::Otlp { authorization, .. } => Unit::Otlp {
            signal: Signal::Traces,
            // Concatenated protobuf exports merge into one.
            body: messages.iter().flat_map(|m| m.payload.clone()).collect(),
            content_type: "application/x-protobuf",
            authorization: authorization.clone(),
            spans: messages.iter().map(|m| m.items).sum(),
        },
        other => other.clone(),
    }
}

impl Sink for KafkaSink {
    fn shape(&self) -> Shape {
        Shape::Kafka
    }

    fn send(&mut self, unit: &mut Unit, deadline: Instant) -> Sent {
        if let Unit::Otlp { signal, .. } = unit
            && *signal != Signal::Traces
        {
            return Sent::unsupported(unit, UNSUPPORTED);
        }
        let built = match Self::messages(unit) {
            Ok(m) => m,
            Err(e) => {
                return Sent {
                    rejected: unit.items(),
                    refused: vec![unit.refusal(Reason::Undecodable, e)],
                    ..Sent::default()
                };
            }
        };
        // The forwarder sends the same unit again after a retry: keep what is on its way.
        let same = built.len() == self.pending.len()
            && built
                .iter()
                .zip(&self.pending)
                .all(|(b, p)| b.key == p.key && b.payload == p.payload);
        if !same {
            self.pending = built;
        }
        let authorization = unit.authorization().map(str::to_owned);
        self.produce(authorization.as_deref(), deadline);
        let failure = self.await_reports(deadline);
        let mut sent = Sent::default();
        let mut remaining = Vec::new();
        for message in std::mem::take(&mut self.pending) {
            match &message.state {
                State::Delivered => sent.delivered += message.items,
                State::Refused(reason) => {
                    sent.rejected += message.items;
                    let kind = match message.kind {
                        kind::INGESTION_BATCH => RecordKind::IngestionBatch,
                        kind::SCORES => RecordKind::Scores,
                        _ => RecordKind::OtlpProtobuf,
                    };
                    tracing::warn!(%reason, items = message.items, "Kafka refused a message for good");
                    sent.refused.push(Refusal {
                        reason: Reason::UpstreamRejected,
                        detail: format!("Kafka refused the message: {reason}"),
                        kind,
                        authorization: authorization.clone(),
                        items: message.items,
                        body: message.payload.clone(),
                    });
                }
                State::Waiting | State::Queued(_) => remaining.push(message),
            }
        }
        if !remaining.is_empty() {
            *unit = remaining_unit(unit, &remaining);
            self.pending = remaining;
            sent.retry = Some(Retry {
                reason: failure.unwrap_or_else(|| "Kafka did not acknowledge in time".into()),
                delay: None,
            });
        }
        sent
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        // What librdkafka still holds was not committed: it is sent again after a restart.
        let _ = self.producer.flush(Duration::from_secs(1));
    }
}

/// The spans of one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceExport {
    /// The trace id, lowercase hex (the message key).
    pub key: String,
    /// A protobuf export holding only this trace's spans.
    pub export: Vec<u8>,
    /// Spans in it.
    pub spans: usize,
}

/// Cuts an OTLP trace export (protobuf, or OTLP/JSON when `content_type` says so) into one
/// export per trace, traces in the order of their first span (the OpenTelemetry Collector's
/// `partition_traces_by_id`: each trace keeps its spans' resources and scopes, in the order
/// they came), at the wire level: spans are copied as received, never re-encoded.
///
/// # Errors
/// The decoder's message when the body is not a valid export.
pub fn by_trace(body: &[u8], content_type: &str) -> Result<Vec<TraceExport>, String> {
    let parts = if content_type == "application/json" {
        let request =
            serde_json::from_slice::<ExportTraceServiceRequest>(body).map_err(|e| e.to_string())?;
        wire::split_by_trace(&request.encode_to_vec())
    } else {
        wire::split_by_trace(body)
    }
    .map_err(|e| e.to_string())?;
    Ok(parts
        .iter()
        .map(|part| TraceExport {
            key: langfuse_otel_transport::hex(part.trace_id()),
            export: part.to_export(),
            spans: part.span_count(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(options: &[(&str, &str)]) -> KafkaSettings {
        KafkaSettings {
            brokers: Some("127.0.0.1:9".into()),
            options: options.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            ..KafkaSettings::default()
        }
    }

    #[test]
    fn sasl_plain_needs_no_openssl() {
        let sink = KafkaSink::new(&settings(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ]));
        assert!(sink.is_ok(), "{:?}", sink.err());
    }

    #[test]
    fn tls_and_scram_need_the_kafka_tls_build() {
        for (key, value) in [
            ("security.protocol", "ssl"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
        ] {
            let result = KafkaSink::new(&settings(&[
                (
                    "security.protocol",
                    if key == "sasl.mechanism" {
                        "sasl_plaintext"
                    } else {
                        value
                    },
                ),
                (key, value),
            ]));
            assert_eq!(result.is_ok(), cfg!(feature = "kafka-tls"), "{key}={value}");
            if let Err(e) = result {
                // librdkafka's own reason, as the operator sees it at start.
                assert!(
                    e.to_string().contains("cannot create the Kafka producer"),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn an_unknown_option_is_refused_at_start() {
        let e = KafkaSink::new(&settings(&[("no.such.option", "1")]))
            .err()
            .expect("refused");
        assert!(e.to_string().contains("no.such.option"), "{e}");
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, InstrumentationScope, KeyValue, any_value,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn resource(name: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(name.into())),
                }),
                ..KeyValue::default()
            }],
            ..Resource::default()
        })
    }

    fn span(trace: u8, id: u8) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: format!("s{id}"),
            ..Span::default()
        }
    }

    fn scope(name: &str, spans: Vec<Span>) -> ScopeSpans {
        ScopeSpans {
            scope: Some(InstrumentationScope {
                name: name.into(),
                ..InstrumentationScope::default()
            }),
            spans,
            schema_url: String::new(),
        }
    }

    /// (resource, scope, span) of every span, in order.
    fn flatten(request: &ExportTraceServiceRequest) -> Vec<(String, String, Vec<u8>)> {
        let mut out = Vec::new();
        for rs in &request.resource_spans {
            let r = format!("{:?}", rs.resource);
            for ss in &rs.scope_spans {
                let s = ss
                    .scope
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                for span in &ss.spans {
                    out.push((r.clone(), s.clone(), span.span_id.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_span_lands_in_its_traces_export_with_its_resource_and_scope() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: resource("a"),
                    scope_spans: vec![
                        scope("x", vec![span(1, 1), span(2, 2), span(1, 3)]),
                        scope("y", vec![span(1, 4)]),
                    ],
                    schema_url: String::new(),
                },
                ResourceSpans {
                    resource: resource("b"),
                    scope_spans: vec![scope("x", vec![span(2, 5), span(3, 6)])],
                    schema_url: String::new(),
                },
            ],
        };
        let all = flatten(&request);
        let traces = by_trace(&request.encode_to_vec(), "application/x-protobuf").unwrap();
        let json = serde_json::to_vec(&request).unwrap();
        assert_eq!(by_trace(&json, "application/json").unwrap(), traces);
        assert_eq!(traces.len(), 3);
        let requests: Vec<ExportTraceServiceRequest> = traces
            .iter()
            .map(|t| ExportTraceServiceRequest::decode(&t.export[..]).unwrap())
            .collect();
        let mut seen = Vec::new();
        for (trace, request) in traces.iter().zip(&requests) {
            let spans = flatten(request);
            assert_eq!(spans.len(), trace.spans);
            for s in &request.resource_spans {
                for ss in &s.scope_spans {
                    for span in &ss.spans {
                        assert_eq!(langfuse_otel_transport::hex(&span.trace_id), trace.key);
                    }
                }
            }
            seen.extend(spans);
        }
        // Nothing lost, nothing moved to another resource or scope.
        let mut expected = all.clone();
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected);
        // Trace 1 has spans in two scopes of one resource: one resource, two scopes.
        assert_eq!(requests[0].resource_spans.len(), 1);
        assert_eq!(requests[0].resource_spans[0].scope_spans.len(), 2);
        // Trace 2 spans two resources.
        assert_eq!(requests[1].resource_spans.len(), 2);
    }

    #[test]
    fn an_empty_export_gives_no_message() {
        assert!(by_trace(&[], "application/x-protobuf").unwrap().is_empty());
        assert!(by_trace(b"\x0a\x05", "application/x-protobuf").is_err());
    }
}
