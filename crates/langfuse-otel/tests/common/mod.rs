//! Shared set-up of the SDK's tests: a client on a provider that keeps finished spans in
//! memory, behind the Langfuse span processor.

// Every test binary compiles this module and uses part of it.
#![allow(dead_code)]

use langfuse_otel::{Langfuse, LangfuseSpanProcessor};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor, SpanData,
};

/// A client, its provider (`LangfuseSpanProcessor` → `SimpleSpanProcessor`) and the in-memory
/// exporter the finished spans land in.
pub fn setup() -> (Langfuse, SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(LangfuseSpanProcessor::new(
            SimpleSpanProcessor::new(exporter.clone()),
            None,
        ))
        .build();
    (
        Langfuse::with_provider(provider.clone(), None),
        provider,
        exporter,
    )
}

/// The value of a span attribute.
pub fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

/// The value of a span attribute as text.
pub fn str_attr(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}
