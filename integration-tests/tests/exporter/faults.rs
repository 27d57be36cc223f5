//! The exporter against a fault-injecting receiver: every recoverable fault ends with the
//! exact set of spans delivered; every unrecoverable one with a drop counter equal to the
//! shortfall.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use integration_tests::receiver::{Action, Receiver, Request, ReservedPort};
use integration_tests::spans::{span, span_ids, spans};
use langfuse_otel_exporter::{
    Compression, Diagnostics, LangfuseExporter, OtlpProtocol, RetryPolicy,
};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        jitter: 0.2,
    }
}

fn messages() -> (Diagnostics, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    (
        Diagnostics::new(move |m| sink.lock().unwrap().push(m.to_string())),
        seen,
    )
}

fn langfuse(base_url: &str, timeout: Duration) -> LangfuseExporter {
    LangfuseExporter::builder()
        .without_env()
        .langfuse("pk-lf-test", "sk-lf-test")
        .base_url(base_url)
        .timeout(timeout)
        .retry(fast_retry())
        .diagnostics(messages().0)
        .build()
        .unwrap()
}

fn export(e: &LangfuseExporter, batch: Vec<SpanData>) -> OTelSdkResult {
    futures_executor::block_on(e.export(batch))
}

#[test]
fn langfuse_otlp_requests_carry_auth_sdk_headers_and_gzip_protobuf() {
    let rx = Receiver::start(|_, _| Action::ok());
    let e = langfuse(&rx.base_url(), Duration::from_secs(3));
    export(&e, spans(0..3)).unwrap();
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, "/api/public/otel/v1/traces");
    assert_eq!(
        r.header("authorization"),
        Some("Basic cGstbGYtdGVzdDpzay1sZi10ZXN0")
    );
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("x-langfuse-sdk-name"), Some("rust"));
    assert_eq!(
        r.header("x-langfuse-sdk-version"),
        Some(langfuse_otel_transport::langfuse::SDK_VERSION)
    );
    assert_eq!(r.header("x-langfuse-public-key"), Some("pk-lf-test"));
    assert_eq!(r.header("x-langfuse-ingestion-version"), Some("4"));
    assert_eq!(rx.delivered_span_ids(), span_ids(0..3));
    let s = e.stats().snapshot();
    assert_eq!((s.exported_spans, s.dropped_spans, s.requests), (3, 0, 1));
}

#[test]
fn a_burst_of_500s_then_recovery_delivers_everything() {
    let rx = Receiver::start(|_, i| {
        if i < 3 {
            Action::status(500)
        } else {
            Action::ok()
        }
    });
    let e = langfuse(&rx.base_url(), Duration::from_secs(3));
    export(&e, spans(0..10)).unwrap();
    assert_eq!(rx.delivered_span_ids(), span_ids(0..10));
    let s = e.stats().snapshot();
    assert_eq!(
        (s.exported_spans, s.dropped_spans, s.retried_requests),
        (10, 0, 3)
    );
}

#[test]
fn a_batch_that_keeps_failing_is_dropped_and_counted_exactly() {
    // Any request containing span 0 fails for ever; the other batches go through.
    let poisoned = integration_tests::spans::span_id_hex(0);
    let rx = Receiver::start(move |r: &Request, _| {
        if r.span_ids().contains(&poisoned) {
            Action::status(503)
        } else {
            Action::ok()
        }
    });
    let e = langfuse(&rx.base_url(), Duration::from_secs(3));
    assert!(export(&e, spans(0..7)).is_err());
    export(&e, spans(7..12)).unwrap();
    export(&e, spans(12..20)).unwrap();
    let delivered = rx.delivered_span_ids();
    assert_eq!(delivered, span_ids(7..20));
    let s = e.stats().snapshot();
    assert_eq!(s.dropped_spans, 20 - delivered.len() as u64);
    assert_eq!(
        (s.exported_spans, s.failed_exports, s.retried_requests),
        (13, 1, 5)
    );
}

#[test]
fn a_final_4xx_is_not_retried_and_is_counted() {
    let rx = Receiver::start(|_, _| Action::Respond {
        status: 401,
        headers: vec![],
        body: br#"{"message":"Invalid credentials"}"#.to_vec(),
    });
    let (diag, seen) = messages();
    let e = LangfuseExporter::builder()
        .without_env()
        .langfuse("pk", "sk-secret-value")
        .base_url(rx.base_url())
        .retry(fast_retry())
        .diagnostics(diag)
        .build()
        .unwrap();
    assert!(export(&e, spans(0..4)).is_err());
    assert!(export(&e, spans(4..6)).is_err());
    assert_eq!(rx.requests().len(), 2);
    let s = e.stats().snapshot();
    assert_eq!((s.dropped_spans, s.retried_requests), (6, 0));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].contains("401") && seen[0].contains("Invalid credentials"));
    assert!(!seen[0].contains("sk-secret-value"));
}

#[test]
fn retry_after_seconds_is_honoured() {
    let rx = Receiver::start(|_, i| {
        if i == 0 {
            Action::retry_after(429, "1")
        } else {
            Action::ok()
        }
    });
    let e = langfuse(&rx.base_url(), Duration::from_secs(4));
    let t = Instant::now();
    export(&e, spans(0..5)).unwrap();
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(rx.delivered_span_ids(), span_ids(0..5));
    assert_eq!(e.stats().snapshot().retried_requests, 1);
}

#[test]
fn retry_after_http_date_is_honoured() {
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3));
    let rx = Receiver::start(move |_, i| {
        if i == 0 {
            Action::retry_after(503, &at)
        } else {
            Action::ok()
        }
    });
    let e = langfuse(&rx.base_url(), Duration::from_secs(8));
    let t = Instant::now();
    export(&e, spans(0..5)).unwrap();
    // The date has one-second resolution: the wait is between 2 and 3 s (less any delay
    // before the answer).
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(rx.delivered_span_ids(), span_ids(0..5));
}

#[test]
fn retry_after_beyond_the_timeout_gives_up_at_once_with_a_timeout_error() {
    let rx = Receiver::start(|_, _| Action::retry_after(429, "30"));
    let e = langfuse(&rx.base_url(), Duration::from_secs(1));
    let t = Instant::now();
    let r = export(&e, spans(0..5));
    assert!(matches!(r, Err(OTelSdkError::Timeout(_))), "{r:?}");
    assert!(t.elapsed() < Duration::from_millis(800));
    assert_eq!(e.stats().snapshot().dropped_spans, 5);
}

#[test]
fn connection_refused_then_the_server_comes_up() {
    let upstream = ReservedPort::new();
    // Enough attempts that only the 4 s timeout bounds the wait, however slow the start.
    let e = LangfuseExporter::builder()
        .without_env()
        .langfuse("pk", "sk")
        .base_url(upstream.base_url())
        .timeout(Duration::from_secs(4))
        .retry(RetryPolicy {
            max_attempts: 100,
            ..fast_retry()
        })
        .diagnostics(messages().0)
        .build()
        .unwrap();
    // The outage lasts 300 ms (the scenario, not a wait for readiness: the port is held and
    // refuses connections until it listens).
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        Receiver::start_with(upstream.listen(), |_, _| Action::ok())
    });
    export(&e, spans(0..8)).unwrap();
    let rx = starter.join().unwrap();
    assert_eq!(rx.delivered_span_ids(), span_ids(0..8));
    let s = e.stats().snapshot();
    assert!(s.retried_requests >= 1);
    assert_eq!((s.exported_spans, s.dropped_spans), (8, 0));
}

#[test]
fn connection_refused_for_the_whole_timeout_drops_exactly_the_batch() {
    let upstream = ReservedPort::new();
    let e = langfuse(&upstream.base_url(), Duration::from_millis(400));
    let t = Instant::now();
    assert!(export(&e, spans(0..8)).is_err());
    assert!(t.elapsed() < Duration::from_millis(900));
    assert_eq!(e.stats().snapshot().dropped_spans, 8);
}

#[test]
fn connection_reset_mid_request_is_retried() {
    let rx = Receiver::start(|_, i| {
        if i < 2 {
            Action::ResetMidRequest
        } else {
            Action::ok()
        }
    });
    let e = langfuse(&rx.base_url(), Duration::from_secs(3));
    export(&e, spans(0..6)).unwrap();
    assert_eq!(rx.delivered_span_ids(), span_ids(0..6));
    let s = e.stats().snapshot();
    assert_eq!(
        (s.exported_spans, s.dropped_spans, s.retried_requests),
        (6, 0, 2)
    );
}

#[test]
fn a_response_slower_than_the_attempt_timeout_is_retried() {
    let rx = Receiver::start(|_, i| {
        if i == 0 {
            Action::Delay(Duration::from_millis(1500), Box::new(Action::ok()))
        } else {
            Action::ok()
        }
    });
    let e = LangfuseExporter::builder()
        .without_env()
        .langfuse("pk", "sk")
        .base_url(rx.base_url())
        .timeout(Duration::from_secs(3))
        .attempt_timeout(Duration::from_millis(300))
        .retry(fast_retry())
        .diagnostics(messages().0)
        .build()
        .unwrap();
    export(&e, spans(0..4)).unwrap();
    assert_eq!(rx.delivered_span_ids(), span_ids(0..4));
    assert_eq!(e.stats().snapshot().retried_requests, 1);
}

#[test]
fn a_response_slower_than_the_export_timeout_is_a_timeout_and_counted() {
    let rx = Receiver::start(|_, _| Action::Delay(Duration::from_secs(2), Box::new(Action::ok())));
    let e = langfuse(&rx.base_url(), Duration::from_millis(300));
    let t = Instant::now();
    let r = export(&e, spans(0..4));
    assert!(r.is_err(), "{r:?}");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    let s = e.stats().snapshot();
    assert_eq!((s.exported_spans, s.dropped_spans), (0, 4));
}

#[test]
fn http_413_splits_the_batch_until_it_fits() {
    let rx = Receiver::start(|r: &Request, _| {
        if r.span_ids().len() > 4 {
            Action::status(413)
        } else {
            Action::ok()
        }
    });
    let e = langfuse(&rx.base_url(), Duration::from_secs(3));
    export(&e, spans(0..10)).unwrap();
    assert_eq!(rx.delivered_span_ids(), span_ids(0..10));
    assert!(
        rx.requests()
            .iter()
            .filter(|r| r.acknowledged())
            .all(|r| r.span_ids().len() <= 4)
    );
    assert_eq!(e.stats().snapshot().exported_spans, 10);
}

#[test]
fn http_413_for_a_single_span_drops_only_that_span() {
    let big = integration_tests::spans::span_id_hex(3);
    let rx = Receiver::start(move |r: &Request, _| {
        if r.span_ids().contains(&big) {
            Action::status(413)
        } else {
            Action::ok()
        }
    });
    let e = langfuse(&rx.base_url(), Duration::from_secs(3));
    let mut batch = spans(0..8);
    batch[3] = span(3, 10_000);
    assert!(export(&e, batch).is_err());
    let delivered = rx.delivered_span_ids();
    assert_eq!(delivered.len(), 7);
    assert_eq!(
        e.stats().snapshot().dropped_spans,
        8 - delivered.len() as u64
    );
}

#[test]
fn otlp_http_json_reaches_a_collector_with_extra_headers() {
    let rx = Receiver::start(|_, _| Action::ok());
    let e = LangfuseExporter::builder()
        .without_env()
        .otlp_endpoint(format!("{}/v1/traces", rx.base_url()))
        .protocol(OtlpProtocol::HttpJson)
        .compression(Compression::None)
        .header("x-api-key", "k")
        .build()
        .unwrap();
    export(&e, spans(0..6)).unwrap();
    let r = &rx.requests()[0];
    assert_eq!(r.path, "/v1/traces");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-api-key"), Some("k"));
    assert_eq!(r.header("authorization"), None);
    assert!(r.body.starts_with(b"{"));
    assert_eq!(rx.delivered_span_ids(), span_ids(0..6));
}

#[test]
fn otlp_http_protobuf_reaches_a_collector() {
    let rx = Receiver::start(|_, _| Action::ok());
    let e = LangfuseExporter::builder()
        .without_env()
        .otlp_endpoint(format!("{}/v1/traces", rx.base_url()))
        .build()
        .unwrap();
    export(&e, spans(0..6)).unwrap();
    assert_eq!(rx.requests()[0].header("content-encoding"), Some("gzip"));
    assert_eq!(rx.delivered_span_ids(), span_ids(0..6));
}

#[test]
fn the_default_filter_keeps_only_llm_spans() {
    let rx = Receiver::start(|_, _| Action::ok());
    let e = langfuse(&rx.base_url(), Duration::from_secs(3));
    let mut batch = spans(0..4);
    for s in &mut batch[2..] {
        s.instrumentation_scope = opentelemetry::InstrumentationScope::builder("axum").build();
        s.attributes.clear();
    }
    batch[3]
        .attributes
        .push(opentelemetry::KeyValue::new("gen_ai.system", "openai"));
    export(&e, batch).unwrap();
    assert_eq!(
        rx.delivered_span_ids(),
        vec![
            integration_tests::spans::span_id_hex(0),
            integration_tests::spans::span_id_hex(1),
            integration_tests::spans::span_id_hex(3),
        ]
    );
    assert_eq!(e.stats().snapshot().filtered_spans, 1);
}

#[test]
fn a_custom_filter_replaces_the_default_one() {
    let rx = Receiver::start(|_, _| Action::ok());
    let e = LangfuseExporter::builder()
        .without_env()
        .langfuse("pk", "sk")
        .base_url(rx.base_url())
        .filter_fn(|s| s.name.ends_with('1') || s.name.ends_with('2'))
        .build()
        .unwrap();
    export(&e, spans(0..4)).unwrap();
    assert_eq!(rx.delivered_span_ids(), span_ids(1..3));
    assert_eq!(e.stats().snapshot().filtered_spans, 2);
}

#[test]
fn a_panicking_filter_drops_the_span_instead_of_the_exporter() {
    let rx = Receiver::start(|_, _| Action::ok());
    let e = LangfuseExporter::builder()
        .without_env()
        .langfuse("pk", "sk")
        .base_url(rx.base_url())
        .filter_fn(|s| {
            if s.name == "span-0" {
                panic!("user bug")
            } else {
                true
            }
        })
        .build()
        .unwrap();
    export(&e, spans(0..3)).unwrap();
    assert_eq!(rx.delivered_span_ids(), span_ids(1..3));
}
