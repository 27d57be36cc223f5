//! Trace assembly for Langfuse v4 at the wire level ([`langfuse_otel_core::otlp::wire`])
//! against decoding the same export and encoding it again (what assembling decoded messages
//! costs at least), in one run.
//!
//! The export is what the bridge's `serve` benchmark sends with assembly: 100 GenAI chat spans
//! in 10 traces, the first span of each a root carrying the user and session.
//!
//! Then the cut of 1500 such exports with every part kept (memory not reused, as when the
//! bridge holds traces).
//!
//! `cargo bench -p langfuse-otel-core --bench wire`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use langfuse_otel_core::otlp::wire;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

const SPANS: u64 = 100;
const TRACES: u64 = 10;

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn export() -> Vec<u8> {
    let per_trace = SPANS / TRACES;
    let spans = (0..SPANS)
        .map(|i| {
            let trace = i / per_trace;
            let mut attributes = vec![
                attr("gen_ai.operation.name", "chat"),
                attr("gen_ai.request.model", "gpt-4o"),
                attr(
                    "gen_ai.input.messages",
                    r#"[{"role":"user","parts":[{"type":"text","content":"What is the capital of France?"}]}]"#,
                ),
                attr(
                    "gen_ai.output.messages",
                    r#"[{"role":"assistant","parts":[{"type":"text","content":"Paris."}]}]"#,
                ),
            ];
            let root = i % per_trace == 0;
            if root {
                attributes.push(attr("user.id", "user-1"));
                attributes.push(attr("session.id", "session-1"));
            }
            Span {
                trace_id: [vec![1; 8], trace.to_be_bytes().to_vec()].concat(),
                span_id: (i + 1).to_be_bytes().to_vec(),
                parent_span_id: if root {
                    Vec::new()
                } else {
                    (trace * per_trace + 1).to_be_bytes().to_vec()
                },
                name: "chat gpt-4o".into(),
                start_time_unix_nano: 1_767_258_000_000_000_000 + i,
                end_time_unix_nano: 1_767_258_000_250_000_000 + i,
                attributes,
                ..Span::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "bench")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bench".into(),
                    ..InstrumentationScope::default()
                }),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

fn bench(c: &mut Criterion) {
    let body = export();
    let mut group = c.benchmark_group("assemble 100 spans in 10 traces");
    group.throughput(Throughput::Elements(SPANS));
    group.bench_function("baseline: prost decode + encode", |b| {
        b.iter(|| {
            let request = ExportTraceServiceRequest::decode(&body[..]).expect("decodes");
            std::hint::black_box(request.encode_to_vec())
        });
    });
    group.bench_function("wire: split by trace", |b| {
        b.iter(|| std::hint::black_box(wire::split_by_trace(&body).expect("splits")));
    });
    group.bench_function("wire: split + assemble each trace", |b| {
        b.iter(|| {
            let parts = wire::split_by_trace(&body).expect("splits");
            let mut out = Vec::new();
            for part in &parts {
                wire::assemble(&[part], &mut out);
            }
            std::hint::black_box(out)
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches, held_group);

/// The same export 1500 times, every part kept until the round ends (as the bridge holds
/// them): memory is not reused between exports, as it is above.
fn held(c: &mut Criterion) {
    let bodies: Vec<Vec<u8>> = (0..1500).map(|_| export()).collect();
    c.bench_function("split 1500 exports, all parts held", |b| {
        b.iter(|| {
            let mut all = Vec::new();
            for body in &bodies {
                all.push(wire::split_by_trace(body).expect("splits"));
            }
            std::hint::black_box(all)
        });
    });
}
criterion_group!(held_group, held);
