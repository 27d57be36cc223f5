//! `propagate_attributes`: prompt precedence, and W3C baggage crossing a service boundary.

use std::collections::HashMap;

mod common;

use common::str_attr;
use langfuse_otel::{
    ObservationOptions, ObservationType, PromptRef, PropagatedAttributes, context_with_attributes,
    propagate_attributes_sync,
};
use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::BaggagePropagator;

#[test]
fn an_explicit_prompt_beats_a_propagated_one() {
    let (langfuse, provider, exporter) = common::setup();
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
        str_attr(find("plain-span"), "langfuse.observation.prompt.name").as_deref(),
        Some("propagated")
    );
    assert_eq!(
        str_attr(find("gen"), "langfuse.observation.prompt.name").as_deref(),
        Some("explicit")
    );
    assert_eq!(
        str_attr(find("gen"), "langfuse.observation.prompt.version").as_deref(),
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
    let (langfuse, provider, exporter) = common::setup();
    let incoming = BaggagePropagator::new().extract(&headers);
    let _guard = incoming.attach();
    langfuse.start_active_observation_sync("service-b", |_| {});
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let s = &spans[0];
    assert_eq!(str_attr(s, "user.id").as_deref(), Some("user-9"));
    assert_eq!(str_attr(s, "session.id").as_deref(), Some("s-9"));
    assert_eq!(
        str_attr(s, "langfuse.trace.tags").as_deref(),
        Some(r#"["a","b"]"#)
    );
    assert_eq!(
        str_attr(s, "langfuse.trace.metadata.tenant").as_deref(),
        Some("\"acme\"")
    );
}
