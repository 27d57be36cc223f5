//! Create + update + end of one generation observation with typical attributes, against a raw
//! `opentelemetry` span carrying the same attributes (serialized with `serde_json`):
//!
//! - `langfuse_otel`: the SDK on a provider with `LangfuseSpanProcessor` → a processor that
//!   drops the span;
//! - `raw_plain_sdk`: the raw span on a plain provider (the drop processor only) — the honest
//!   baseline;
//! - `raw_same_pipeline`: the raw span through the same `LangfuseSpanProcessor` (what a raw span
//!   costs in a Langfuse pipeline: the processor inspects foreign spans at start).
//!
//! Run with `cargo bench -p langfuse-otel --bench generation`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use langfuse_otel::{
    Langfuse, LangfuseSpanProcessor, ObservationOptions, ObservationType, ObservationUpdate,
};
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanProcessor};
use serde_json::json;

#[derive(Debug)]
struct Drop;

impl SpanProcessor for Drop {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}
    fn on_end(&self, span: SpanData) {
        black_box(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let provider = SdkTracerProvider::builder()
        .with_span_processor(LangfuseSpanProcessor::new(Drop, None))
        .build();
    let langfuse = Langfuse::with_provider(provider.clone(), None);
    let pipeline_tracer = provider.tracer("raw");
    let plain = SdkTracerProvider::builder()
        .with_span_processor(Drop)
        .build();
    let plain_tracer = plain.tracer("raw");

    let input = json!([
        {"role": "system", "content": "You are a support assistant. Answer using the provided documents."},
        {"role": "user", "content": "How do I reset my password?"},
    ]);
    let params = json!({"temperature": 0.2, "max_tokens": 256});
    let output = json!({"role": "assistant", "content": "Go to Settings > Security, click 'Reset password'."});
    let usage = json!({"input": 120, "output": 40, "total": 160});

    let mut group = c.benchmark_group("generation");
    group.bench_function("langfuse_otel", |b| {
        b.iter(|| {
            let generation = langfuse.start_observation(
                ObservationOptions::new("generate-answer", ObservationType::Generation)
                    .model("gpt-4o-mini")
                    .model_parameters(&params)
                    .input(&input),
            );
            generation.update(
                ObservationUpdate::new()
                    .output(&output)
                    .usage_details(&usage),
            );
            generation.end();
        })
    });
    let raw = |tracer: &opentelemetry_sdk::trace::SdkTracer| {
        let mut span = tracer
            .span_builder("generate-answer")
            .with_kind(SpanKind::Internal)
            .with_attributes(vec![
                KeyValue::new("langfuse.observation.type", "generation"),
                KeyValue::new("langfuse.observation.model.name", "gpt-4o-mini"),
                KeyValue::new(
                    "langfuse.observation.model.parameters",
                    serde_json::to_string(&params).unwrap_or_default(),
                ),
                KeyValue::new(
                    "langfuse.observation.input",
                    serde_json::to_string(&input).unwrap_or_default(),
                ),
            ])
            .start(tracer);
        span.set_attribute(KeyValue::new(
            "langfuse.observation.output",
            serde_json::to_string(&output).unwrap_or_default(),
        ));
        span.set_attribute(KeyValue::new(
            "langfuse.observation.usage_details",
            serde_json::to_string(&usage).unwrap_or_default(),
        ));
        span.end();
    };
    group.bench_function("raw_plain_sdk", |b| b.iter(|| raw(&plain_tracer)));
    group.bench_function("raw_same_pipeline", |b| b.iter(|| raw(&pipeline_tracer)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
