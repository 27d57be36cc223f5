//! Any OTLP collector as a sink (`--to otlp`): OTLP/HTTP to the upstream URL, or OTLP/gRPC for
//! `grpc://host:port` (one gRPC sender per client credentials).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use langfuse_otel_transport::{ContentEncoding, GrpcSender, HttpSender, Payload, Secret};

use super::contract::{Retry, Sent, Sink};
use super::dead_letter::Reason;
use super::upstream::{per_request, retry_policy, settle_outcome};
use crate::shape::{Shape, Unit};

/// An OTLP collector (`--to otlp`).
pub struct OtlpSink {
    pub(super) target: OtlpTarget,
}

pub(super) enum OtlpTarget {
    Http(HttpSender),
    /// One gRPC sender per credentials (gRPC metadata is fixed per sender).
    Grpc {
        endpoint: String,
        fixed: Vec<(String, Secret)>,
        senders: HashMap<Option<String>, GrpcSender>,
    },
}

impl Sink for OtlpSink {
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

fn json_to_protobuf(body: &[u8]) -> Option<Vec<u8>> {
    use prost::Message;
    let request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
        serde_json::from_slice(body).ok()?;
    Some(request.encode_to_vec())
}
