//! The workload shared by the `generation` benchmark and its instruction-count loop
//! (`generation_count`): one generation observation with typical attributes, made through the
//! SDK or as a raw `opentelemetry` span carrying the same attributes (serialized with
//! `serde_json`).

use std::hint::black_box;
use std::time::Duration;

use langfuse_otel::{
    Langfuse, LangfuseSpanProcessor, ObservationOptions, ObservationType, ObservationUpdate,
};
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span, SpanData, SpanProcessor};
use serde_json::{Value, json};

/// A processor that drops every span (the exporter is not what is measured).
#[derive(Debug)]
pub struct Discard;

impl SpanProcessor for Discard {
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

/// The three ways of making the observation.
pub struct Setup {
    /// The SDK on a provider with `LangfuseSpanProcessor` → [`Discard`].
    pub langfuse: Langfuse,
    /// A raw tracer on the same provider (foreign spans in a Langfuse pipeline).
    pub pipeline_tracer: SdkTracer,
    /// A raw tracer on a bare provider ([`Discard`] only): the honest baseline.
    pub plain_tracer: SdkTracer,
    /// The observation's values.
    pub payload: Payload,
}

/// Input, model parameters, output and usage of the generation.
pub struct Payload {
    input: Value,
    params: Value,
    output: Value,
    usage: Value,
}

impl Setup {
    /// Builds the providers and the payload.
    pub fn new() -> Self {
        let provider = SdkTracerProvider::builder()
            .with_span_processor(LangfuseSpanProcessor::new(Discard, None))
            .build();
        let plain = SdkTracerProvider::builder()
            .with_span_processor(Discard)
            .build();
        Setup {
            langfuse: Langfuse::with_provider(provider.clone(), None),
            pipeline_tracer: provider.tracer("raw"),
            plain_tracer: plain.tracer("raw"),
            payload: Payload {
                input: json!([
                    {"role": "system", "content": "You are a support assistant. Answer using the provided documents."},
                    {"role": "user", "content": "How do I reset my password?"},
                ]),
                params: json!({"temperature": 0.2, "max_tokens": 256}),
                output: json!({"role": "assistant", "content": "Go to Settings > Security, click 'Reset password'."}),
                usage: json!({"input": 120, "output": 40, "total": 160}),
            },
        }
    }

    /// Create + update + end of the generation through the SDK.
    pub fn langfuse_generation(&self) {
        let p = &self.payload;
        let generation = self.langfuse.start_observation(
            ObservationOptions::new("generate-answer", ObservationType::Generation)
                .model("gpt-4o-mini")
                .model_parameters(&p.params)
                .input(&p.input),
        );
        generation.update(
            ObservationUpdate::new()
                .output(&p.output)
                .usage_details(&p.usage),
        );
        generation.end();
    }

    /// The same as a raw span with the same attributes on `tracer`.
    pub fn raw_generation(&self, tracer: &SdkTracer) {
        let p = &self.payload;
        let mut span = tracer
            .span_builder("generate-answer")
            .with_kind(SpanKind::Internal)
            .with_attributes(vec![
                KeyValue::new("langfuse.observation.type", "generation"),
                KeyValue::new("langfuse.observation.model.name", "gpt-4o-mini"),
                KeyValue::new(
                    "langfuse.observation.model.parameters",
                    serde_json::to_string(&p.params).unwrap_or_default(),
                ),
                KeyValue::new(
                    "langfuse.observation.input",
                    serde_json::to_string(&p.input).unwrap_or_default(),
                ),
            ])
            .start(tracer);
        span.set_attribute(KeyValue::new(
            "langfuse.observation.output",
            serde_json::to_string(&p.output).unwrap_or_default(),
        ));
        span.set_attribute(KeyValue::new(
            "langfuse.observation.usage_details",
            serde_json::to_string(&p.usage).unwrap_or_default(),
        ));
        span.end();
    }
}
