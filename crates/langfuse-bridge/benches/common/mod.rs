//! What the bridge's benchmarks share: the OTLP export they send.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// An export of one chat span each for the span ids `spans` (big-endian), all in the trace
/// whose id is 16 times `trace_byte`, with GenAI model, input and output attributes.
pub fn export(trace_byte: u8, spans: std::ops::Range<u64>) -> ExportTraceServiceRequest {
    let attr = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let spans = spans
        .map(|i| Span {
            trace_id: [trace_byte; 16].to_vec(),
            span_id: i.to_be_bytes().to_vec(),
            name: "chat gpt-4o".into(),
            start_time_unix_nano: 1_767_258_000_000_000_000 + i,
            end_time_unix_nano: 1_767_258_000_250_000_000 + i,
            attributes: vec![
                attr("gen_ai.operation.name", "chat"),
                attr("gen_ai.request.model", "gpt-4o"),
                attr("gen_ai.input.messages", "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"What is the capital of France?\"}]}]"),
                attr("gen_ai.output.messages", "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"Paris.\"}]}]"),
            ],
            ..Span::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bench".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The export of [`export`] for the span ids `first..first + spans`, spread over `traces`
/// traces of equal size (trace id: `first` then the trace's index, big-endian), the first span
/// of each a root carrying the user and session (what the assembly stage puts on every span).
#[allow(dead_code)] // Not every benchmark assembles traces.
pub fn export_in_traces(first: u64, spans: u64, traces: u64) -> ExportTraceServiceRequest {
    let mut request = export(0, first..first + spans);
    let per_trace = (spans / traces.max(1)).max(1);
    for (i, span) in request.resource_spans[0].scope_spans[0]
        .spans
        .iter_mut()
        .enumerate()
    {
        let trace = i as u64 / per_trace;
        span.trace_id = [first.to_be_bytes(), trace.to_be_bytes()].concat();
        if (i as u64).is_multiple_of(per_trace) {
            for (k, v) in [("user.id", "user-1"), ("session.id", "session-1")] {
                span.attributes.push(KeyValue {
                    key: k.into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(v.into())),
                    }),
                    ..Default::default()
                });
            }
        } else {
            span.parent_span_id = (first + trace * per_trace).to_be_bytes().to_vec();
        }
    }
    request
}
