//! The native ingestion destination against a scripted receiver answering 207 bodies.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_tests::receiver::{Action, Receiver, Request};
use integration_tests::spans::spans;
use langfuse_otel_exporter::{Diagnostics, LangfuseExporter, RetryPolicy};
use opentelemetry_sdk::trace::SpanExporter;
use serde_json::{Value, json};

/// Which events fail, by event and request index: `Some((status, message))`.
type FailRule = dyn Fn(&Value, usize) -> Option<(u16, &'static str)>;

/// A 207 answer: events for which `fail(event, request index)` gives a status fail with it.
fn answer_207(r: &Request, i: usize, fail: &FailRule) -> Action {
    let mut successes = Vec::new();
    let mut errors = Vec::new();
    for ev in r.ingestion_events() {
        match fail(&ev, i) {
            Some((status, message)) => {
                errors.push(json!({"id": ev["id"], "status": status, "message": message}))
            }
            None => successes.push(json!({"id": ev["id"], "status": 201})),
        }
    }
    Action::Respond {
        status: 207,
        headers: vec![],
        body: serde_json::to_vec(&json!({"successes": successes, "errors": errors})).unwrap(),
    }
}

fn exporter(rx: &Receiver, diag: Diagnostics) -> LangfuseExporter {
    LangfuseExporter::builder()
        .without_env()
        .langfuse("pk", "sk")
        .base_url(rx.base_url())
        .ingestion()
        .timeout(Duration::from_secs(3))
        .retry(RetryPolicy {
            initial_backoff: Duration::from_millis(20),
            ..RetryPolicy::default()
        })
        .diagnostics(diag)
        .build()
        .unwrap()
}

fn collect() -> (Diagnostics, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (
        Diagnostics::new(move |m| sink.lock().unwrap().push(m.to_string())),
        seen,
    )
}

fn name(ev: &Value) -> &str {
    ev["body"]["name"].as_str().unwrap_or_default()
}

/// Observation names acknowledged (listed as success in a 207).
fn accepted_names(rx: &Receiver, fail: &FailRule) -> Vec<String> {
    let mut names: Vec<String> = rx
        .requests()
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.ingestion_events()
                .into_iter()
                .filter(move |ev| fail(ev, i).is_none())
                .filter(|ev| ev["type"] != "trace-create")
                .map(|ev| name(&ev).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn per_event_errors_retry_5xx_and_report_4xx_once() {
    // span-3 is invalid (400, final); span-5 fails with 500 on the first request only.
    let fail = |ev: &Value, i: usize| match name(ev) {
        _ if ev["type"] == "trace-create" => None,
        "span-3" => Some((400, "Invalid request data")),
        "span-5" if i == 0 => Some((500, "Internal Server Error")),
        _ => None,
    };
    let rx = Receiver::start(move |r, i| answer_207(r, i, &fail));
    let (diag, seen) = collect();
    let e = exporter(&rx, diag);
    let r1 = futures_executor::block_on(e.export(spans(0..10)));
    assert!(r1.is_err());
    let reqs = rx.requests();
    assert_eq!(reqs[0].path, "/api/public/ingestion");
    assert_eq!(reqs[0].header("x-langfuse-sdk-name"), Some("rust"));
    // The retry carries only the event that failed with 500.
    let retried: Vec<String> = reqs[1]
        .ingestion_events()
        .iter()
        .map(|e| name(e).to_string())
        .collect();
    assert_eq!(retried, vec!["span-5"]);
    let mut expected: Vec<String> = (0..10)
        .filter(|i| *i != 3)
        .map(|i| format!("span-{i}"))
        .collect();
    expected.sort();
    assert_eq!(accepted_names(&rx, &fail), expected);
    let s = e.stats().snapshot();
    assert_eq!(
        (s.exported_spans, s.dropped_spans, s.rejected_events),
        (9, 1, 1)
    );
    // The same 4xx again is counted, not reported again.
    let _ = futures_executor::block_on(e.export(vec![integration_tests::spans::span(3, 0)]));
    assert_eq!(e.stats().snapshot().rejected_events, 2);
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.iter()
            .filter(|m| m.contains("Invalid request data"))
            .count(),
        1,
        "{seen:?}"
    );
}

#[test]
fn langfuse_v4_refusing_span_events_switches_to_otlp_without_loss() {
    let fail = |ev: &Value, _: usize| {
        (ev["type"] != "score-create").then_some((400, "Event type not accepted"))
    };
    let rx = Receiver::start(move |r, i| {
        if r.path.ends_with("/otel/v1/traces") {
            Action::ok()
        } else {
            answer_207(r, i, &fail)
        }
    });
    let (diag, seen) = collect();
    let e = exporter(&rx, diag);
    futures_executor::block_on(e.export(spans(0..5))).expect("the refused batch goes over OTLP");
    futures_executor::block_on(e.export(spans(5..8))).expect("later batches go over OTLP");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].contains("Event type not accepted")
            && seen[0].contains("/api/public/otel/v1/traces"),
        "{}",
        seen[0]
    );
    let stats = e.stats().snapshot();
    assert_eq!((stats.dropped_spans, stats.lost_spans()), (0, 0));
    let paths: Vec<String> = rx.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths.iter().filter(|p| p.ends_with("/ingestion")).count(),
        1,
        "only the first batch tries ingestion: {paths:?}"
    );
    assert_eq!(
        rx.delivered_span_ids(),
        integration_tests::spans::span_ids(0..8)
    );
}

#[test]
fn batches_stay_under_the_byte_limit() {
    let fail = |_: &Value, _: usize| None;
    let rx = Receiver::start(move |r, i| answer_207(r, i, &fail));
    let e = LangfuseExporter::builder()
        .without_env()
        .langfuse("pk", "sk")
        .base_url(rx.base_url())
        .ingestion()
        .max_ingestion_batch_bytes(20_000)
        .build()
        .unwrap();
    let batch: Vec<_> = (0..20)
        .map(|i| integration_tests::spans::span(i, 3_000))
        .collect();
    futures_executor::block_on(e.export(batch)).unwrap();
    let reqs = rx.requests();
    assert!(reqs.len() >= 3, "{}", reqs.len());
    assert!(reqs.iter().all(|r| r.body.len() <= 20_000));
    let mut expected: Vec<String> = (0..20).map(|i| format!("span-{i}")).collect();
    expected.sort();
    assert_eq!(accepted_names(&rx, &fail), expected);
    assert_eq!(e.stats().snapshot().exported_spans, 20);
}

#[test]
fn http_413_splits_ingestion_batches() {
    let rx = Receiver::start(|r: &Request, i| {
        if r.ingestion_events().len() > 3 {
            Action::status(413)
        } else {
            answer_207(r, i, &|_, _| None)
        }
    });
    let e = exporter(&rx, Diagnostics::new(|_| {}));
    futures_executor::block_on(e.export(spans(0..6))).unwrap();
    assert_eq!(e.stats().snapshot().exported_spans, 6);
}
