//! `propagate_attributes`: prompt precedence, and W3C baggage crossing a service boundary.

use std::collections::HashMap;

use langfuse_otel::{
    Langfuse, LangfuseSpanProcessor, ObservationOptions, ObservationType, PromptRef,
    PropagatedAttributes, context_with_attributes, propagate_attributes_sync,
};
use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::BaggagePropagator;
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor, SpanData,
};

fn setup() -> (Langfuse, SdkTracerProvider, InMemorySpanExporter) {
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

fn attr(s: &SpanData, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[test]
fn an_explicit_prompt_beats_a_propagated_one() {
    let (langfuse, provider, exporter) = setup();
    propagate_attributes_sync(
        PropagatedAttributes::new().prompt(PromptRef::new("propagated", 1)),
        || {
            langfuse.start_active_observation_sync("plain-span", |_| {});
            langfuse.start_active_observation_sync(
                ObservationOptions::new("gen", ObservationType::Generation)
                    .prompt(PromptRef::new("explicit", 7)),
                |_| {},
            );
        },
    );
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let find = |n: &str| spans.iter().find(|s| s.name == n).unwrap();
    assert_eq!(
        attr(find("plain-span"), "langfuse.observation.prompt.name").as_deref(),
        Some("propagated")
    );
    assert_eq!(
        attr(find("gen"), "langfuse.observation.prompt.name").as_deref(),
        Some("explicit")
    );
    assert_eq!(
        attr(find("gen"), "langfuse.observation.prompt.version").as_deref(),
        Some("7")
    );
}

#[test]
fn baggage_carries_trace_attributes_to_another_service() {
    // Service A: propagate as baggage and inject into outgoing headers.
    let attrs = PropagatedAttributes::new()
        .user_id("user-9")
        .session_id("s-9")
        .tags(["a", "b"])
        .metadata(&serde_json::json!({"tenant": "acme"}))
        .as_baggage(true);
    let cx = context_with_attributes(&Context::new(), &attrs);
    let mut headers = HashMap::new();
    BaggagePropagator::new().inject_context(&cx, &mut headers);
    assert!(
        headers
            .get("baggage")
            .is_some_and(|b| b.contains("langfuse_user_id=user-9"))
    );

    // Service B: extract, then every span started under it carries the attributes.
    let (langfuse, provider, exporter) = setup();
    let incoming = BaggagePropagator::new().extract(&headers);
    let _guard = incoming.attach();
    langfuse.start_active_observation_sync("service-b", |_| {});
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let s = &spans[0];
    assert_eq!(attr(s, "user.id").as_deref(), Some("user-9"));
    assert_eq!(attr(s, "session.id").as_deref(), Some("s-9"));
    assert_eq!(
        attr(s, "langfuse.trace.tags").as_deref(),
        Some(r#"["a","b"]"#)
    );
    assert_eq!(
        attr(s, "langfuse.trace.metadata.tenant").as_deref(),
        Some("\"acme\"")
    );
}
