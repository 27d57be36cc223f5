//! Any OTLP collector as a sink (`--to otlp`): OTLP/HTTP to the upstream URL, or OTLP/gRPC for
//! `grpc://host:port` (one gRPC sender per client credentials).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use langfuse_otel_transport::{ContentEncoding, GrpcSender, HttpSender, Payload, Secret};

use super::contract::{Retry, Sent, Sink};
use super::dead_letter::Reason;
use super::upstream::{per_request, retry_policy, settle_outcome};
use crate::shape::{Shape, Unit};
use crate::sources::receive::Signal;

/// An OTLP collector (`--to otlp`).
pub struct OtlpSink {
    pub(super) target: OtlpTarget,
}

pub(super) enum OtlpTarget {
    /// OTLP/HTTP: traces to the configured URL, logs and metrics to its `/v1/logs` and
    /// `/v1/metrics` siblings (senders made on first use).
    Http {
        traces: HttpSender,
        url: String,
        fixed: Vec<(String, Secret)>,
        others: HashMap<Signal, HttpSender>,
    },
    /// One gRPC sender per credentials and signal (gRPC metadata is fixed per sender).
    Grpc {
        endpoint: String,
        fixed: Vec<(String, Secret)>,
        senders: HashMap<(Option<String>, Signal), GrpcSender>,
    },
}

/// The OTLP/HTTP URL of `signal` next to the traces URL `url` (`…/v1/traces` → `…/v1/logs`;
/// a URL without that suffix is the base).
pub(super) fn signal_url(url: &str, signal: Signal) -> String {
    let base = url
        .trim_end_matches('/')
        .strip_suffix(Signal::Traces.path())
        .unwrap_or(url.trim_end_matches('/'));
    format!("{base}{}", signal.path())
}

impl Sink for OtlpSink {
    fn shape(&self) -> Shape {
        Shape::OtlpOnly
    }

    fn send(&mut self, unit: &mut Unit, deadline: Instant) -> Sent {
        let Unit::Otlp {
            signal,
            body,
            content_type,
            authorization,
            spans,
        } = unit
        else {
            return Sent::unsupported(unit, "an OTLP collector takes OTLP only");
        };
        let keys = match &self.target {
            OtlpTarget::Http { .. } => false,
            OtlpTarget::Grpc { fixed, .. } => !fixed.is_empty(),
        };
        let outcome = match &mut self.target {
            OtlpTarget::Http {
                traces,
                url,
                fixed,
                others,
            } => {
                let http = if *signal == Signal::Traces {
                    traces
                } else {
                    match others.entry(*signal) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(v) => {
                            match HttpSender::builder(signal_url(url, *signal))
                                .headers(fixed.clone())
                                .retry(retry_policy())
                                .build()
                            {
                                Ok(s) => v.insert(s),
                                Err(e) => {
                                    return Sent {
                                        retry: Some(Retry {
                                            reason: format!("cannot set up OTLP/HTTP: {e}"),
                                            delay: Some(Duration::from_secs(5)),
                                        }),
                                        ..Sent::default()
                                    };
                                }
                            }
                        }
                    }
                };
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
                    match json_to_protobuf(*signal, body) {
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
                let sender = match senders.entry((authorization.clone(), *signal)) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let mut headers = fixed.clone();
                        if let Some(a) = authorization.as_deref() {
                            headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
                            headers.push(("authorization".into(), Secret::new(a)));
                        }
                        match GrpcSender::for_method(
                            endpoint.clone(),
                            signal.grpc_method(),
                            headers,
                            true,
                            retry_policy(),
                            None,
                        ) {
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

fn json_to_protobuf(signal: Signal, body: &[u8]) -> Option<Vec<u8>> {
    use opentelemetry_proto::tonic::collector::{logs, metrics, trace};
    use prost::Message;
    Some(match signal {
        Signal::Traces => serde_json::from_slice::<trace::v1::ExportTraceServiceRequest>(body)
            .ok()?
            .encode_to_vec(),
        Signal::Logs => serde_json::from_slice::<logs::v1::ExportLogsServiceRequest>(body)
            .ok()?
            .encode_to_vec(),
        Signal::Metrics => serde_json::from_slice::<metrics::v1::ExportMetricsServiceRequest>(body)
            .ok()?
            .encode_to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_and_metrics_go_next_to_the_traces_url() {
        assert_eq!(
            signal_url("http://c:4318/v1/traces", Signal::Logs),
            "http://c:4318/v1/logs"
        );
        assert_eq!(
            signal_url("http://c:4318/", Signal::Metrics),
            "http://c:4318/v1/metrics"
        );
    }
}
