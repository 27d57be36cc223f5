//! `LANGFUSE_DEBUG` / `.debug(true)`: the client and its exporter report their configuration,
//! every export and score batch, flushes and shutdowns, one line each, never a secret; with
//! debug off they produce nothing at all. Warnings about lost data (scores that could not be
//! sent) and bad settings reach the diagnostics too, once per kind, with or without debug.

use std::sync::{Arc, Mutex};

use integration_tests::receiver::{Action, Receiver};
use integration_tests::{capture_receiver, spans::spans};
use langfuse_otel::{Langfuse, LangfuseBuilder, Score};
use langfuse_otel_exporter::{Diagnostics, ExportFilter, LangfuseExporter};
use opentelemetry_sdk::trace::SpanExporter;

const PUBLIC_KEY: &str = "pk-lf-abcdef123456";
const SECRET_KEY: &str = "sk-lf-supersecret-42";
const HEADER_SECRET: &str = "hdr-secret-99";

/// Every warning (`warn: …`) and debug line (`debug: …`) the diagnostics receive.
fn capture() -> (Diagnostics, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (warn, debug) = (Arc::clone(&lines), Arc::clone(&lines));
    let diagnostics = Diagnostics::new(move |m| warn.lock().unwrap().push(format!("warn: {m}")))
        .with_debug_sink(move |m| debug.lock().unwrap().push(format!("debug: {m}")));
    (diagnostics, lines)
}

/// Standard base64 (the Basic auth token must not leak either).
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn assert_no_secrets(lines: &[String]) {
    let token = base64(format!("{PUBLIC_KEY}:{SECRET_KEY}").as_bytes());
    for line in lines {
        assert!(!line.contains('\n'), "one line each: {line:?}");
        for secret in [SECRET_KEY, "supersecret", HEADER_SECRET, token.as_str()] {
            assert!(!line.contains(secret), "{secret:?} leaked in {line:?}");
        }
    }
}

fn exporter(receiver: &Receiver, diagnostics: Diagnostics, debug: bool) -> LangfuseExporter {
    LangfuseExporter::builder()
        .without_env()
        .langfuse(PUBLIC_KEY, SECRET_KEY)
        .base_url(receiver.base_url())
        .header("x-api-key", HEADER_SECRET)
        .filter(ExportFilter::All)
        .diagnostics(diagnostics)
        .debug(debug)
        .build()
        .unwrap()
}

#[test]
fn exporter_debug_lines_show_each_batch_with_its_status_and_never_a_secret() {
    let receiver = Receiver::start(|_, i| {
        if i == 0 {
            Action::ok()
        } else {
            Action::status(401)
        }
    });
    let (diagnostics, lines) = capture();
    let e = exporter(&receiver, diagnostics, true);
    futures_executor::block_on(e.export(spans(0..3))).unwrap();
    assert!(futures_executor::block_on(e.export(spans(3..4))).is_err());
    e.shutdown().unwrap();

    let lines = lines.lock().unwrap().clone();
    let url = format!("{}/api/public/otel/v1/traces", receiver.base_url());
    assert!(
        lines[0].starts_with(&format!("debug: exporter: OTLP {url}, timeout")),
        "{lines:#?}"
    );
    let ok = lines
        .iter()
        .find(|l| l.starts_with("debug: export: 3 spans"))
        .expect("a line for the first batch");
    assert!(
        ok.contains(&format!("to OTLP {url}: ok (HTTP 200) in ")) && ok.ends_with(" ms"),
        "{ok}"
    );
    let failed = lines
        .iter()
        .find(|l| l.starts_with("debug: export: 1 spans"))
        .expect("a line for the rejected batch");
    assert!(failed.contains("failed (HTTP 401)"), "{failed}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("debug: exporter shut down")),
        "{lines:#?}"
    );
    assert_no_secrets(&lines);
}

#[test]
fn exporter_without_debug_says_nothing() {
    let receiver = Receiver::start(|_, _| Action::ok());
    let (diagnostics, lines) = capture();
    let e = exporter(&receiver, diagnostics, false);
    futures_executor::block_on(e.export(spans(0..3))).unwrap();
    e.shutdown().unwrap();
    assert_eq!(receiver.requests().len(), 1);
    assert!(lines.lock().unwrap().is_empty(), "{:?}", lines.lock());
}

fn client(receiver: &capture_receiver::Receiver, diagnostics: Diagnostics) -> LangfuseBuilder {
    Langfuse::builder()
        .public_key(PUBLIC_KEY)
        .secret_key(SECRET_KEY)
        .base_url(receiver.base_url.clone())
        .additional_header("x-api-key", HEADER_SECRET)
        .environment("staging")
        .release("v1.2.3")
        .diagnostics(diagnostics)
}

fn record_trace_with_score(langfuse: &Langfuse) {
    langfuse.start_active_observation_sync("answer", |obs| {
        obs.score_trace(Score::numeric("helpfulness", 0.9));
    });
}

#[test]
fn client_debug_reports_config_exports_scores_flush_and_shutdown_without_secrets() {
    let receiver = capture_receiver::Receiver::start();
    let (diagnostics, lines) = capture();
    let langfuse = client(&receiver, diagnostics).debug(true).build();
    record_trace_with_score(&langfuse);
    langfuse.flush().unwrap();
    langfuse.shutdown().unwrap();

    let lines = lines.lock().unwrap().clone();
    let base = &receiver.base_url;
    let config = lines
        .iter()
        .find(|l| l.starts_with("debug: client: "))
        .expect("the configuration line");
    for part in [
        format!("destination OTLP {base}/api/public/otel/v1/traces"),
        format!("base_url {base}"),
        "public_key pk-lf-ab…".to_string(),
        "flush_at 512 spans / 15 scores".to_string(),
        "flush_interval 5s spans / 1s scores".to_string(),
        "sample_rate 1".to_string(),
        "environment staging".to_string(),
        "release v1.2.3".to_string(),
    ] {
        assert!(config.contains(&part), "{part:?} missing in {config}");
    }
    assert!(
        !config.contains(PUBLIC_KEY),
        "public key shortened: {config}"
    );
    let export = lines
        .iter()
        .find(|l| l.starts_with("debug: export: 1 spans"))
        .expect("an export line");
    assert!(export.contains("ok (HTTP 200)"), "{export}");
    let scores = lines
        .iter()
        .find(|l| l.starts_with("debug: scores: 1 to "))
        .expect("a score batch line");
    assert!(
        scores.contains(&format!("{base}/api/public/scores: ok (HTTP 202)")),
        "{scores}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("debug: client flush: spans ok, scores ok in ")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("debug: client shutdown: spans ok, scores ok in ")),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("warn:")), "{lines:#?}");
    assert_no_secrets(&lines);
}

#[test]
fn client_without_debug_says_nothing() {
    let receiver = capture_receiver::Receiver::start();
    let (diagnostics, lines) = capture();
    let langfuse = client(&receiver, diagnostics).build();
    record_trace_with_score(&langfuse);
    langfuse.flush().unwrap();
    langfuse.shutdown().unwrap();
    assert_eq!(
        receiver.requests().len(),
        2,
        "a span batch and a score batch"
    );
    assert!(lines.lock().unwrap().is_empty(), "{:?}", lines.lock());
}

/// Lost scores are reported without a `tracing` subscriber, once per kind of failure.
#[test]
fn dropped_scores_are_reported_once_without_secrets() {
    let upstream = integration_tests::receiver::ReservedPort::new();
    let (diagnostics, lines) = capture();
    let langfuse = Langfuse::builder()
        .public_key(PUBLIC_KEY)
        .secret_key(SECRET_KEY)
        .base_url(upstream.base_url())
        .timeout(std::time::Duration::from_millis(300))
        .diagnostics(diagnostics)
        .build();
    record_trace_with_score(&langfuse);
    let _ = langfuse.flush();
    record_trace_with_score(&langfuse);
    let _ = langfuse.flush();
    // Undelivered spans are retried until the shutdown deadline: keep it short here.
    let _ = langfuse.shutdown_with_timeout(std::time::Duration::from_secs(2));
    let lines = lines.lock().unwrap().clone();
    let dropped: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("warn: dropping ") && l.contains("scores"))
        .collect();
    assert_eq!(dropped.len(), 1, "{lines:#?}");
    assert_no_secrets(&lines);
}

#[test]
fn an_invalid_sample_rate_is_reported() {
    let receiver = capture_receiver::Receiver::start();
    let (diagnostics, lines) = capture();
    let langfuse = client(&receiver, diagnostics).sample_rate(2.0).build();
    langfuse.shutdown().unwrap();
    let lines = lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l
                == "warn: invalid value for LANGFUSE_SAMPLE_RATE: 2 (expected a number from 0 to 1); using 1.0"),
        "{lines:#?}"
    );
}
