//! Client behaviour over the real transport (a local receiver): masking, sampling, the enabled
//! flag, missing keys, `trace_context`, public traces, scores on explicit ids.

use std::collections::BTreeMap;

use integration_tests::capture_receiver::{Receiver, Request};
use langfuse_otel::{
    Langfuse, LangfuseBuilder, ObservationOptions, ObservationUpdate, Score, TraceContext,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

fn builder(receiver: &Receiver) -> LangfuseBuilder {
    Langfuse::builder()
        .public_key("pk-lf-test")
        .secret_key("sk-lf-test")
        .base_url(receiver.base_url.clone())
}

fn spans(requests: &[Request]) -> Vec<Span> {
    requests
        .iter()
        .filter(|r| r.path == langfuse_otel::TRACES_PATH)
        .flat_map(|r| {
            ExportTraceServiceRequest::decode(&r.body[..])
                .expect("protobuf")
                .resource_spans
        })
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .collect()
}

fn attrs(span: &Span) -> BTreeMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.clone()) {
                Some(any_value::Value::StringValue(s)) => s,
                Some(any_value::Value::BoolValue(b)) => b.to_string(),
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

fn scores(requests: &[Request]) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r.path == langfuse_otel::SCORES_PATH)
        .flat_map(|r| serde_json::from_slice::<Vec<Value>>(&r.body).expect("JSON array"))
        .collect()
}

#[test]
fn mask_applies_to_input_output_and_metadata_and_a_panicking_mask_falls_back() {
    let receiver = Receiver::start();
    let langfuse = builder(&receiver)
        .mask(|v| match v {
            Value::String(s) if s.contains("4111") => Value::String("<card>".into()),
            Value::String(s) if s == "boom" => panic!("mask failed"),
            other => other,
        })
        .build();
    langfuse.start_active_observation_sync(
        ObservationOptions::from("masked")
            .input("card 4111 1111")
            .metadata(&json!("plain")),
        |o| {
            o.update(ObservationUpdate::new().output("boom"));
        },
    );
    langfuse.shutdown().expect("shutdown");
    let spans = spans(&receiver.requests());
    let a = attrs(&spans[0]);
    assert_eq!(a["langfuse.observation.input"], "<card>");
    assert_eq!(
        a["langfuse.observation.output"],
        langfuse_otel::MASK_FALLBACK
    );
    assert_eq!(
        a["langfuse.observation.metadata"], "\"plain\"",
        "non-object metadata: one JSON attribute"
    );
}

#[test]
fn sample_rate_zero_sends_no_spans_and_drops_their_scores() {
    let receiver = Receiver::start();
    let langfuse = builder(&receiver).sample_rate(0.0).build();
    langfuse.start_active_observation_sync("sampled-out", |o| {
        o.score(Score::numeric("s", 1.0));
        langfuse.score_current_trace(Score::numeric("t", 1.0));
    });
    langfuse.create_score(
        Score::numeric("explicit", 1.0).trace_id(Langfuse::create_trace_id(Some("x"))),
    );
    langfuse.shutdown().expect("shutdown");
    let reqs = receiver.requests();
    assert!(spans(&reqs).is_empty());
    assert!(scores(&reqs).is_empty());
}

#[test]
fn disabled_clients_run_closures_and_send_nothing() {
    let receiver = Receiver::start();
    let off = builder(&receiver).tracing_enabled(false).build();
    assert!(!off.is_enabled());
    let no_keys = LangfuseBuilder::from_lookup(|_| None)
        .base_url(receiver.base_url.clone())
        .build();
    assert!(!no_keys.is_enabled(), "missing keys: disabled, no panic");
    for l in [&off, &no_keys] {
        assert_eq!(l.start_active_observation_sync("x", |_| 7), 7);
        l.create_score(Score::numeric("s", 1.0).trace_id("0123456789abcdef0123456789abcdef"));
        l.flush().expect("flush is a no-op");
    }
    assert!(receiver.requests().is_empty());
}

#[test]
fn trace_context_public_flag_and_scores_on_explicit_ids() {
    let receiver = Receiver::start();
    let langfuse = builder(&receiver).environment("production").build();
    let trace_id = Langfuse::create_trace_id(Some("order-42"));
    let obs = langfuse.start_observation(ObservationOptions::from("attached").trace_context(
        TraceContext {
            trace_id: trace_id.clone(),
            parent_span_id: Some("00f067aa0ba902b7".into()),
        },
    ));
    obs.set_trace_as_public();
    let obs_id = obs.id();
    obs.end();
    langfuse.create_score(
        Score::categorical("quality", "good")
            .trace_id(trace_id.clone())
            .observation_id(obs_id.clone())
            .metadata(&json!({"k": 1})),
    );
    langfuse.shutdown().expect("shutdown");

    let reqs = receiver.requests();
    let spans = spans(&reqs);
    let span = &spans[0];
    assert_eq!(hex(&span.trace_id), trace_id);
    assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
    let a = attrs(span);
    assert_eq!(a["langfuse.internal.as_root"], "true");
    assert_eq!(a["langfuse.internal.is_app_root"], "true");
    assert_eq!(a["langfuse.trace.public"], "true");
    assert_eq!(a["langfuse.environment"], "production");
    let s = scores(&reqs);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["traceId"], json!(trace_id));
    assert_eq!(s[0]["observationId"], json!(obs_id));
    assert_eq!(s[0]["environment"], json!("production"));
    assert_eq!(s[0]["metadata"], json!({"k": 1}));
    assert_eq!(s[0]["dataType"], json!("CATEGORICAL"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_client_built_used_and_dropped_inside_an_async_runtime_does_not_panic() {
    let receiver = Receiver::start();
    let langfuse = builder(&receiver).build();
    assert!(langfuse.is_enabled());
    langfuse
        .start_active_observation("in-async", |o| async move {
            o.score_trace(Score::numeric("s", 1.0))
        })
        .await;
    langfuse.flush().expect("flush");
    drop(langfuse);
    let reqs = receiver.requests();
    assert_eq!(spans(&reqs).len(), 1);
    assert_eq!(scores(&reqs).len(), 1);
}

#[test]
fn scores_can_go_through_the_ingestion_endpoint_as_score_create_events() {
    let receiver = Receiver::start();
    let langfuse = builder(&receiver)
        .score_transport(langfuse_otel::ScoreTransport::Ingestion)
        .flush_at(1000)
        .flush_interval(std::time::Duration::from_secs(60))
        .build();
    for i in 0..150 {
        langfuse.create_score(
            Score::numeric("n", f64::from(i)).trace_id("0123456789abcdef0123456789abcdef"),
        );
    }
    langfuse.shutdown().expect("shutdown");
    let reqs: Vec<Request> = receiver
        .requests()
        .into_iter()
        .filter(|r| r.path == langfuse_otel::INGESTION_PATH)
        .collect();
    assert_eq!(reqs.len(), 2, "at most 100 events per request");
    let events: Vec<Value> = reqs
        .iter()
        .flat_map(|r| {
            serde_json::from_slice::<Value>(&r.body).expect("JSON")["batch"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(events.len(), 150);
    assert!(
        events
            .iter()
            .all(|e| e["type"] == "score-create"
                && e["id"].as_str().is_some_and(|id| id.len() == 36))
    );
    assert_eq!(events[149]["body"]["value"], json!(149.0));
    assert_eq!(
        events[0]["body"]["traceId"],
        json!("0123456789abcdef0123456789abcdef")
    );
}
