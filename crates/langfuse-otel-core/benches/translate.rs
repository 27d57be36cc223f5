//! Translation throughput against the protobuf floor, in one run.
//!
//! The workload is a realistic mix: traces of five spans shaped like the official Langfuse
//! SDK's (root span, retriever, generation with usage, tool) plus one third-party GenAI `chat`
//! span (OpenTelemetry GenAI conventions), with JSON input/output of a few hundred bytes.
//!
//! * `prost_encode`: encoding the already converted OTLP `ExportTraceServiceRequest` (the floor).
//! * `sdk_to_otlp_and_prost_encode`: what an OTLP exporter does (`SpanData` → proto → bytes).
//! * `translate_and_json_encode`: what our native path does (`SpanData` → records → JSON bytes).
//! * `canonical_and_prost_encode`: the exporter's canonical OTLP mode (`SpanData` → records →
//!   canonical `langfuse.*` spans → protobuf bytes).
//!
//! Run: `cargo bench -p langfuse-otel-core --bench translate`.

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use langfuse_otel_core::otlp::batch_from_span_data;
use langfuse_otel_core::translate::translate_batch;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use prost::Message;

const TRACES: u64 = 100;
const SPANS_PER_TRACE: u64 = 5;

const MESSAGES: &str = r#"[{"role": "system", "content": "You are a support assistant for Acme. Answer briefly and cite the knowledge base."}, {"role": "user", "content": "How do I reset my password if I no longer have access to my email address?"}]"#;
const ANSWER: &str = r#"{"role": "assistant", "content": "Open Settings, choose Security, then Account recovery. If you cannot reach your email, verify with your phone number or contact support with your order id."}"#;
const DOCS: &str = r#"[{"id": "kb-112", "score": 0.83, "text": "Password resets are sent to the account email."}, {"id": "kb-7", "score": 0.71, "text": "Account recovery via phone number is available in Settings."}]"#;

fn span(
    trace: u64,
    index: u64,
    name: &'static str,
    scope: &InstrumentationScope,
    attributes: Vec<KeyValue>,
) -> SpanData {
    let trace_id = TraceId::from(u128::from(trace) << 64 | 0xabcdef);
    let span_id = SpanId::from(trace * 16 + index + 1);
    let parent = if index == 0 {
        SpanId::INVALID
    } else {
        SpanId::from(trace * 16 + 1)
    };
    let start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_258_000_000 + trace * 1000);
    SpanData {
        span_context: SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        ),
        parent_span_id: parent,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Borrowed(name),
        start_time: start + Duration::from_millis(index * 10),
        end_time: start + Duration::from_millis(index * 10 + 250),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope.clone(),
    }
}

/// 100 traces × 5 spans: four Langfuse-SDK-shaped spans and one GenAI `chat` span each.
fn workload() -> (Vec<SpanData>, Resource) {
    let sdk = InstrumentationScope::builder("langfuse-sdk")
        .with_version("0.1.0")
        .with_attributes([KeyValue::new("public_key", "pk-lf-1234")])
        .build();
    let genai = InstrumentationScope::builder("opentelemetry.instrumentation.openai")
        .with_version("0.40.0")
        .build();
    let resource = Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "support-bot"),
            KeyValue::new("telemetry.sdk.language", "rust"),
            KeyValue::new("telemetry.sdk.name", "opentelemetry"),
            KeyValue::new("telemetry.sdk.version", "0.33.1"),
            KeyValue::new("langfuse.environment", "production"),
            KeyValue::new("langfuse.release", "2026.11.0"),
        ])
        .build();
    let mut spans = Vec::new();
    for t in 0..TRACES {
        spans.push(span(
            t,
            0,
            "support-request",
            &sdk,
            vec![
                KeyValue::new("langfuse.observation.type", "span"),
                KeyValue::new("langfuse.internal.is_app_root", true),
                KeyValue::new("langfuse.trace.name", "support-request"),
                KeyValue::new("user.id", "user-4711"),
                KeyValue::new("session.id", "session-2026-11-22"),
                KeyValue::new(
                    "langfuse.trace.tags",
                    opentelemetry::Value::Array(opentelemetry::Array::String(vec![
                        "support".into(),
                        "rag".into(),
                    ])),
                ),
                KeyValue::new("langfuse.observation.input", "How do I reset my password?"),
                KeyValue::new("langfuse.observation.output", ANSWER),
                KeyValue::new("langfuse.environment", "production"),
            ],
        ));
        spans.push(span(
            t,
            1,
            "vector-search",
            &sdk,
            vec![
                KeyValue::new("langfuse.observation.type", "retriever"),
                KeyValue::new(
                    "langfuse.observation.input",
                    r#"{"query": "reset password", "top_k": 2}"#,
                ),
                KeyValue::new("langfuse.observation.output", DOCS),
                KeyValue::new("langfuse.observation.metadata.index", "\"kb-v3\""),
                KeyValue::new("langfuse.environment", "production"),
            ],
        ));
        spans.push(span(
            t,
            2,
            "answer",
            &sdk,
            vec![
                KeyValue::new("langfuse.observation.type", "generation"),
                KeyValue::new("langfuse.observation.input", MESSAGES),
                KeyValue::new("langfuse.observation.output", ANSWER),
                KeyValue::new("langfuse.observation.model.name", "gpt-4o-mini"),
                KeyValue::new(
                    "langfuse.observation.model.parameters",
                    r#"{"temperature": 0.2, "max_tokens": 512}"#,
                ),
                KeyValue::new(
                    "langfuse.observation.usage_details",
                    r#"{"input": 412, "output": 96, "input_cached_tokens": 128}"#,
                ),
                KeyValue::new(
                    "langfuse.observation.completion_start_time",
                    "\"2026-01-01T09:00:00.420000Z\"",
                ),
                KeyValue::new("langfuse.environment", "production"),
            ],
        ));
        spans.push(span(
            t,
            3,
            "chat gpt-4o-mini",
            &genai,
            vec![
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.system", "openai"),
                KeyValue::new("gen_ai.request.model", "gpt-4o-mini"),
                KeyValue::new("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
                KeyValue::new("gen_ai.request.temperature", 0.2),
                KeyValue::new("gen_ai.request.max_tokens", 512_i64),
                KeyValue::new("gen_ai.usage.input_tokens", 412_i64),
                KeyValue::new("gen_ai.usage.output_tokens", 96_i64),
                KeyValue::new("gen_ai.input.messages", MESSAGES),
                KeyValue::new("gen_ai.output.messages", ANSWER),
                KeyValue::new("server.address", "api.openai.com"),
            ],
        ));
        spans.push(span(
            t,
            4,
            "lookup-order",
            &sdk,
            vec![
                KeyValue::new("langfuse.observation.type", "tool"),
                KeyValue::new("langfuse.observation.input", r#"{"order_id": "A-1042"}"#),
                KeyValue::new("langfuse.observation.output", r#"{"status": "shipped"}"#),
                KeyValue::new("langfuse.environment", "production"),
            ],
        ));
    }
    (spans, resource)
}

fn bench(c: &mut Criterion) {
    let (spans, resource) = workload();
    let schema = ResourceAttributesWithSchema::from(&resource);
    let request = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(spans.clone(), &schema),
    };
    let mut group = c.benchmark_group("translate_vs_encode");
    group.throughput(Throughput::Elements(TRACES * SPANS_PER_TRACE));

    group.bench_function("prost_encode", |b| {
        let mut buf = Vec::with_capacity(request.encoded_len());
        b.iter(|| {
            buf.clear();
            black_box(&request).encode(&mut buf).expect("buffer grows");
            black_box(buf.len())
        })
    });

    group.bench_function("sdk_to_otlp_and_prost_encode", |b| {
        b.iter_batched(
            || spans.clone(),
            |spans| {
                let request = ExportTraceServiceRequest {
                    resource_spans: group_spans_by_resource_and_scope(spans, &schema),
                };
                black_box(request.encode_to_vec().len())
            },
            BatchSize::LargeInput,
        )
    });

    group.bench_function("translate_and_json_encode", |b| {
        let mut buf = Vec::with_capacity(1 << 20);
        b.iter(|| {
            buf.clear();
            let batch = batch_from_span_data(black_box(&spans), &resource);
            let translation = translate_batch(&batch);
            serde_json::to_writer(&mut buf, &translation.events).expect("in-memory write");
            black_box(buf.len())
        })
    });
    // Canonical OTLP mode of the exporter: translate, re-encode as `langfuse.*` spans, protobuf.
    group.bench_function("canonical_and_prost_encode", |b| {
        let mut buf = Vec::with_capacity(1 << 20);
        b.iter(|| {
            buf.clear();
            let batch = batch_from_span_data(black_box(&spans), &resource);
            let request = langfuse_otel_core::canonical::canonical_request(&batch);
            request.encode(&mut buf).expect("buffer grows");
            black_box(buf.len())
        })
    });
    group.finish();

    // Where the time goes: the two halves of the native path on their own.
    let mut parts = c.benchmark_group("native_path_parts");
    parts.throughput(Throughput::Elements(TRACES * SPANS_PER_TRACE));
    parts.bench_function("translate_only", |b| {
        b.iter(|| {
            let batch = batch_from_span_data(black_box(&spans), &resource);
            black_box(translate_batch(&batch).events.len())
        })
    });
    let events = translate_batch(&batch_from_span_data(&spans, &resource)).events;
    let json_len = serde_json::to_vec(&events).map_or(0, |v| v.len());
    parts.bench_function("json_encode_only", |b| {
        let mut buf = Vec::with_capacity(json_len);
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, black_box(&events)).expect("in-memory write");
            black_box(buf.len())
        })
    });
    parts.finish();
    println!(
        "output sizes for {} spans: OTLP protobuf {} bytes, ingestion JSON {} bytes",
        TRACES * SPANS_PER_TRACE,
        request.encoded_len(),
        json_len
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
