//! Canonical OTLP mode end to end: the exporter translates GenAI spans, re-encodes them with
//! the `langfuse.*` convention and sends them over OTLP/HTTP protobuf and JSON to a real
//! receiver; translating what arrived yields the records of the original spans (up to the
//! differences `langfuse_otel_core::canonical` documents). gRPC is covered in
//! `exporter_grpc.rs`.

use integration_tests::events::canonical_round_trip_diff;
use integration_tests::receiver::{Action, Receiver};
use integration_tests::spans::genai_agent_run;
use langfuse_otel_core::otlp;
use langfuse_otel_exporter::{Diagnostics, LangfuseExporter, OtlpMode, OtlpProtocol};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanExporter;

fn send(protocol: OtlpProtocol, mode: OtlpMode) -> Vec<u8> {
    let receiver = Receiver::start(|_, _| Action::ok());
    let exporter = LangfuseExporter::builder()
        .without_env()
        .otlp_endpoint(format!("{}/v1/traces", receiver.base_url()))
        .protocol(protocol)
        .otlp_mode(mode)
        .diagnostics(Diagnostics::new(|_| {}))
        .build()
        .unwrap();
    futures_executor::block_on(exporter.export(genai_agent_run())).unwrap();
    assert_eq!(exporter.stats().snapshot().exported_spans, 3);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    requests[0].body.clone()
}

fn assert_round_trip(body: &[u8]) {
    let spans = genai_agent_run();
    let resource = Resource::builder_empty().build();
    let original = otlp::batch_from_span_data(&spans, &resource);
    let received = otlp::decode(body).expect("the receiver got valid OTLP");
    assert_eq!(received.span_count(), 3);
    if let Some(d) = canonical_round_trip_diff(&original, &received) {
        panic!("canonical spans translate differently: {d}");
    }
    // One convention: every span attribute is a `langfuse.*` key.
    for span in received
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
    {
        assert!(
            span.attributes
                .iter()
                .all(|(k, _)| k.starts_with("langfuse.")),
            "{:?}",
            span.attributes
        );
        // Times keep their nanoseconds.
        assert_eq!(
            span.start_time_unix_nano.map(|ns| ns % 1_000_000),
            Some(456_789)
        );
    }
}

#[test]
fn canonical_protobuf_translates_back_to_the_same_records() {
    assert_round_trip(&send(OtlpProtocol::HttpProtobuf, OtlpMode::Canonical));
}

#[test]
fn canonical_json_translates_back_to_the_same_records() {
    assert_round_trip(&send(OtlpProtocol::HttpJson, OtlpMode::Canonical));
}

#[test]
fn passthrough_sends_the_spans_as_they_are() {
    let body = send(OtlpProtocol::HttpProtobuf, OtlpMode::Passthrough);
    let received = otlp::decode(&body).unwrap();
    let span = &received.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(
        received.resource_spans[0].scope_spans[0].scope.name,
        "opentelemetry.instrumentation.openai_agents"
    );
    assert!(span.attributes.contains("gen_ai.request.model"));
    assert!(!span.attributes.contains("langfuse.observation.type"));
}

#[test]
fn the_mode_comes_from_langfuse_otlp_mode() {
    use langfuse_otel_exporter::config::Env;
    let env = Env::from_pairs([("LANGFUSE_OTLP_MODE", "Canonical")]);
    assert_eq!(
        langfuse_otel_exporter::config::otlp_mode_from_env(&env).unwrap(),
        OtlpMode::Canonical
    );
    let bad = Env::from_pairs([("LANGFUSE_OTLP_MODE", "translated")]);
    let err = langfuse_otel_exporter::config::otlp_mode_from_env(&bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("LANGFUSE_OTLP_MODE"), "{err}");
}
