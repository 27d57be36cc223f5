//! Wire parity with the official Python SDK 5.0.4: each conformance scenario, written with
//! `langfuse-otel` (`examples/parity_scenarios.rs`, the same code as `examples/parity.rs`), is
//! sent to a local receiver and compared with the Python capture in
//! `fixtures/sdk-captures/python-sdk/`: span tree and trace grouping, attribute keys, OTLP value
//! types and values, span kind, status, events, resource `langfuse.*` attributes, scope, and
//! scores. Ids, timestamps and the SDK version are not compared.
//!
//! Known, deliberate differences (not compared): the values of exception event attributes
//! (Python adds a Python stack trace and `exception.escaped`), and the completion start time
//! value (a timestamp; its encoding — a JSON-quoted UTC ISO string — is checked).

#[path = "../../../examples/parity_scenarios.rs"]
mod scenarios;

use std::collections::BTreeMap;

use integration_tests::capture_receiver::{Receiver, Request};
use integration_tests::{fixtures_dir, read_json};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use serde_json::{Value, json};

const TRACES: &str = "/api/public/otel/v1/traces";
const SCORES: &str = "/api/public/scores";

// ---------------------------------------------------------------------------------------------
// Our protobuf → the capture's protobuf-JSON rendering
// ---------------------------------------------------------------------------------------------

fn any_json(v: &AnyValue) -> Value {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => json!({"stringValue": s}),
        Some(any_value::Value::BoolValue(b)) => json!({"boolValue": b}),
        Some(any_value::Value::IntValue(i)) => json!({"intValue": i.to_string()}),
        Some(any_value::Value::DoubleValue(d)) => json!({"doubleValue": d}),
        Some(any_value::Value::ArrayValue(a)) => {
            json!({"arrayValue": {"values": a.values.iter().map(any_json).collect::<Vec<_>>()}})
        }
        other => json!({"unsupported": format!("{other:?}")}),
    }
}

fn attrs_json(kvs: &[KeyValue]) -> Value {
    Value::Array(
        kvs.iter()
            .map(|kv| json!({"key": kv.key, "value": kv.value.as_ref().map(any_json).unwrap_or(Value::Null)}))
            .collect(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn proto_json(body: &[u8]) -> Value {
    let req = ExportTraceServiceRequest::decode(body).expect("our body is an OTLP protobuf export");
    let rs: Vec<Value> = req
        .resource_spans
        .iter()
        .map(|rs| {
            json!({
                "resource": {"attributes": attrs_json(rs.resource.as_ref().map(|r| &r.attributes[..]).unwrap_or(&[]))},
                "scopeSpans": rs.scope_spans.iter().map(|ss| {
                    let scope = ss.scope.clone().unwrap_or_default();
                    json!({
                        "scope": {"name": scope.name, "version": scope.version, "attributes": attrs_json(&scope.attributes)},
                        "spans": ss.spans.iter().map(|s| json!({
                            "traceId": hex(&s.trace_id),
                            "spanId": hex(&s.span_id),
                            "parentSpanId": if s.parent_span_id.is_empty() { Value::Null } else { Value::String(hex(&s.parent_span_id)) },
                            "name": s.name,
                            "kind": s.kind,
                            "attributes": attrs_json(&s.attributes),
                            "status": s.status.as_ref().map(|st| {
                                let mut m = serde_json::Map::new();
                                if !st.message.is_empty() { m.insert("message".into(), json!(st.message)); }
                                if st.code != 0 { m.insert("code".into(), json!(st.code)); }
                                Value::Object(m)
                            }).unwrap_or(json!({})),
                            "events": s.events.iter().map(|e| json!({"name": e.name, "attributes": attrs_json(&e.attributes)})).collect::<Vec<_>>(),
                        })).collect::<Vec<_>>(),
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"resourceSpans": rs})
}

// ---------------------------------------------------------------------------------------------
// Normalization: what must be equal between the Python capture and our export
// ---------------------------------------------------------------------------------------------

/// Spans by name: parent name, trace root name, kind, status, attributes (type + value), events.
#[derive(Debug, Default)]
struct Normalized {
    spans: BTreeMap<String, Value>,
    resource: BTreeMap<String, Value>,
    scopes: Vec<Value>,
    /// trace id → root span name; span id → span name.
    trace_roots: BTreeMap<String, String>,
    span_names: BTreeMap<String, String>,
}

fn attr_map(attrs: &Value) -> BTreeMap<String, Value> {
    attrs
        .as_array()
        .into_iter()
        .flatten()
        .map(|kv| {
            (
                kv["key"].as_str().unwrap_or_default().to_owned(),
                kv["value"].clone(),
            )
        })
        .collect()
}

fn normalize(exports: &[Value]) -> Normalized {
    let mut n = Normalized::default();
    let mut raw = Vec::new();
    for export in exports {
        for rs in export["resourceSpans"].as_array().into_iter().flatten() {
            for (k, v) in attr_map(&rs["resource"]["attributes"]) {
                if k.starts_with("langfuse.") {
                    n.resource.insert(k, v);
                }
            }
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                let scope = json!({"name": ss["scope"]["name"], "attributes": attr_map(&ss["scope"]["attributes"])});
                if !n.scopes.contains(&scope) {
                    n.scopes.push(scope);
                }
                for s in ss["spans"].as_array().into_iter().flatten() {
                    raw.push(s.clone());
                }
            }
        }
    }
    for s in &raw {
        let id = s["spanId"].as_str().unwrap_or_default().to_owned();
        n.span_names
            .insert(id, s["name"].as_str().unwrap_or_default().to_owned());
        let parent = s["parentSpanId"].as_str().unwrap_or_default();
        if parent.is_empty() {
            n.trace_roots.insert(
                s["traceId"].as_str().unwrap_or_default().to_owned(),
                s["name"].as_str().unwrap_or_default().to_owned(),
            );
        }
    }
    for s in &raw {
        let name = s["name"].as_str().unwrap_or_default().to_owned();
        let parent = s["parentSpanId"].as_str().unwrap_or_default();
        let parent_name = n.span_names.get(parent).cloned();
        let root = n
            .trace_roots
            .get(s["traceId"].as_str().unwrap_or_default())
            .cloned();
        let mut attrs = attr_map(&s["attributes"]);
        if let Some(v) = attrs.get_mut("langfuse.observation.completion_start_time") {
            let text = v["stringValue"].as_str().unwrap_or_default();
            let shape_ok = text.starts_with('"') && text.ends_with("Z\"") && text.contains('T');
            *v = json!({"stringValue": if shape_ok { "<json-quoted ISO UTC>" } else { text }});
        }
        let events: Vec<Value> = s["events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let ea = attr_map(&e["attributes"]);
                json!({"name": e["name"], "exception.type": ea.get("exception.type")})
            })
            .collect();
        let status = json!({"code": s["status"]["code"].as_i64().unwrap_or(0), "message": s["status"]["message"].as_str().unwrap_or("")});
        let prev = n.spans.insert(
            name.clone(),
            json!({
                "parent": parent_name,
                "trace_root": root,
                "kind": s["kind"],
                "status": status,
                "attributes": attrs,
                "events": events,
            }),
        );
        assert!(
            prev.is_none(),
            "span names are unique in every scenario ({name})"
        );
    }
    n
}

fn normalize_scores(requests: &[Value], n: &Normalized) -> Vec<Value> {
    let mut out = Vec::new();
    for body in requests {
        for score in body.as_array().into_iter().flatten() {
            let mut s = score.as_object().cloned().unwrap_or_default();
            let id = s.remove("id").unwrap_or_default();
            assert!(
                id.as_str().is_some_and(|i| i.len() == 16),
                "score id: 16 hex characters, got {id}"
            );
            let ts = s.remove("timestamp").unwrap_or_default();
            assert!(
                ts.as_str().is_some_and(|t| t.ends_with('Z')),
                "score timestamp ISO UTC, got {ts}"
            );
            if let Some(t) = s.get_mut("traceId") {
                *t = json!(format!(
                    "<trace of {}>",
                    n.trace_roots
                        .get(t.as_str().unwrap_or_default())
                        .cloned()
                        .unwrap_or_default()
                ));
            }
            if let Some(o) = s.get_mut("observationId") {
                *o = json!(
                    n.span_names
                        .get(o.as_str().unwrap_or_default())
                        .cloned()
                        .unwrap_or_default()
                );
            }
            out.push(Value::Object(s));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The comparison
// ---------------------------------------------------------------------------------------------

fn python_capture(scenario: &str) -> (Vec<Value>, Vec<Value>) {
    let capture =
        read_json(&fixtures_dir().join(format!("sdk-captures/python-sdk/{scenario}.json")));
    let reqs = capture["requests"].as_array().cloned().unwrap_or_default();
    let traces = reqs
        .iter()
        .filter(|r| r["path"] == TRACES)
        .map(|r| r["body"].clone())
        .collect();
    let scores = reqs
        .iter()
        .filter(|r| r["path"] == SCORES)
        .map(|r| r["body"].clone())
        .collect();
    (traces, scores)
}

fn run_ours(scenario: &str) -> Vec<Request> {
    let receiver = Receiver::start();
    let base = receiver.base_url.clone();
    let builder = langfuse_otel::LangfuseBuilder::from_lookup(move |k| match k {
        "LANGFUSE_PUBLIC_KEY" => Some("pk-lf-test".into()),
        "LANGFUSE_SECRET_KEY" => Some("sk-lf-test".into()),
        "LANGFUSE_BASE_URL" => Some(base.clone()),
        _ => None,
    });
    scenarios::run(scenario, builder).expect("scenario runs and flushes");
    // `run` flushed synchronously, and the receiver records a request before answering it.
    receiver.requests()
}

fn assert_parity(scenario: &str) {
    let (py_traces, py_scores) = python_capture(scenario);
    let ours = run_ours(scenario);

    for r in ours.iter().filter(|r| r.path == TRACES) {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.headers.get("content-type").map(String::as_str),
            Some("application/x-protobuf")
        );
        assert_eq!(
            r.headers.get("content-encoding").map(String::as_str),
            Some("gzip")
        );
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some("Basic cGstbGYtdGVzdDpzay1sZi10ZXN0")
        );
        assert_eq!(
            r.headers
                .get("x-langfuse-ingestion-version")
                .map(String::as_str),
            Some("4")
        );
        assert_eq!(
            r.headers.get("x-langfuse-public-key").map(String::as_str),
            Some("pk-lf-test")
        );
        assert!(
            r.headers.contains_key("x-langfuse-sdk-name")
                && r.headers.contains_key("x-langfuse-sdk-version")
        );
    }
    let our_traces: Vec<Value> = ours
        .iter()
        .filter(|r| r.path == TRACES)
        .map(|r| proto_json(&r.body))
        .collect();
    let our_scores: Vec<Value> = ours
        .iter()
        .filter(|r| r.path == SCORES)
        .map(|r| serde_json::from_slice(&r.body).expect("scores body is JSON"))
        .collect();
    assert!(
        !our_traces.is_empty(),
        "{scenario}: no OTLP request received"
    );

    let want = normalize(&py_traces);
    if std::env::var_os("PARITY_DEBUG").is_some() {
        eprintln!(
            "{scenario}: {}",
            serde_json::to_string_pretty(&normalize(&our_traces).spans).unwrap()
        );
    }
    let got = normalize(&our_traces);

    assert_eq!(
        got.spans.keys().collect::<Vec<_>>(),
        want.spans.keys().collect::<Vec<_>>(),
        "{scenario}: span names"
    );
    assert_eq!(
        got.trace_roots.len(),
        want.trace_roots.len(),
        "{scenario}: number of traces"
    );
    for (name, w) in &want.spans {
        let g = &got.spans[name];
        for field in ["parent", "trace_root", "kind", "status", "events"] {
            assert_eq!(g[field], w[field], "{scenario}/{name}: {field}");
        }
        let (ga, wa) = (
            g["attributes"].as_object().unwrap(),
            w["attributes"].as_object().unwrap(),
        );
        assert_eq!(
            ga.keys().collect::<Vec<_>>(),
            wa.keys().collect::<Vec<_>>(),
            "{scenario}/{name}: attribute keys"
        );
        for (k, wv) in wa {
            assert_eq!(
                &ga[k], wv,
                "{scenario}/{name}: attribute {k} (OTLP type and value)"
            );
        }
    }
    assert_eq!(
        got.resource, want.resource,
        "{scenario}: resource langfuse.* attributes"
    );
    assert_eq!(
        got.scopes, want.scopes,
        "{scenario}: instrumentation scopes (name, attributes)"
    );
    assert_eq!(
        normalize_scores(&our_scores, &got),
        normalize_scores(&py_scores, &want),
        "{scenario}: scores"
    );
}

#[test]
fn rag_matches_python_sdk() {
    assert_parity("rag");
}

#[test]
fn decorator_matches_python_sdk() {
    assert_parity("decorator");
}

#[test]
fn tools_agent_matches_python_sdk() {
    assert_parity("tools_agent");
}

#[test]
fn events_errors_matches_python_sdk() {
    assert_parity("events_errors");
}

#[test]
fn propagate_matches_python_sdk() {
    assert_parity("propagate");
}

#[test]
fn scores_match_python_sdk() {
    assert_parity("scores");
}

#[test]
fn all_types_match_python_sdk() {
    assert_parity("all_types");
}

#[test]
fn the_comparison_detects_a_difference() {
    // Guard against a vacuous comparison: a changed value must be reported.
    let (py, _) = python_capture("rag");
    let mut changed = py.clone();
    let spans = changed[0]["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array_mut()
        .unwrap();
    spans[0]["attributes"][0]["value"] = json!({"stringValue": "someone-else"});
    let (a, b) = (normalize(&py), normalize(&changed));
    assert_ne!(a.spans, b.spans);
}
