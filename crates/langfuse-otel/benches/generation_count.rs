//! The cases of the `generation` benchmark as a plain loop, for instruction counts:
//!
//! ```text
//! valgrind --tool=callgrind target/release/deps/generation_count-<hash> langfuse_otel 1000
//! ```
//!
//! Arguments: the case (`langfuse_otel`, `raw_plain_sdk`, `raw_same_pipeline`) and the number
//! of iterations. Run it with two counts and divide the difference by the extra iterations to
//! get instructions per iteration without the setup.

use std::hint::black_box;
use std::time::Duration;

use langfuse_otel::{
    Langfuse, LangfuseSpanProcessor, ObservationOptions, ObservationType, ObservationUpdate,
};
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span, SpanData, SpanProcessor};
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

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "langfuse_otel".to_owned());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);

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

    let sdk = || {
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
    };
    let raw = |tracer: &SdkTracer| {
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
    for _ in 0..n {
        match case.as_str() {
            "langfuse_otel" => sdk(),
            "raw_plain_sdk" => raw(&plain_tracer),
            "raw_same_pipeline" => raw(&pipeline_tracer),
            other => panic!("unknown case {other}"),
        }
    }
}
