//! `CanonicalExporter` around `opentelemetry-otlp`'s own exporters (HTTP/protobuf and tonic
//! gRPC) sending to real receivers on 127.0.0.1: what arrives is canonical (`langfuse.*`
//! spans under the canonical scope) and translates back to the records of the original spans,
//! up to the documented differences of the canonical round trip.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_tests::events::canonical_round_trip_diff;
use integration_tests::receiver::{Action, Receiver};
use langfuse_otel::{Langfuse, ObservationOptions, ObservationType, ObservationUpdate};
use langfuse_otel_core::canonical::CANONICAL_SCOPE_NAME;
use langfuse_otel_core::otlp;
use langfuse_otel_exporter::CanonicalExporter;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData, SpanExporter};
use prost::Message as _;

/// An agent run as an app records it: an SDK observation, a GenAI chat span with usage and
/// messages, a tool call with arguments and result.
fn recorded_spans() -> (Vec<SpanData>, Resource) {
    let memory = InMemorySpanExporter::default();
    let resource = Resource::builder_empty()
        .with_attribute(KeyValue::new("service.name", "agent-app"))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_simple_exporter(memory.clone())
        .build();
    let langfuse = Langfuse::with_provider(provider.clone(), None);
    let tracer = provider.tracer("my-llm-client");
    langfuse.start_active_observation_sync(
        ObservationOptions::new("support-agent", ObservationType::Agent),
        |agent| {
            agent.update(ObservationUpdate::new().input("Where is my order?"));
            let cx = opentelemetry::Context::current();
            let mut chat = tracer.start_with_context("chat gpt-4o", &cx);
            chat.set_attributes([
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.request.model", "gpt-4o"),
                KeyValue::new("gen_ai.usage.input_tokens", 120),
                KeyValue::new("gen_ai.usage.output_tokens", 14),
                KeyValue::new(
                    "gen_ai.input.messages",
                    r#"[{"role":"user","parts":[{"type":"text","content":"Where is my order?"}]}]"#,
                ),
                KeyValue::new(
                    "gen_ai.output.messages",
                    r#"[{"role":"assistant","parts":[{"type":"text","content":"It ships today."}]}]"#,
                ),
            ]);
            chat.end();
            let mut tool = tracer.start_with_context("execute_tool track_order", &cx);
            tool.set_attributes([
                KeyValue::new("gen_ai.operation.name", "execute_tool"),
                KeyValue::new("gen_ai.tool.name", "track_order"),
                KeyValue::new("gen_ai.tool.call.arguments", r#"{"order":"A-17"}"#),
                KeyValue::new("gen_ai.tool.call.result", r#"{"status":"shipping"}"#),
            ]);
            tool.end();
            agent.update(ObservationUpdate::new().output("It ships today."));
        },
    );
    provider.force_flush().unwrap();
    let spans = memory.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 3);
    // The run is one trace.
    assert!(
        spans
            .iter()
            .all(|s| s.span_context.trace_id() == spans[0].span_context.trace_id())
    );
    drop(provider);
    (spans, resource)
}

/// Checks the received requests against the originals.
fn assert_round_trip(original: &[SpanData], resource: &Resource, bodies: &[Vec<u8>]) {
    assert!(!bodies.is_empty(), "nothing arrived");
    let original_batch = otlp::batch_from_span_data(original, resource);
    let mut received = Vec::new();
    for body in bodies {
        let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
        received.extend(req.resource_spans);
    }
    let merged = ExportTraceServiceRequest {
        resource_spans: received,
    }
    .encode_to_vec();
    let canonical = otlp::decode_protobuf(&merged).expect("decodes");
    assert_eq!(
        canonical.span_count(),
        original.len(),
        "every span arrives once"
    );
    for rs in &canonical.resource_spans {
        for ss in &rs.scope_spans {
            if !ss.scope.name.starts_with("langfuse-sdk") {
                panic!("span under scope {} is not canonical", ss.scope.name);
            }
            for span in &ss.spans {
                assert!(
                    span.attributes.get("langfuse.observation.type").is_some(),
                    "{} has no canonical type",
                    span.name
                );
            }
        }
    }
    assert!(
        canonical
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .any(|ss| ss.scope.name == CANONICAL_SCOPE_NAME)
    );
    if let Some(d) = canonical_round_trip_diff(&original_batch, &canonical) {
        panic!("canonical spans translate differently: {d}");
    }
}

#[test]
fn otlp_http_exporter_wrapped_in_the_canonical_exporter_delivers_spans_that_translate_back() {
    let (spans, resource) = recorded_spans();
    let receiver = Receiver::start(|_, _| Action::ok());
    let inner = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", receiver.base_url()))
        .with_timeout(Duration::from_secs(5))
        .build()
        .expect("otlp http exporter");
    let mut exporter = CanonicalExporter::new(inner);
    exporter.set_resource(&resource);
    futures_executor::block_on(exporter.export(spans.clone())).expect("exported");
    exporter.shutdown().ok();
    let bodies: Vec<Vec<u8>> = receiver
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/traces")
        .map(|r| r.body)
        .collect();
    assert_round_trip(&spans, &resource, &bodies);
}

#[derive(Default, Clone)]
struct Collector {
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.bodies
            .lock()
            .unwrap()
            .push(request.into_inner().encode_to_vec());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[test]
fn otlp_grpc_exporter_wrapped_in_the_canonical_exporter_delivers_spans_that_translate_back() {
    let (spans, resource) = recorded_spans();
    let collector = Collector::default();
    let bodies = collector.bodies.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = {
        let _enter = runtime.enter();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        tokio::net::TcpListener::from_std(listener).unwrap()
    };
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let _enter = runtime.enter();
    let inner = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_timeout(Duration::from_secs(5))
        .build()
        .expect("otlp grpc exporter");
    let mut exporter = CanonicalExporter::new(inner);
    exporter.set_resource(&resource);
    // The server may still be binding: retry the first export briefly.
    let mut result = Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
        "not tried".into(),
    ));
    for _ in 0..50 {
        result = runtime.block_on(exporter.export(spans.clone()));
        if result.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    result.expect("exported");
    let bodies = bodies.lock().unwrap().clone();
    assert_round_trip(&spans, &resource, &bodies[bodies.len() - 1..]);
}
