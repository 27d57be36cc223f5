//! The protobuf and `opentelemetry_sdk` decoding paths agree with the OTLP/JSON path:
//!
//! * every protobuf trace request the Python SDK sent (`sdk-captures/python-sdk`) translates to
//!   the same events as its OTLP/JSON equivalent, the input of conformance case
//!   `sdk-python-<scenario>.json`;
//! * `batch_from_span_data` on `SpanData` equals decoding the protobuf the official exporter
//!   (`opentelemetry_proto::transform`) makes of the same spans.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use integration_tests::captures::trace_requests;
use integration_tests::{fixtures_dir, read_json};
use langfuse_otel_core::otlp;
use langfuse_otel_core::span::SpanBatch;
use langfuse_otel_core::translate::Translator;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use prost::Message;
use serde_json::Value as Json;

/// Translated events with what differs between runs removed: envelope ids (random) and the
/// envelope timestamps of observation events (processing time).
fn translate(batch: &SpanBatch<'_>) -> Vec<Json> {
    let events = Translator::new().translate(batch).events;
    let mut events = match serde_json::to_value(&events).expect("events serialize") {
        Json::Array(events) => events,
        _ => unreachable!("a Vec serializes to an array"),
    };
    for event in &mut events {
        let event = event.as_object_mut().expect("event object");
        event.remove("id");
        if event["type"] != "trace-create" {
            event.remove("timestamp");
        }
    }
    events
}

#[test]
fn python_protobuf_requests_translate_like_their_json_equivalents() {
    let mut compared = 0;
    for req in trace_requests("python-sdk") {
        assert_eq!(req.body_format, "otlp-protobuf");
        let case_path = fixtures_dir().join(format!(
            "conformance/sdk-python-{}.json",
            req.scenario.replace('_', "-")
        ));
        let case = read_json(&case_path);
        // The case names the request it was made from: "(python-sdk/<file>, requests[<i>])".
        let description = case["description"].as_str().unwrap_or_default();
        if !description.contains(&format!("requests[{}]", req.index)) {
            continue;
        }
        let from_protobuf =
            otlp::decode_protobuf(&req.raw).unwrap_or_else(|e| panic!("{}: {e}", req.scenario));
        let from_json = otlp::batch_from_json(&case["input"])
            .unwrap_or_else(|e| panic!("{}: {e}", case_path.display()));
        assert_eq!(
            from_protobuf.span_count(),
            from_json.span_count(),
            "{}",
            req.scenario
        );
        // The decoded batches themselves are equal (ids, times, values, absent defaults).
        assert_eq!(from_protobuf, from_json, "{}: decoded batch", req.scenario);
        let (got, want) = (translate(&from_protobuf), translate(&from_json));
        assert_eq!(got.len(), want.len(), "{}: event count", req.scenario);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{}: event {i}", req.scenario);
        }
        compared += 1;
    }
    assert_eq!(
        compared, 7,
        "every Python scenario has its conformance case"
    );
}

fn at(ms: u64, extra_ns: u32) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms) + Duration::from_nanos(u64::from(extra_ns))
}

fn span(
    scope: &InstrumentationScope,
    span_id: u64,
    parent: SpanId,
    name: &'static str,
    attributes: Vec<KeyValue>,
    status: Status,
) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c),
            SpanId::from(span_id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: parent,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Borrowed(name),
        start_time: at(1_767_258_000_000, 999_999),
        end_time: at(1_767_258_000_250, 1),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    }
}

fn sample_spans() -> (Vec<SpanData>, Resource) {
    let resource = Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "support-bot"),
            KeyValue::new("deployment.environment", "staging"),
            KeyValue::new("host.cpus", 8_i64),
        ])
        .build();
    let langfuse = InstrumentationScope::builder("langfuse-sdk")
        .with_version("5.0.4")
        .with_attributes([KeyValue::new("public_key", "pk-lf-test")])
        .build();
    let other = InstrumentationScope::builder("openai-instrumentation")
        .with_version("")
        .build();
    let root = SpanId::from(0x1111_1111_1111_1111);
    let mut spans = vec![
        span(
            &langfuse,
            0x1111_1111_1111_1111,
            SpanId::INVALID,
            "root",
            vec![
                KeyValue::new("langfuse.trace.name", "order"),
                KeyValue::new("langfuse.user.id", "u-1"),
                KeyValue::new(
                    "langfuse.trace.tags",
                    Value::Array(Array::String(vec![
                        StringValue::from("a"),
                        StringValue::from("ü"),
                    ])),
                ),
                KeyValue::new("big", i64::MAX),
                KeyValue::new("negative", -42_i64),
                KeyValue::new("ratio", 0.75),
                KeyValue::new("infinite", f64::INFINITY),
                KeyValue::new("flag", false),
                KeyValue::new("empty.ints", Value::Array(Array::I64(vec![]))),
                KeyValue::new("ints", Value::Array(Array::I64(vec![1, -2, i64::MIN]))),
                KeyValue::new("floats", Value::Array(Array::F64(vec![1.5, 2.0]))),
                KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
                KeyValue::new("dup", "first"),
                KeyValue::new("dup", "last"),
            ],
            Status::Ok,
        ),
        span(
            &langfuse,
            0x2222_2222_2222_2222,
            root,
            "generation",
            vec![
                KeyValue::new("langfuse.observation.type", "generation"),
                KeyValue::new("gen_ai.request.model", "gpt-4o"),
                KeyValue::new("gen_ai.usage.input_tokens", 12_i64),
                KeyValue::new("langfuse.observation.input", r#"[{"role":"user"}]"#),
            ],
            Status::error("upstream timeout"),
        ),
        span(
            &other,
            0x3333_3333_3333_3333,
            root,
            "",
            vec![KeyValue::new("gen_ai.operation.name", "chat")],
            Status::error(""),
        ),
    ];
    spans[1]
        .events
        .events
        .push(opentelemetry::trace::Event::new(
            "gen_ai.user.message",
            at(1_767_258_000_100, 500_000),
            vec![
                KeyValue::new("content", "hi"),
                KeyValue::new("index", 0_i64),
            ],
            0,
        ));
    spans[1]
        .events
        .events
        .push(opentelemetry::trace::Event::new(
            "",
            UNIX_EPOCH - Duration::from_secs(1),
            vec![],
            0,
        ));
    // Before the epoch: the exporter sends 0, which the server sees as a missing time.
    spans[2].end_time = UNIX_EPOCH - Duration::from_secs(5);
    (spans, resource)
}

fn via_exporter_protobuf(spans: &[SpanData], resource: &Resource) -> SpanBatch<'static> {
    let request = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            spans.to_vec(),
            &ResourceAttributesWithSchema::from(resource),
        ),
    };
    otlp::decode_protobuf(&request.encode_to_vec()).expect("the exporter's protobuf decodes")
}

#[test]
fn span_data_equals_the_exporters_protobuf() {
    let (spans, resource) = sample_spans();
    let direct = otlp::batch_from_span_data(&spans, &resource);
    let decoded = via_exporter_protobuf(&spans, &resource);
    assert_eq!(direct.resource_spans.len(), 1);
    assert_eq!(direct.resource_spans[0].scope_spans.len(), 2);
    assert_eq!(direct, decoded);
    assert_eq!(translate(&direct), translate(&decoded));

    let first = &direct.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(first.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(first.parent_span_id, None);
    assert_eq!(first.start_time_unix_ms, Some(1_767_258_000_000));
    let third = &direct.resource_spans[0].scope_spans[1].spans[0];
    assert_eq!(third.parent_span_id.as_deref(), Some("1111111111111111"));
    assert_eq!(third.end_time_unix_ms, None);
    assert_eq!(direct.resource_spans[0].scope_spans[1].scope.version, None);
}

#[test]
fn span_data_borrows_strings() {
    let (spans, resource) = sample_spans();
    let batch = otlp::batch_from_span_data(&spans, &resource);
    let span = &batch.resource_spans[0].scope_spans[0].spans[1];
    assert!(matches!(span.name, Cow::Borrowed(_)));
    assert!(matches!(
        span.attributes.get("gen_ai.request.model"),
        Some(langfuse_otel_core::value::AttrValue::Str(Cow::Borrowed(_)))
    ));
    assert!(matches!(span.status_message, Some(Cow::Borrowed(_))));
}

#[test]
fn interleaved_scopes_form_consecutive_groups() {
    let (mut spans, resource) = sample_spans();
    // A, A, B → A, B, A: three groups here; the exporter merges the two A groups.
    spans.swap(1, 2);
    let direct = otlp::batch_from_span_data(&spans, &resource);
    let groups = &direct.resource_spans[0].scope_spans;
    assert_eq!(
        groups.iter().map(|g| g.spans.len()).collect::<Vec<_>>(),
        [1, 1, 1]
    );
    assert_eq!(groups[0].scope, groups[2].scope);
    let decoded = via_exporter_protobuf(&spans, &resource);
    let ids = |b: &SpanBatch<'_>| {
        let mut ids: Vec<String> = b.resource_spans[0]
            .scope_spans
            .iter()
            .flat_map(|g| g.spans.iter().map(|s| s.span_id.to_string()))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&direct), ids(&decoded));
    let sorted = |mut events: Vec<Json>| {
        events.sort_by_key(|e| e.to_string());
        events
    };
    assert_eq!(sorted(translate(&direct)), sorted(translate(&decoded)));
}
