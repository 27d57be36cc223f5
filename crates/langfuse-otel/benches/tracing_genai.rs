//! A `tracing` span with GenAI fields (a chat call with model, usage and time to first chunk)
//! bridged by `tracing-opentelemetry`, on a provider with `LangfuseSpanProcessor` (→ a processor
//! that drops the span) against a bare provider (the drop processor only): what our processor
//! adds to an instrumented app's LLM spans.
//!
//! Run with `cargo bench -p langfuse-otel --bench tracing_genai`.

use criterion::{Criterion, criterion_group, criterion_main};
use langfuse_otel::LangfuseSpanProcessor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;

/// A processor that drops every span (the exporter is not what is measured).
#[derive(Debug)]
struct Discard;

impl opentelemetry_sdk::trace::SpanProcessor for Discard {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}
    fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
        std::hint::black_box(span);
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(
        &self,
        _timeout: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

fn dispatch(provider: &SdkTracerProvider) -> tracing::Dispatch {
    tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app"))),
    )
}

fn chat_span() {
    tracing::info_span!(
        "chat gpt-4o",
        gen_ai.operation.name = "chat",
        gen_ai.request.model = "gpt-4o",
        gen_ai.usage.input_tokens = 120,
        gen_ai.usage.output_tokens = 40,
        gen_ai.response.time_to_first_chunk = 0.2
    )
    .in_scope(|| std::hint::black_box(()));
}

fn bench(c: &mut Criterion) {
    let ours = SdkTracerProvider::builder()
        .with_span_processor(LangfuseSpanProcessor::new(Discard, None))
        .build();
    let bare = SdkTracerProvider::builder()
        .with_span_processor(Discard)
        .build();
    let mut group = c.benchmark_group("tracing_genai");
    tracing::dispatcher::with_default(&dispatch(&ours), || {
        group.bench_function("langfuse_processor", |b| b.iter(chat_span));
    });
    tracing::dispatcher::with_default(&dispatch(&bare), || {
        group.bench_function("bare_provider", |b| b.iter(chat_span));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
